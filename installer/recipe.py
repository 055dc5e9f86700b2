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

import platform
import re
import sys
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"

APP_NAME = "Moebius Studio"  # what people see: window title, .app name, menu entry
EXE_NAME = "MoebiusStudio"  # the app executable and the bundle folder (dist/MoebiusStudio/)
CLI_NAME = "moebius-cli"  # Windows only: the same program as a console executable
BUNDLE_ID = "io.github.moebiusstudio.MoebiusStudio"  # macOS CFBundleIdentifier
DESKTOP_ID = "moebius-studio"  # Linux: moebius-studio.desktop, icon name moebius-studio
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
    "scipy",
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


def data_files(root: Path = ROOT) -> list[tuple[str, str]]:
    """(source file, destination folder) for the app's own data: resources and configs."""
    pairs = []
    for pattern in RESOURCE_PATTERNS:
        pairs += [(str(p), "resources") for p in sorted((root / "resources").glob(pattern))]
    for pattern in CONFIG_PATTERNS:
        pairs += [(str(p), "engine/net/configs")
                  for p in sorted((root / "engine" / "net" / "configs").glob(pattern))]
    return pairs


def is_weight_file(path: str) -> bool:
    return path.lower().endswith(WEIGHT_SUFFIXES)


def trimmed(entries, prefixes=TRIM_PREFIXES, keep=TRIM_KEEP):
    """Drop PyInstaller TOC entries (dest, source, kind) whose destination starts with a
    trimmed prefix (unless listed in `keep`), and any model weights a package might carry."""
    kept = []
    for entry in entries:
        dest = entry[0].replace("\\", "/")
        if is_weight_file(dest) or (dest.startswith(prefixes)
                                    and not any(fnmatch(dest, k) for k in keep)):
            continue
        kept.append(entry)
    return kept


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
