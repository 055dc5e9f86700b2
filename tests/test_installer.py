"""The installer's recipe, checked without building (a PyInstaller build of torch takes
many minutes and about 1 GB, so CI does not build; see installer/smoke_test.py for the
test of a real bundle). What is checked here is real: the spec's own logic run against
stand-ins for PyInstaller's classes, the lists it bundles and drops, the Linux menu entry,
the icons, and the app's --smoke-test switch from source."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import subprocess
import sys
import types
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"


def load(name: str, path: Path):
    loader = SourceFileLoader(name, str(path))  # also loads `build`, which has no suffix
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recipe():
    sys.path.insert(0, str(INSTALLER))
    try:
        yield load("recipe", INSTALLER / "recipe.py")
    finally:
        sys.path.remove(str(INSTALLER))


@pytest.fixture(scope="module")
def build(recipe):
    return load("installer_build", INSTALLER / "build")


def test_bundled_data_is_resources_and_configs_and_never_weights(recipe):
    pairs = recipe.data_files()
    bundled = {(Path(src).relative_to(ROOT).as_posix(), dest) for src, dest in pairs}
    assert ("resources/sample.jpg", "resources") in bundled
    assert ("resources/icon.png", "resources") in bundled
    for name in ("moebius.yaml", "tiny.yaml", "pixelhacker_vae.json"):
        assert (f"engine/net/configs/{name}", "engine/net/configs") in bundled
    for src, dest in pairs:
        assert Path(src).is_file()
        assert not recipe.is_weight_file(src) and not src.endswith(".py")
        # The app finds these next to its modules: the layout must mirror the source tree.
        assert Path(src).parent.relative_to(ROOT).as_posix() == dest


def test_excludes_leave_everything_the_app_imports(recipe):
    imported = set()
    sources = [ROOT / "main.py", *(ROOT / "app").rglob("*.py"), *(ROOT / "engine").rglob("*.py")]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        imported |= set(re.findall(r"^\s*(?:from|import) ([\w.]+)", text, re.MULTILINE))
    assert any(m.startswith("PySide6.") for m in imported)
    for module in imported | {"torch", "diffusers", "huggingface_hub", "qtawesome", "qtpy"}:
        for excluded in recipe.EXCLUDES:
            assert not (module == excluded or module.startswith(excluded + ".")), (
                f"{module} is imported by the app but excluded from the bundle")
    assert {"tkinter", "pytest", "PyInstaller"} <= set(recipe.EXCLUDES)


def test_trimming_drops_test_programs_headers_and_weights_only(recipe):
    toc = [
        ("torch/lib/libtorch_cpu.so", "/x", "BINARY"),
        ("torch/test/atest", "/x", "DATA"),
        ("torch/bin/protoc", "/x", "BINARY"),
        ("torch/bin/torch_shm_manager", "/x", "BINARY"),
        ("torch/bin/test_api.exe", "/x", "BINARY"),
        ("torch/bin/asmjit.dll", "/x", "BINARY"),
        ("torch/include/ATen/core.h", "/x", "DATA"),
        ("PySide6/Qt/translations/qtbase_de.qm", "/x", "DATA"),
        ("resources/sample.jpg", "/x", "DATA"),
        ("engine/net/configs/moebius.yaml", "/x", "DATA"),
        ("somepkg/model.safetensors", "/x", "DATA"),
        ("PySide6\\Qt\\plugins\\platforms\\qwindows.dll", "/x", "BINARY"),
    ]
    kept = [dest for dest, *_ in recipe.trimmed(toc)]
    assert kept == ["torch/lib/libtorch_cpu.so", "torch/bin/torch_shm_manager",
                    "torch/bin/asmjit.dll", "resources/sample.jpg",
                    "engine/net/configs/moebius.yaml",
                    "PySide6\\Qt\\plugins\\platforms\\qwindows.dll"]


def test_required_qt_plugins_are_found_in_a_toc(recipe):
    linux = [(f"PySide6/Qt/plugins/{p}", "/x", "BINARY")
             for p in recipe.REQUIRED_QT_PLUGINS["linux"]]
    assert recipe.missing_qt_plugins(linux, "linux") == []
    assert recipe.missing_qt_plugins(linux[1:], "linux") == ["platforms/libqxcb.so"]
    windows = [(f"PySide6/plugins/{p}", "/x", "BINARY")
               for p in recipe.REQUIRED_QT_PLUGINS["win32"]]
    assert recipe.missing_qt_plugins(windows, "win32") == []


class _Recorder:
    """Stands in for one of PyInstaller's spec classes: records how it was called."""

    made: list

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.made.append(self)


