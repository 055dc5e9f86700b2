"""What goes into the Moebius Studio bundle: names, data files, exclusions, trimming.

Plain Python with no PyInstaller import, so the spec (`moebius_studio.spec`), the build
script (`build`) and the tests (`tests/test_installer.py`) share one source of truth and
the tests can check it without building anything.

Paths in (source, destination) pairs follow PyInstaller: the destination is a folder
relative to the bundle's root (`sys._MEIPASS`). The app finds its files relative to its
modules (`app/windows/welcome.py`: `<root>/resources/sample.jpg`; `engine/net/config.py`:
`<root>/engine/net/configs/`), so the destinations mirror the source tree and no path code
changes when frozen.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"

if str(ROOT) not in sys.path:  # the names below are the app's own (engine/about.py)
    sys.path.insert(0, str(ROOT))
from engine import about  # noqa: E402

APP_NAME = about.APP_NAME  # what people see: window title, .app name, menu entry
EXE_NAME = about.BUNDLE_EXE  # the app executable and the bundle folder (dist/MoebiusStudio/)
CLI_NAME = "moebius-cli"  # Windows only: the same program as a console executable
BUNDLE_ID = "io.github.moebiusstudio.MoebiusStudio"  # macOS CFBundleIdentifier
DESKTOP_ID = about.APP_ID  # Linux: moebius-studio.desktop, icon name moebius-studio
ENTRY_SCRIPT = ROOT / "main.py"

ICON_PNG = ROOT / "resources" / "icon.png"
ICON_ICO = ROOT / "resources" / "icon.ico"
ICON_ICNS = ROOT / "resources" / "icon.icns"

# Files the app reads at run time (not scripts that make them, not model weights).
RESOURCE_PATTERNS = ("sample.jpg", "icon.png")
CONFIG_PATTERNS = ("*.yaml", "*.json")
WEIGHT_SUFFIXES = (".bin", ".safetensors", ".ckpt", ".pt", ".pth", ".onnx")

# Package metadata (*.dist-info) that code in the bundle reads with importlib.metadata:
# diffusers checks its requirements' versions at import and decides whether torch and
# safetensors are "available" from their metadata; huggingface_hub does the same for
# its optional integrations. Without it diffusers' AutoencoderKL turns into a stub that
# says "requires PyTorch". (package, with its requirements too)
METADATA = (
    ("diffusers", True),
    ("huggingface_hub", True),
    ("torch", False),
    ("safetensors", False),
    ("numpy", False),
    ("pillow", False),
    ("opencv-python-headless", False),
    ("PySide6-Essentials", False),
    ("qtawesome", False),
    ("platformdirs", False),
    ("psutil", False),
    ("pyyaml", False),
    ("scikit-image", False),
    ("pillow-heif", False),
)

# Non-Python files of these packages are collected (templates, fonts, charmaps, py.typed).
DATA_PACKAGES = ("diffusers", "huggingface_hub", "qtawesome")

# Modules that must be in the bundle even though no import statement names them plainly.
HIDDEN_IMPORTS = (
    "app.tools.smoke",  # imported only for --smoke-test
    "engine.cli.batch",
    "engine.cli.models",
    "diffusers.models.autoencoders.autoencoder_kl",  # diffusers imports lazily by name
    "diffusers.schedulers.scheduling_ddim",
)

# Never needed by the app. Checked at run time: the smoke test imports torch, diffusers
# and huggingface_hub and runs the network, and these are not among what that loads.
EXCLUDES = (
    # GUI toolkits and bindings other than the one the app uses
    "tkinter",
    "_tkinter",
    "PyQt5",
    "PyQt6",
    "PySide2",
    # Qt modules the app does not use (PyInstaller would collect their libraries)
    "PySide6.QtNetwork",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuickWidgets",
    "PySide6.QtPdf",
    "PySide6.QtPdfWidgets",
    "PySide6.QtSql",
    "PySide6.QtTest",
    "PySide6.QtDBus",
    "PySide6.QtDesigner",
    "PySide6.QtHelp",
    "PySide6.QtUiTools",
    "PySide6.QtXml",
    "PySide6.QtConcurrent",
    "PySide6.QtPrintSupport",
    "PySide6.QtSvg",
    "PySide6.QtSvgWidgets",
    "PySide6.QtNetworkAuth",
    "PySide6.QtStateMachine",
    # torch parts for benchmarking, TensorBoard logging and building C++ extensions
    "torch.utils.benchmark",
    "torch.utils.tensorboard",
    "torch.utils.cpp_extension",
    # torch.compile's GPU compiler (900 MB in the CUDA build): the app runs eagerly
    "triton",
    # development tools that happen to be installed next to the app
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "PyInstaller",
    "importlinter",
    "grimp",
    "IPython",
    "matplotlib",
    "pandas",
)

# Collected files dropped before the bundle is assembled, by destination path prefix
# (with forward slashes). torch ships its C++ test programs, developer tools and headers
# inside the wheel; Qt its translations (the app installs no translator).
TRIM_PREFIXES = (
    "torch/test/",
    "torch/bin/",
    "torch/include/",
    "torch/share/cmake/",
    "PySide6/Qt/translations/",
    "PySide6/translations/",
)

# Dropped by destination path (fnmatch), whatever the flavour. The GTK theme plugin brings
# the build machine's whole GTK stack (GTK, GDK, ATK, Cairo, Pango and what they need,
# none of which Qt itself uses) and breaks on systems whose GTK differs; without it Qt
# draws its own widgets and still gets native file dialogs through the desktop portal.
TRIM_PATTERNS = (
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
)

# The CUDA flavour: CUDA libraries that the app's code paths never load, and why. What
# torch's libraries need at load time (DT_NEEDED: cuBLAS, cuDNN, cuFFT, cuRAND, cuSPARSE,
# NCCL, ...) stays whatever it is for: the spec refuses a trim that something still needs.
# cuDNN's sub-libraries are loaded by name at run time and stay whole: which of them a
# convolution needs depends on the GPU.
CUDA_TRIM = (
    ("*libcusolverMg.so*", "multi-GPU solver; nothing in torch loads it"),
    ("*libcusolver.so*", "GPU linear algebra: loaded with torch_cuda_linalg on the first "
                         "torch.linalg call on a GPU, and the app makes none"),
    ("torch/lib/libtorch_cuda_linalg.so", "(the same)"),
    ("*libnvrtc.alt.so*", "a second build of the runtime compiler that torch never loads"),
    ("*libnvrtc-builtins.alt.so*", "(the same)"),
    ("*libnvperf_host.so", "CUDA profiler back ends (CUPTI range profiling)"),
    ("*libnvperf_target.so", "(the same)"),
    ("*libpcsamplingutil.so", "(the same)"),
    ("*libcheckpoint.so", "CUDA process checkpointing"),
    ("*libcufftw.so*", "the FFTW drop-in interface"),
    ("*libnvblas.so*", "the BLAS drop-in interface"),
    ("*libcufile_rdma.so*", "GPUDirect Storage over RDMA"),
    ("*nvshmem_bootstrap_*.so*", "multi-node NVSHMEM start-up (clusters)"),
    ("*nvshmem_transport_*.so*", "multi-node NVSHMEM transports (InfiniBand, UCX, ...)"),
    # Windows names of the same libraries
    ("*cusolverMg64_*.dll", "multi-GPU solver"),
    ("*cufftw64_*.dll", "the FFTW drop-in interface"),
    ("*nvblas64_*.dll", "the BLAS drop-in interface"),
    ("*nvperf_host.dll", "CUDA profiler back ends"),
    ("*nvperf_target.dll", "(the same)"),
    ("*pcsamplingutil.dll", "(the same)"),
)

# The CUDA flavour: libraries that CUDA loads by name at run time, which PyInstaller's
# dependency analysis (DT_NEEDED) cannot see: the runtime compiler's built-in headers,
# without which NVRTC (torch's generated kernels, cuDNN's runtime-compiled engines) fails.
CUDA_RUNTIME_LOADED = ("libnvrtc-builtins.so.*",)

# Flavours per system: which torch the bundle carries. Linux and Windows: "cpu" or
# "cuda"; macOS: "mps" (PyPI's macOS torch is the Metal build).
FLAVOURS = {"linux": ("cpu", "cuda"), "win32": ("cpu", "cuda"), "darwin": ("mps",)}
# How to make a build environment for each flavour (the build refuses a mismatch).
TORCH_FOR = {
    ("linux", "cpu"): "torch's CPU wheel (PyTorch's own 'cpu' package index)",
    ("linux", "cuda"): "torch from PyPI (on Linux, PyPI's torch is the CUDA build)",
    ("win32", "cpu"): "torch from PyPI (on Windows, PyPI's torch is the CPU build)",
    ("win32", "cuda"): "torch's CUDA wheel (PyTorch's own 'cu130' package index)",
    ("darwin", "mps"): "torch from PyPI (it includes Metal)",
}
FLAVOUR_ENV = "MOEBIUS_BUILD_FLAVOUR"  # set by `build` for the spec

# Kept although a prefix above matches (fnmatch patterns): torch starts this helper at
# import (Linux, macOS), and a shared library there may be a dependency of torch's own.
TRIM_KEEP = ("torch/bin/torch_shm_manager", "*.dll", "*.dylib", "*.so", "*.so.*")

# Must be in the bundle or the build is refused (destination paths, forward slashes).
REQUIRED_QT_PLUGINS = {
    "linux": ("platforms/libqxcb.so", "platforms/libqoffscreen.so", "platforms/libqwayland.so",
              "imageformats/libqjpeg.so"),
    "win32": ("platforms/qwindows.dll", "platforms/qoffscreen.dll", "imageformats/qjpeg.dll"),
    "darwin": ("platforms/libqcocoa.dylib", "platforms/libqoffscreen.dylib",
               "imageformats/libqjpeg.dylib"),
}


def system() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


def _hardware():
    """engine/sampling/hardware.py, which finds the driver and torch's build without
    importing torch (the same code the app uses to tell people which build they need)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from engine.sampling import hardware

    return hardware


