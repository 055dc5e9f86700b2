"""Smoke test of the built app: does the bundle start, remove an object, and run the engine?

    python installer/smoke_test.py                  test dist/MoebiusStudio (after the build)
    python installer/smoke_test.py --bundle PATH    a bundle somewhere else (an unpacked download)
    python installer/smoke_test.py --from-source    the same checks on `python main.py`

Runs, with no screen needed (QT_QPA_PLATFORM=offscreen) and a time limit each:

1. `MoebiusStudio --smoke-test`: the app's hidden self-test (app/tools/smoke.py). It shows the
   window, opens the bundled sample photo, runs a Quick removal through the main window's
   remove() and the worker thread, checks that only the masked area changed, and runs the
   Moebius network code on a tiny random network (torch + diffusers, no weights).
2. `MoebiusStudio remove SAMPLE --mask M -o OUT --engine quick`: the command line from the
   bundle; checks the written photo changed inside the mask only.

Prints the time to the first window (measured from here: process start to the window
being shown), the bundle size, and exits 0 only if everything passed. On Windows the
console twin `moebius-cli.exe` is run instead of the windowed `MoebiusStudio.exe`, which
has no console to print to; both are the same program in the same folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import recipe  # noqa: E402

GUI_TIMEOUT_S = 300
CLI_TIMEOUT_S = 180
MASK_BOX = (320, 630, 480, 830)  # left, top, right, bottom: the sign in resources/sample.jpg
BLEND_BAND = 33  # pixels around the mask that the blend may touch


def say(text: str) -> None:
    print(f"[smoke] {text}", flush=True)  # noqa: T201 - a command-line script


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def executable(bundle: Path) -> Path:
    """The program to run: the console twin on Windows, the app elsewhere."""
    if sys.platform == "win32":
        return bundle / f"{recipe.CLI_NAME}.exe"
    app = bundle.parent / f"{recipe.APP_NAME}.app" / "Contents" / "MacOS" / recipe.EXE_NAME
    if sys.platform == "darwin" and app.is_file():
        return app  # what Finder starts
    return bundle / recipe.EXE_NAME


def environment(tmp: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["MOEBIUS_MODELS_DIR"] = str(tmp / "models")  # whatever happens, no user folders
    env.pop("PYTHONPATH", None)  # a bundle must not lean on the source tree
    return env


def run_app_self_test(command: list[str], env: dict, cwd: Path) -> tuple[bool, float | None]:
    """Run `<app> --smoke-test`, echo its report; (passed, seconds to the first window)."""
    say("running: " + " ".join([*command, "--smoke-test"]))
    lines: list[str] = []
    seen: dict[str, float] = {}
    t0 = time.monotonic()
    env = dict(env, MOEBIUS_SMOKE_STARTED=repr(time.time()))  # the app times from here too
    proc = subprocess.Popen([*command, "--smoke-test"], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")

    def read():
        for line in proc.stdout:
            line = line.rstrip()
            lines.append(line)
            if line.startswith("smoke: first window"):
                seen.setdefault("first_window", time.monotonic() - t0)
            if line.startswith("smoke:"):
                say(f"  {line}")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=GUI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        say(f"the app did not finish within {GUI_TIMEOUT_S} s")
    reader.join(timeout=10)
    passed = proc.returncode == 0 and "smoke: OK" in lines
    if not passed:
        say(f"the app's self-test failed (exit status {proc.returncode}); its output ends:")
        for line in lines[-40:]:
            say(f"  | {line}")
    return passed, seen.get("first_window")


def run_command_line(command: list[str], env: dict, tmp: Path) -> bool:
    """`remove --engine quick` on the sample photo; the result may differ only in the mask."""
    import numpy as np
    from PIL import Image

    sample = recipe.ROOT / "resources" / "sample.jpg"
    original = np.asarray(Image.open(sample).convert("RGB"))
    mask = np.zeros(original.shape[:2], bool)
    left, top, right, bottom = MASK_BOX
    mask[top:bottom, left:right] = True
    mask_path, out_path = tmp / "mask.png", tmp / "out.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    args = [*command, "remove", str(sample), "--mask", str(mask_path), "-o", str(out_path),
            "--engine", "quick"]
    say("running: " + " ".join(args))
    t0 = time.monotonic()
    try:
        out = subprocess.run(args, env=env, cwd=tmp, capture_output=True, text=True,
                             errors="replace", timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        say(f"the command line did not finish within {CLI_TIMEOUT_S} s")
        return False
    if out.returncode != 0 or not out_path.is_file():
        say(f"the command line failed (exit status {out.returncode}):\n{out.stdout}{out.stderr}")
        return False
    result = np.asarray(Image.open(out_path).convert("RGB"))
    import cv2

    band = cv2.dilate(mask.astype(np.uint8), np.ones((2 * BLEND_BAND + 1,) * 2, np.uint8)) > 0
    # The photo is a JPEG: PNG output holds the decoded pixels, which must be unchanged.
    same_outside = np.array_equal(result[~band], original[~band])
    changed = float((result != original).any(-1)[mask].mean())
    say(f"  command line: {out.stdout.strip()} in {time.monotonic() - t0:.1f} s; "
        f"{changed:.1%} of the mask changed, outside unchanged: {same_outside}")
    return same_outside and changed > 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=recipe.ROOT / "dist" / recipe.EXE_NAME,
                        help="the one-folder bundle (default: dist/MoebiusStudio)")
    parser.add_argument("--from-source", action="store_true",
                        help="test `python main.py` instead of a bundle")
    args = parser.parse_args(argv)

    if args.from_source:
        command = [sys.executable, str(recipe.ROOT / "main.py")]
        say("testing the source tree")
    else:
        exe = executable(args.bundle)
        if not exe.is_file():
            say(f"no built app at {exe}: run `python installer/build` first")
            return 2
        command = [str(exe)]
        say(f"bundle: {args.bundle} ({tree_size(args.bundle) / 2**20:.0f} MiB)")

    with tempfile.TemporaryDirectory(prefix="moebius-smoke-") as tmp:
        env = environment(Path(tmp))
        gui_ok, first_window = run_app_self_test(command, env, Path(tmp))
        cli_ok = run_command_line(command, env, Path(tmp))
    if first_window is not None:
        say(f"time to first window: {first_window:.1f} s")
    if not args.from_source:
        say(f"bundle size: {tree_size(args.bundle) / 2**20:.0f} MiB")
    passed = gui_ok and cli_ok
    say("PASSED" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
