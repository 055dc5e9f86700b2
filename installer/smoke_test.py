"""Smoke test of the built app: does the bundle start, remove an object, and run the engine?

    python installer/smoke_test.py --archive PATH   unpack a download and test it (what the
                                                    build's --smoke-test does)
    python installer/smoke_test.py --bundle PATH    a bundle folder (an unpacked download)
    python installer/smoke_test.py --from-source    the same checks on `python main.py`

A bundle runs with a clean environment, as `env -i` would give it: a fresh HOME, a minimal
PATH, no PYTHONPATH, no virtual environment, started from an empty folder; an archive is
unpacked into a folder named "Moebius 100%" (spaces and a percent sign), so nothing from
the checkout can leak in and odd folder names are exercised.

Runs, with no screen needed (QT_QPA_PLATFORM=offscreen) and a time limit each:

1. `MoebiusStudio --smoke-test`: the app's hidden self-test (app/tools/smoke.py). It shows the
   window, opens the bundled sample photo, runs a Quick removal through the main window's
   remove() and the worker thread, checks that only the masked area changed, and runs the
   Moebius network code on a tiny random network (torch + diffusers, no weights).
2. `MoebiusStudio remove SAMPLE --mask M -o OUT --engine quick`: the command line from the
   bundle; checks the written photo changed inside the mask only.
3. The messages a person reads here: `models list` names the command as it exists in a
   bundle (`./MoebiusStudio models download NAME`); `--device cuda` on a machine where
   CUDA cannot run ends in one clear line, never a traceback; a GPU build without a
   usable GPU reports the CPU and why; no build-machine library search path is left.

Prints the time to the first window (measured from here: process start to the window
being shown), the bundle size, and exits 0 only if everything passed. On Windows the
console twin `moebius-cli.exe` is run instead of the windowed `MoebiusStudio.exe`, which
has no console to print to; both are the same program in the same folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
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
    """For `--from-source`: this environment, with no user folders touched."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["MOEBIUS_MODELS_DIR"] = str(tmp / "models")  # whatever happens, no user folders
    env.pop("PYTHONPATH", None)  # a bundle must not lean on the source tree
    return env