def machine_flavour() -> str:
    """The flavour for this machine: cuda where an NVIDIA driver is installed, mps on a
    Mac, cpu elsewhere."""
    if system() == "darwin":
        return "mps"
    return "cuda" if _hardware().nvidia_driver() is not None else "cpu"


def environment_flavour() -> str | None:
    """The flavour the torch in this Python environment builds; None without torch."""
    kind = _hardware().torch_build().kind
    if kind == "missing":
        return None
    if system() == "darwin":
        return "mps"
    return "cuda" if kind == "cuda" else "cpu"


def build_flavour() -> str:
    """The flavour being built: what `build` asked for, else what the environment has."""
    return os.environ.get(FLAVOUR_ENV) or environment_flavour() or "cpu"


def archive_stem(flavour: str) -> str:
    """MoebiusStudio-0.1.0-linux-x86_64-cuda: the download's name says its flavour."""
    return f"{EXE_NAME}-{version()}-{platform_tag()}-{flavour}"


def dev_packages(root: Path = ROOT) -> set[str]:
    """Normalised names of the test and development tools (pyproject's `dev` extra, plus
    PyInstaller): none of them, not even their metadata, may be in a bundle."""
    import tomllib

    with open(root / "pyproject.toml", "rb") as f:
        dev = tomllib.load(f)["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0] for r in dev}
    return {_normalise(n) for n in names | {"pyinstaller", "pyinstaller-hooks-contrib"}}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def without_dev_metadata(entries, dev: set[str] | None = None):
    """Drop the *.dist-info of development tools from (source, dest) or TOC entries:
    copy_metadata(recursive=True) follows optional requirements too (safetensors'
    testing extra brings hypothesis's metadata)."""
    dev = dev_packages() if dev is None else dev
    kept = []
    for entry in entries:
        dest = entry[1] if len(entry) == 2 else entry[0]
        top = dest.replace("\\", "/").split("/")[0]
        match = re.fullmatch(r"(.+?)-[^-]+\.dist-info", top)
        if match and _normalise(match.group(1)) in dev:
            continue
        kept.append(entry)
    return kept


def dev_packages_in(bundle: Path, dev: set[str] | None = None) -> list[str]:
    """Folders of a built bundle that belong to a development tool (should be none)."""
    dev = dev_packages() if dev is None else dev
    found = []
    for folder in bundle.rglob("*"):
        name = folder.name
        stem = re.sub(r"-[^-]+\.dist-info$", "", name)
        if folder.is_dir() and (_normalise(stem) in dev or name in ("pytest", "_pytest")):
            found.append(str(folder.relative_to(bundle)))
    return sorted(found)


def version() -> str:
    """The project version, from pyproject.toml (the one place it is written)."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def platform_tag() -> str:
    """linux-x86_64, windows-amd64, macos-arm64, ...: part of the archive's name."""
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform,
                                                                         sys.platform)
    return f"{system}-{platform.machine().lower() or 'unknown'}"