def _run_spec(monkeypatch, recipe, platform: str, plugins):
    made: list = []
    names = {}
    for cls in ("PYZ", "EXE", "COLLECT", "BUNDLE"):
        names[cls] = type(cls, (_Recorder,), {"made": made})

    class Analysis(_Recorder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.datas = list(kwargs["datas"]) + [("torch/test/atest", "/x", "DATA")]
            self.binaries = [(f"PySide6/Qt/plugins/{p}", "/x", "BINARY") for p in plugins]
            self.pure, self.scripts = [], []

    Analysis.made = made
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.copy_metadata = lambda name, recursive=False: [(f"/site/{name}.dist-info",
                                                          f"{name}.dist-info")]
    hooks.collect_data_files = lambda name: [(f"/site/{name}/py.typed", name)]
    for module in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, module, types.ModuleType(module))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setitem(sys.modules, "recipe", recipe)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = INSTALLER / "moebius_studio.spec"
    namespace = {"SPECPATH": str(INSTALLER), "Analysis": Analysis, **names,
                 "__file__": str(spec)}
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)
    return made


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_spec_builds_one_folder_a_console_twin_on_windows_and_a_mac_app(monkeypatch, recipe,
                                                                        platform):
    made = _run_spec(monkeypatch, recipe, platform, recipe.REQUIRED_QT_PLUGINS[platform])
    analysis = made[0]
    datas = analysis.kwargs["datas"]
    assert (str(ROOT / "resources" / "sample.jpg"), "resources") in datas
    assert any(dest == "diffusers.dist-info" for _, dest in datas)
    assert any(dest == "torch.dist-info" for _, dest in datas)
    assert "tkinter" in analysis.kwargs["excludes"]
    assert all(not dest.startswith("torch/test/") for dest, *_ in analysis.datas)
    exes = [m for m in made if type(m).__name__ == "EXE"]
    windowed = platform in ("win32", "darwin")
    assert exes[0].kwargs["name"] == "MoebiusStudio"
    assert exes[0].kwargs["console"] is (not windowed)
    if platform == "win32":  # a windowed .exe cannot print: the command line needs a twin
        assert [(e.kwargs["name"], e.kwargs["console"]) for e in exes[1:]] == [
            ("moebius-cli", True)]
    else:
        assert len(exes) == 1
    if platform == "linux":
        assert exes[0].kwargs["icon"] is None  # the .desktop entry names the icon
    else:
        assert Path(exes[0].kwargs["icon"]).suffix == (".ico" if platform == "win32" else ".icns")
        assert Path(exes[0].kwargs["icon"]).is_file()
    (collect,) = [m for m in made if type(m).__name__ == "COLLECT"]
    assert collect.kwargs["name"] == "MoebiusStudio"
    bundles = [m for m in made if type(m).__name__ == "BUNDLE"]
    assert len(bundles) == (platform == "darwin")
    if bundles:
        assert bundles[0].kwargs["name"] == "Moebius Studio.app"
        assert bundles[0].kwargs["info_plist"]["CFBundleShortVersionString"] == recipe.version()


def test_spec_refuses_a_bundle_without_the_qt_platform_plugins(monkeypatch, recipe):
    with pytest.raises(SystemExit, match="libqxcb"):
        _run_spec(monkeypatch, recipe, "linux", ["imageformats/libqjpeg.so"])


def test_build_script_is_one_runnable_command(build):
    path = INSTALLER / "build"
    assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    if os.name == "posix":
        assert os.access(path, os.X_OK)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", build.PYINSTALLER_VERSION)
    assert build.SPEC.is_file()
    assert build.BUNDLE == ROOT / "dist" / "MoebiusStudio"
    assert build.recipe.version() and build.recipe.platform_tag().count("-") == 1