def clean_environment(tmp: Path) -> dict:
    """What `env -i` leaves, plus the few variables a desktop session always has: a fresh
    HOME and no trace of the checkout or its virtual environment."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": os.pathsep.join(["/usr/bin", "/bin"]),
           "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
           "MOEBIUS_MODELS_DIR": str(tmp / "models")}
    if sys.platform == "win32":  # Windows cannot start a process without these
        env.update({k: os.environ[k] for k in ("SYSTEMROOT", "TEMP", "TMP") if k in os.environ})
        env["USERPROFILE"] = env["HOME"]
    return env


def unpack(archive: Path, into: Path) -> Path:
    """Unpack a download the way a person would; returns the bundle folder inside."""
    into.mkdir(parents=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="tar")
    app = into / f"{recipe.APP_NAME}.app"
    return app if app.is_dir() else into / recipe.EXE_NAME


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


def run_text(command: list[str], env: dict, cwd: Path) -> tuple[int, str]:
    out = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                         errors="replace", timeout=CLI_TIMEOUT_S)
    return out.returncode, out.stdout + out.stderr


def check_messages(command: list[str], env: dict, tmp: Path, bundled: bool) -> bool:
    """The hints a person reads name the right command; a GPU that cannot be used is one
    clear line, never a traceback; a GPU build says why it runs on the CPU."""
    ok = True
    code, text = run_text([*command, "models", "list"], env, tmp)
    want = "./MoebiusStudio models download" if bundled and sys.platform.startswith("linux") \
        else "models download NAME"
    footer = text.strip().splitlines()[-1] if text.strip() else ""
    say(f"  models list footer: {footer!r}")
    ok &= code == 0 and want in footer
    code, text = run_text([*command, "remove", "--help"], env, tmp)
    device_help = " ".join(text.split("--device DEVICE")[-1].split("--quality")[0].split())
    say(f"  --device help: {device_help}")
    ok &= code == 0
    sample = recipe.ROOT / "resources" / "sample.jpg"
    code, text = run_text([*command, "remove", str(sample), "--mask", str(sample), "-o",
                           str(tmp / "never.png"), "--engine", "moebius", "--device", "cuda"],
                          env, tmp)
    lines = [line for line in text.splitlines() if line.strip()]
    say(f"  --device cuda (exit {code}): {' / '.join(lines)}")
    from_cuda = code == 0  # a machine whose GPU works: nothing to check here
    ok &= from_cuda or (code == 1 and "Traceback" not in text and "Unexpected" not in text
                        and any(line.startswith("error: --device cuda") for line in lines))
    return bool(ok)


# A stand-in for the NVIDIA driver library: reports a CUDA version, finds no GPU. With it
# on LD_LIBRARY_PATH the bundle meets "a machine with a driver" for real, through the
# same loader calls a real driver answers.
FAKE_DRIVER = r"""
#include <string.h>
int cuDriverGetVersion(int *v) { *v = CUDA_VERSION; return 0; }
int cuInit(unsigned int flags) { return 100; /* CUDA_ERROR_NO_DEVICE */ }
int cuDeviceGetCount(int *n) { *n = 0; return 0; }
static void *find(const char *name) {
    if (!strcmp(name, "cuInit")) return (void *)cuInit;
    if (!strcmp(name, "cuDriverGetVersion")) return (void *)cuDriverGetVersion;
    if (!strcmp(name, "cuDeviceGetCount")) return (void *)cuDeviceGetCount;
    return 0;
}
int cuGetProcAddress_v2(const char *name, void **fn, int v, unsigned long long f, int *st) {
    *fn = find(name); if (st) *st = *fn ? 0 : 1; return *fn ? 0 : 500;
}
int cuGetProcAddress(const char *name, void **fn, int v, unsigned long long f) {
    *fn = find(name); return *fn ? 0 : 500;
}
"""


def fake_driver(folder: Path, cuda_version: int) -> Path | None:
    """A folder holding a stand-in libcuda.so.1, or None without a C compiler."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None or not sys.platform.startswith("linux"):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "cuda.c"
    source.write_text(FAKE_DRIVER)
    subprocess.run([compiler, "-shared", "-fPIC", f"-DCUDA_VERSION={cuda_version}", "-o",
                    str(folder / "libcuda.so.1"), str(source)], check=True)
    return folder


def check_driver_messages(command: list[str], env: dict, tmp: Path, flavour: str) -> bool:
    """The CPU build on a machine with a driver names the GPU build; the CUDA build on a
    machine without a usable GPU runs on the CPU and says why, never with a traceback."""
    sample = recipe.ROOT / "resources" / "sample.jpg"
    moebius = [*command, "remove", str(sample), "--mask", str(sample), "-o",
               str(tmp / "never.png"), "--engine", "moebius"]
    ok = True
    if flavour == "cuda":  # this machine as it is: (here) no driver at all
        code, text = run_text(moebius, env, tmp)
        said = [line for line in text.splitlines() if "runs on the CPU" in line]
        say(f"  auto device, as this machine is (exit {code}): {' / '.join(said) or text}")
        ok &= "Traceback" not in text and (bool(said) or code == 0)
    cases = {"cpu": [(13000, "GPU build")],
             "cuda": [(13000, "found no GPU"), (12020, "too old")]}.get(flavour, [])
    for cuda_version, expected in cases:
        folder = fake_driver(tmp / f"driver-{cuda_version}", cuda_version)
        if folder is None:
            say("  no C compiler: the stand-in driver checks did not run")
            return bool(ok)
        with_driver = dict(env, LD_LIBRARY_PATH=str(folder))
        if flavour == "cpu":
            code, text = run_text([*command, "remove", "--help"], with_driver, tmp)
            said = " ".join(text.split("--device DEVICE")[-1].split("--quality")[0].split())
        else:
            code, text = run_text(moebius, with_driver, tmp)
            said = " / ".join(line for line in text.splitlines() if "runs on the CPU" in line)
        say(f"  with a driver for CUDA {cuda_version // 1000}.{cuda_version % 1000 // 10} "
            f"(exit {code}): {said or text}")
        ok &= expected in said and "Traceback" not in text
        code, text = run_text([*moebius, "--device", "cuda"], with_driver, tmp)
        line = next((t for t in text.splitlines() if t.startswith("error: --device")), text)
        say(f"  ... and --device cuda (exit {code}): {line}")
        ok &= code == 1 and "Traceback" not in text and line.startswith("error: --device")
    return bool(ok)