# jpeglib (block-preserving JPEG saves) loads its libjpeg builds by scanning its folder, so
# PyInstaller cannot see them. The version it selects on import and the two the saver asks
# for are enough; the other builds (~40 MB) stay out. Without them saves still work, as
# whole re-encodes with a note.
JPEGLIB_BUILDS = ("6b", "turbo210", "mozjpeg403")


def jpeglib_binaries() -> list[tuple[str, str]]:
    """(source, bundle folder) of the jpeglib libraries the app uses."""
    import importlib.util

    spec = importlib.util.find_spec("jpeglib")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "cjpeglib"
    return [(str(p), "jpeglib/cjpeglib") for build in JPEGLIB_BUILDS
            for p in sorted(folder.glob(f"cjpeglib_{build}.*"))]


def data_files(root: Path = ROOT) -> list[tuple[str, str]]:
    """(source file, destination folder) for the app's own data: resources and configs."""
    pairs = []
    for pattern in RESOURCE_PATTERNS:
        pairs += [(str(p), "resources") for p in sorted((root / "resources").glob(pattern))]
    for pattern in CONFIG_PATTERNS:
        pairs += [(str(p), "engine/net/configs")
                  for p in sorted((root / "engine" / "net" / "configs").glob(pattern))]
    return pairs