def _desktop_keys(text: str) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(text)
    return dict(parser["Desktop Entry"])


def test_linux_desktop_entry(build):
    template = (INSTALLER / "linux" / "moebius-studio.desktop").read_text(encoding="utf-8")
    keys = _desktop_keys(template)
    for key in ("Type", "Name", "Exec", "Icon", "Categories", "Terminal", "MimeType"):
        assert key in keys
    assert keys["Type"] == "Application" and keys["Terminal"] == "false"
    entry = _desktop_keys(build.render_desktop_entry("/opt/Moebius Studio/MoebiusStudio",
                                                     "moebius-studio"))
    assert entry["Exec"] == '"/opt/Moebius Studio/MoebiusStudio" %f'
    assert entry["TryExec"] == "/opt/Moebius Studio/MoebiusStudio"
    assert entry["Icon"] == "moebius-studio"
    assert "@" not in "".join(entry.values())
    script = (INSTALLER / "linux" / "install-desktop-entry.sh").read_text(encoding="utf-8")
    assert "moebius-studio.desktop.in" in script and "_internal/resources/icon.png" in script


@pytest.mark.skipif(os.name != "posix", reason="runs sh")
def test_install_desktop_entry_script_writes_a_valid_entry(tmp_path, build):
    bundle = tmp_path / "Moebius & Co" / "MoebiusStudio"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    (bundle / "_internal" / "resources" / "icon.png").write_bytes(b"png")
    build.add_linux_files(bundle)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))
    subprocess.run(["sh", str(bundle / "install-desktop-entry.sh")], env=env, check=True,
                   capture_output=True)
    entry = tmp_path / "data" / "applications" / "moebius-studio.desktop"
    keys = _desktop_keys(entry.read_text(encoding="utf-8"))
    assert keys["Exec"] == f'"{bundle}/MoebiusStudio" %f'
    assert keys["TryExec"] == f"{bundle}/MoebiusStudio"
    assert (tmp_path / "data/icons/hicolor/512x512/apps/moebius-studio.png").is_file()
    subprocess.run(["sh", str(bundle / "install-desktop-entry.sh"), "--remove"], env=env,
                   check=True, capture_output=True)
    assert not entry.exists()


def test_icons(recipe):
    png = Image.open(recipe.ICON_PNG)
    assert png.size == (512, 512) and png.mode == "RGBA"
    assert Image.open(recipe.ICON_ICO).format == "ICO"
    assert Image.open(recipe.ICON_ICNS).format == "ICNS"


@pytest.mark.gui
def test_smoke_test_switch_passes_from_source(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MOEBIUS_MODELS_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--smoke-test"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "smoke: OK"
    assert any(line.startswith("smoke: first window after") for line in lines)
    assert any(line.startswith("smoke: Quick removal") for line in lines)


@pytest.mark.skipif(os.name != "posix", reason="runs a shell script as appimagetool")
def test_appimage_directory_layout(tmp_path, monkeypatch, build):
    """appimagetool is not installed here: a stand-in records the AppDir it is given."""
    bundle = tmp_path / "MoebiusStudio"
    bundle.mkdir()
    (bundle / "MoebiusStudio").write_text("#!/bin/sh\n")
    tool = tmp_path / "bin" / "appimagetool"
    tool.parent.mkdir()
    tool.write_text('#!/bin/sh\nls "$1" > "$2"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(build, "WORK", tmp_path / "work")
    target = build.make_appimage(bundle, tmp_path / "out.AppImage")
    assert set(target.read_text().split()) == {"AppRun", "MoebiusStudio", "moebius-studio.desktop",
                                               "moebius-studio.png"}
    appdir = tmp_path / "work" / "MoebiusStudio.AppDir"
    assert os.access(appdir / "AppRun", os.X_OK)
    assert _desktop_keys((appdir / "moebius-studio.desktop").read_text())["Exec"] == (
        "MoebiusStudio %f")