def bundle_flavour(bundle: Path) -> str:
    torch_folder = next((p for p in (bundle / "_internal" / "torch", bundle / "torch",
                                     bundle.parent / "Resources" / "torch") if p.is_dir()), None)
    if sys.platform == "darwin":
        return "mps"
    if torch_folder is None:
        return "cpu"
    return "cuda" if recipe._hardware().torch_build_in(torch_folder).kind == "cuda" else "cpu"


def check_search_paths(bundle: Path) -> bool:
    """No library in the bundle looks for libraries on the build machine."""
    if not sys.platform.startswith("linux"):
        return True
    import elf

    foreign = []
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink() and elf.is_elf(path):
            found = elf.read_dynamic(path)
            foreign += [f"{path.relative_to(bundle)}: {p}" for p in found.rpath + found.runpath
                        if not elf.is_bundle_relative(p)]
    gtk = sorted(p.name for p in bundle.rglob("lib*.so*")
                 if p.name.startswith(("libgtk-", "libgdk-3", "libatk-", "libpango",
                                       "libcairo")))
    say(f"  build-machine search paths: {len(foreign)}; GTK stack libraries: {len(gtk)}")
    for line in (foreign + gtk)[:10]:
        say(f"  | {line}")
    return not foreign and not gtk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bundle", type=Path,
                       help="a one-folder bundle (default: the CPU or CUDA build in dist/)")
    where.add_argument("--archive", type=Path, help="a .tar.gz/.zip download to unpack")
    where.add_argument("--from-source", action="store_true",
                       help="test `python main.py` instead of a bundle")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="moebius-smoke-") as tmp_name:
        tmp = Path(tmp_name)
        bundle = args.bundle
        if args.archive:
            say(f"unpacking {args.archive} ({args.archive.stat().st_size / 2**20:.0f} MiB)")
            t0 = time.monotonic()
            bundle = unpack(args.archive, tmp / "Moebius 100%")
            say(f"  unpacked in {time.monotonic() - t0:.1f} s to {bundle}")
        elif bundle is None and not args.from_source:
            built = [recipe.ROOT / "dist" / f / recipe.EXE_NAME for f in ("cuda", "cpu", "mps")]
            bundle = next((b for b in built if b.is_dir()), built[-1])
        if args.from_source:
            command = [sys.executable, str(recipe.ROOT / "main.py")]
            env = environment(tmp)
            say("testing the source tree")
        else:
            assert bundle is not None
            if bundle.suffix == ".app":
                bundle = bundle / "Contents" / "MacOS"
            bundle = bundle.resolve()
            exe = executable(bundle)
            if not exe.is_file():
                say(f"no built app at {exe}: run `python installer/build` first")
                return 2
            command = [str(exe)]
            env = clean_environment(tmp)
            say(f"bundle: {bundle} ({tree_size(bundle) / 2**20:.0f} MiB), clean environment")
        work = tmp / "work"
        work.mkdir()
        gui_ok, first_window = run_app_self_test(command, env, work)
        cli_ok = run_command_line(command, env, work)
        messages_ok = check_messages(command, env, work, bundled=not args.from_source)
        flavour = "source" if args.from_source else bundle_flavour(bundle)
        say(f"flavour: {flavour}")
        messages_ok &= check_driver_messages(command, env, work, flavour)
        paths_ok = args.from_source or check_search_paths(bundle)
        if first_window is not None:
            say(f"time to first window: {first_window:.1f} s")
        if not args.from_source:
            say(f"bundle size: {tree_size(bundle) / 2**20:.0f} MiB")
    results = {"app": gui_ok, "command line": cli_ok, "messages": messages_ok,
               "portability": paths_ok}
    failed = [name for name, ok in results.items() if not ok]
    say("PASSED" if not failed else f"FAILED: {', '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