# Files of other packages the app reads by path: the face detector's cascade (the rest of
# scikit-image's sample data, 7.6 MB of test pictures, stays out).
PACKAGE_FILES = (("skimage", "data/lbpcascade_frontalface_opencv.xml"),)


def package_files() -> list[tuple[str, str]]:
    """(source file, destination folder) of PACKAGE_FILES, found where Python finds them."""
    import importlib.util

    pairs = []
    for package, relative in PACKAGE_FILES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{package} is not installed: the bundle needs {relative}")
        source = Path(spec.origin).parent / relative
        pairs.append((str(source), f"{package}/{Path(relative).parent.as_posix()}"))
    return pairs


def is_weight_file(path: str) -> bool:
    return path.lower().endswith(WEIGHT_SUFFIXES)


def trimmed(entries, prefixes=TRIM_PREFIXES, keep=TRIM_KEEP, patterns=TRIM_PATTERNS):
    """Drop PyInstaller TOC entries (dest, source, kind) whose destination starts with a
    trimmed prefix (unless listed in `keep`) or matches a pattern, and any model weights
    a package might carry."""
    kept = []
    for entry in entries:
        dest = entry[0].replace("\\", "/")
        if is_weight_file(dest) or any(fnmatch(dest, p) for p in patterns) or (
                dest.startswith(prefixes) and not any(fnmatch(dest, k) for k in keep)):
            continue
        kept.append(entry)
    return kept


