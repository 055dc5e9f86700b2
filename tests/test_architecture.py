"""The architecture is a contract: import-linter checks the layers in pyproject.toml,
and the tree has no import cycles and installs every package it has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml")], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_import_contracts_are_kept():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path):
    # The contracts are not vacuous: the network importing the app, or the document
    # importing torch, is caught.
    for name in ("engine", "app", "resources"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    config = tmp_path / "engine" / "net" / "config.py"
    config.write_text(config.read_text() + "\nimport app.settings  # noqa\n")
    mask = tmp_path / "engine" / "document" / "mask.py"
    mask.write_text(mask.read_text() + "\nimport engine.sampling.sampler  # noqa\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert "The engine never imports the app or Qt BROKEN" in out.stdout
    assert "Documents and image files are independent of the network BROKEN" in out.stdout


def test_no_import_cycles_between_our_modules():
    sys.path.insert(0, str(ROOT / "tests"))
    from import_graph import cycles

    assert cycles(ROOT, ["app", "engine"]) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from import_graph import cycles

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")  # inside a function
    (pkg / "b.py").write_text("from pkg.a import f\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert cycles(tmp_path, ["pkg"]) == [["pkg.a", "pkg.b"]]
