"""The engine is the Qt-free core: importing any of it loads no Qt binding and no torch.

The import statements themselves are checked by import-linter (tests/test_architecture.py).
"""

import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "qtpy", "qtawesome", "shiboken6")


def test_importing_every_engine_module_loads_no_qt():
    modules = sorted(
        "engine." + ".".join(p.relative_to(ENGINE).with_suffix("").parts)
        for p in ENGINE.rglob("*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent, check=True
    )
    assert out.stdout.strip() == ""


def test_importing_the_engine_does_not_load_torch():
    """Heavy imports are lazy, so the window can appear before torch loads."""
    code = ("import engine.net.config, engine.events, engine.sampling.device, engine.cli.main, "
            "engine.removal.settings, sys\nprint('torch' in sys.modules)")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent, check=True
    )
    assert out.stdout.strip() == "False"