def cuda_trimmed(entries, trim=CUDA_TRIM):
    """(kept, dropped) TOC entries: the CUDA libraries in `trim` are dropped."""
    kept, dropped = [], []
    for entry in entries:
        dest = entry[0].replace("\\", "/")
        (dropped if any(fnmatch(dest, pattern) for pattern, _ in trim) else kept).append(entry)
    return kept, dropped


def cuda_runtime_binaries(patterns=CUDA_RUNTIME_LOADED) -> list[tuple[str, str]]:
    """(source, destination folder) of the libraries in `patterns` from the environment's
    nvidia/*/lib folders (the pip packages torch's CUDA build depends on)."""
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    pairs = []
    for top in spec.submodule_search_locations:
        for lib in sorted(Path(top).glob("*/lib/*")):
            alternative = ".alt." in lib.name
            if not alternative and any(fnmatch(lib.name, p) for p in patterns):
                pairs.append((str(lib), f"nvidia/{lib.parent.parent.name}/lib"))
    return pairs


def _needed_names(entries, needed) -> dict[str, set[str]]:
    return {entry[0]: set(needed(entry[1])) for entry in entries}


def still_needed(kept, dropped, needed) -> list[str]:
    """'<dropped> (needed by <kept>)' for each dropped library a kept binary asks the
    loader for (DT_NEEDED): such a trim would break the bundle. `needed(source path)`
    lists a binary's DT_NEEDED names (installer/elf.py)."""
    names = {Path(e[0]).name: e[0] for e in dropped}
    problems = []
    for dest, wants in _needed_names(kept, needed).items():
        problems += [f"{names[w]} (needed by {dest})" for w in sorted(wants) if w in names]
    return problems


def _is_system_library(source: str, homes: Iterable[str]) -> bool:
    """A library PyInstaller found on the build machine's system, not in Python or a
    package of the environment."""
    path = os.path.realpath(source)
    return not any(path.startswith(os.path.realpath(h) + os.sep) for h in homes)


def without_unneeded_system_libraries(entries, needed, homes=None):
    """(kept, dropped): system libraries (outside Python and its environment) that no
    other binary in the bundle needs any more, after plugins were trimmed. Libraries of
    the packages themselves are never dropped here: many are loaded by name at run
    time (cuDNN's parts, Qt plugins), which DT_NEEDED does not show."""
    homes = list(homes if homes is not None else {sys.prefix, sys.base_prefix, str(ROOT)})
    system_libs = [e for e in entries
                   if os.path.isfile(e[1]) and _is_system_library(e[1], homes)]
    by_name = {Path(e[0]).name: e for e in system_libs}
    reached: set[str] = set()
    todo = [e for e in entries if e not in system_libs]
    while todo:
        entry = todo.pop()
        for name in needed(entry[1]):
            if name in by_name and name not in reached:
                reached.add(name)
                todo.append(by_name[name])
    dropped = [e for e in system_libs if Path(e[0]).name not in reached]
    return [e for e in entries if e not in dropped], dropped


def qt_plugin_dests(entries) -> set[str]:
    """Qt plugin paths in a TOC, relative to the plugins folder ("platforms/libqxcb.so")."""
    found = set()
    for entry in entries:
        dest = entry[0].replace("\\", "/")
        match = re.search(r"/Qt/plugins/(.+)$|^PySide6/plugins/(.+)$", dest)
        if match:
            found.add(match.group(1) or match.group(2))
    return found


def missing_qt_plugins(entries, system: str | None = None) -> list[str]:
    """Required plugins (for `system`, default this one) that a TOC lacks."""
    have = qt_plugin_dests(entries)
    return [p for p in REQUIRED_QT_PLUGINS.get(system or sys.platform, ()) if p not in have]
