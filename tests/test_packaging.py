"""What `pip install` gets: every package, the data files beside the modules, no stray
top-level module, and an entry point that starts the real program."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    import shutil

    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("src")  # setuptools writes build/ into the project
    for name in ("app", "engine", "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(src)], check=True, timeout=300,
                   cwd=src, env={"PATH": "/usr/bin:/bin", "HOME": str(src)})
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_the_data_files_beside_the_modules(wheel):
    names = set(wheel.namelist())
    for name in ("app/resources/sample.jpg", "app/resources/icon.png",
                 "engine/net/configs/moebius.yaml", "engine/net/configs/pixelhacker_vae.json",
                 "app/main.py", "engine/removal/run.py"):
        assert name in names, name
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"app", "engine"}  # no stray main.py, tests or bench


def test_the_entry_point_is_the_app_main(wheel):
    info = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    text = wheel.read(info).decode()
    assert "moebius-studio = app.main:main" in text


def test_every_module_of_the_tree_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    for top in ("app", "engine"):
        for path in (ROOT / top).rglob("*.py"):
            assert path.relative_to(ROOT).as_posix() in names, path


def test_the_listed_packages_match_the_tree():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for top in ("app", "engine") for p in (ROOT / top).rglob("__init__.py")}
    assert on_disk | {"app.resources"} == listed


def test_the_resources_are_found_where_a_pip_install_puts_them(tmp_path):
    # app/assets.py looks beside its own module first (site-packages/app/resources/).
    import shutil

    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "resources", tmp_path / "app" / "resources")
    code = "from app.assets import SAMPLE_PHOTO; print(SAMPLE_PHOTO)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert Path(out.stdout.strip()) == tmp_path / "app" / "resources" / "sample.jpg"
