#!/usr/bin/env python3
"""Set up the project's virtual environment, then launch the app or run the tests.

    python3 dev.py app      # set up .venv (first time only) and launch Moebius Studio
    python3 dev.py test     # set up .venv (first time only) and run the whole test suite

Only the standard library is used here, so it runs on a fresh machine. The one subtle
step is torch: a plain `pip install torch` on Linux pulls a multi-GB CUDA build even on
machines without an NVIDIA GPU, so without a GPU we ask for the CPU build.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH_VERSION = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT)


def has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except Exception:
        return False


def torch_installed(py: Path) -> bool:
    probe = subprocess.run([str(py), "-c", "import torch"], capture_output=True)
    return probe.returncode == 0


def install_torch(py: Path) -> None:
    pip = [py, "-m", "pip", "install", f"torch=={TORCH_VERSION}"]
    linux_or_windows = platform.system() in ("Linux", "Windows")
    if linux_or_windows and not has_nvidia_gpu() and reachable(CPU_INDEX + "/"):
        # No NVIDIA GPU: the CPU build is ~200 MB instead of several GB.
        pip += ["--index-url", CPU_INDEX, "--extra-index-url", "https://pypi.org/simple"]
    # Otherwise the default index decides (CUDA on Linux with a GPU, MPS-capable on macOS);
    # machines with a local wheel mirror resolve it from there.
    run(*pip)


def ensure_venv() -> Path:
    py = venv_python()
    if not py.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".moebius-setup"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and torch_installed(py):
        return py
    if not torch_installed(py):
        install_torch(py)
    run(py, "-m", "pip", "install", "-e", ".[dev]")
    stamp.write_text(wanted)
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("app", "test", "setup"):
        print(__doc__)
        return 2
    py = ensure_venv()
    if argv[0] == "setup":
        return 0
    if argv[0] == "app":
        return subprocess.call([str(py), "main.py", *argv[1:]], cwd=ROOT)
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    return subprocess.call([str(py), "-m", "pytest", *argv[1:]], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
