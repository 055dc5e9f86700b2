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
import shutil
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
    # jpeglib's libjpeg builds are loaded by folder scan: the three the saver uses go in.
    jpeg = {Path(src).name for src, dest in analysis.kwargs["binaries"]
            if dest == "jpeglib/cjpeglib"}
    assert {f"cjpeglib_{b}.abi3.so" for b in recipe.JPEGLIB_BUILDS} <= jpeg or \
        platform != "linux"
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
    assert build.bundle_dir("cuda") == ROOT / "dist" / "cuda" / "MoebiusStudio"
    assert build.recipe.version() and build.recipe.platform_tag().count("-") == 1


def test_archive_names_say_the_flavour_and_a_mismatched_environment_is_refused(build):
    recipe = build.recipe
    assert recipe.archive_stem("cuda").endswith(f"-{recipe.platform_tag()}-cuda")
    assert recipe.archive_stem("cpu") == (
        f"MoebiusStudio-{recipe.version()}-{recipe.platform_tag()}-cpu")
    have = recipe.environment_flavour()  # this environment's torch
    assert have in recipe.FLAVOURS[recipe.system()]
    assert build.check_flavour(have) is None
    other = next((f for f in recipe.FLAVOURS[recipe.system()] if f != have), None)
    if other is not None:
        problem = build.check_flavour(other)
        assert f"has torch's {have.upper()} build" in problem
        assert f"installer/build --flavour {other}" in problem
    assert "has the flavours" in build.check_flavour("mps" if have != "mps" else "cuda")
    for system, flavours in recipe.FLAVOURS.items():
        assert all((system, f) in recipe.TORCH_FOR for f in flavours)


def test_cuda_trim_drops_only_what_nothing_needs(recipe):
    toc = [(dest, f"/site/{dest}", "BINARY") for dest in (
        "nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13",
        "nvidia/cu13/lib/libcusolverMg.so.12", "nvidia/cu13/lib/libcusolver.so.12",
        "torch/lib/libtorch_cuda_linalg.so", "torch/lib/libtorch_cuda.so",
        "nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cu13/lib/libnvrtc.alt.so.13",
        "nvidia/cudnn/lib/libcudnn_adv.so.9", "nvidia/nvshmem/lib/nvshmem_transport_ucx.so.3",
        "nvidia/nccl/lib/libnccl.so.2")]
    kept, dropped = recipe.cuda_trimmed(toc)
    assert [d for d, *_ in dropped] == [
        "nvidia/cu13/lib/libcusolverMg.so.12", "nvidia/cu13/lib/libcusolver.so.12",
        "torch/lib/libtorch_cuda_linalg.so", "nvidia/cu13/lib/libnvrtc.alt.so.13",
        "nvidia/nvshmem/lib/nvshmem_transport_ucx.so.3"]
    assert "nvidia/cudnn/lib/libcudnn_adv.so.9" in [d for d, *_ in kept]  # loaded by name
    needs = {"/site/torch/lib/libtorch_cuda.so": ["libcublas.so.13", "libnccl.so.2"]}
    assert recipe.still_needed(kept, dropped, lambda src: needs.get(src, [])) == []
    needs["/site/nvidia/nccl/lib/libnccl.so.2"] = ["libcusolver.so.12"]
    assert recipe.still_needed(kept, dropped, lambda src: needs.get(src, [])) == [
        "nvidia/cu13/lib/libcusolver.so.12 (needed by nvidia/nccl/lib/libnccl.so.2)"]


def test_gtk_theme_and_the_system_libraries_only_it_needed_are_dropped(recipe, tmp_path):
    system, env = tmp_path / "usr" / "lib", tmp_path / "venv"
    for folder in (system, env / "PySide6"):
        folder.mkdir(parents=True)
    files = {name: system / name for name in ("libgtk-3.so.0", "libcairo.so.2",
                                               "libfontconfig.so.1", "libxcb.so.1")}
    files["libqxcb.so"] = env / "PySide6" / "libqxcb.so"
    files["libqgtk3.so"] = env / "PySide6" / "libqgtk3.so"
    for path in files.values():
        path.write_bytes(b"\x7fELF")
    needs = {files["libqxcb.so"]: ["libxcb.so.1", "libfontconfig.so.1"],
             files["libqgtk3.so"]: ["libgtk-3.so.0", "libfontconfig.so.1"],
             files["libgtk-3.so.0"]: ["libcairo.so.2"]}
    toc = [("PySide6/Qt/plugins/platforms/libqxcb.so", str(files["libqxcb.so"]), "BINARY"),
           ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", str(files["libqgtk3.so"]),
            "BINARY")]
    toc += [(name, str(files[name]), "BINARY") for name in ("libgtk-3.so.0", "libcairo.so.2",
                                                            "libfontconfig.so.1", "libxcb.so.1")]
    trimmed = recipe.trimmed(toc)
    assert "PySide6/Qt/plugins/platformthemes/libqgtk3.so" not in [d for d, *_ in trimmed]
    kept, dropped = recipe.without_unneeded_system_libraries(
        trimmed, lambda src: needs.get(Path(src), []), homes=[str(env)])
    assert sorted(d for d, *_ in dropped) == ["libcairo.so.2", "libgtk-3.so.0"]
    assert [d for d, *_ in kept] == ["PySide6/Qt/plugins/platforms/libqxcb.so",
                                     "libfontconfig.so.1", "libxcb.so.1"]


def test_no_development_tool_metadata_is_bundled(recipe, tmp_path):
    dev = recipe.dev_packages()
    assert {"pytest", "hypothesis", "pytest_qt", "mypy", "ruff", "pyinstaller"} <= dev
    pairs = [("/s/hypothesis-6.1.dist-info", "hypothesis-6.1.dist-info"),
             ("/s/pytest_qt-4.5.0.dist-info", "pytest_qt-4.5.0.dist-info"),
             ("/s/safetensors-0.9.dist-info", "safetensors-0.9.dist-info"),
             ("/s/diffusers-0.38.0.dist-info", "diffusers-0.38.0.dist-info")]
    assert [d for _, d in recipe.without_dev_metadata(pairs)] == [
        "safetensors-0.9.dist-info", "diffusers-0.38.0.dist-info"]
    (tmp_path / "_internal" / "hypothesis-6.1.dist-info").mkdir(parents=True)
    (tmp_path / "_internal" / "torch").mkdir()
    assert recipe.dev_packages_in(tmp_path) == ["_internal/hypothesis-6.1.dist-info"]


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


# ---- the desktop entry, read as the desktop-entry specification says -----------------

EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _unescape_string(value: str) -> str:
    """Undo the escapes of a value of type string (applied before Exec's quoting)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def exec_argv(value: str, file: str) -> list[str]:
    """The program and arguments a launcher runs for an Exec value and one file (%f)."""
    text, argv, i = _unescape_string(value), [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] == '"':
            arg, i = "", i + 1
            while text[i] != '"':
                if text[i] == "\\":
                    assert text[i + 1] in '"`$\\', f"invalid escape in {value!r}"
                    arg, i = arg + text[i + 1], i + 2
                else:
                    arg, i = arg + text[i], i + 1
            i += 1
        else:
            end = text.find(" ", i)
            arg, i = text[i:end if end >= 0 else len(text)], end if end >= 0 else len(text)
            assert not EXEC_RESERVED & set(arg), f"unquoted reserved character in {value!r}"
        if arg == "%f":
            argv.append(file)
            continue
        assert "%" not in arg.replace("%%", ""), f"unknown field code in {arg!r}"
        argv.append(arg.replace("%%", "%"))
    return argv


AWKWARD_FOLDERS = ["Moebius 100%", 'say "cheese"', "back\\slash", "$HOME and `date`",
                   "semi;colon & amp (1)", "plain"]


@pytest.mark.parametrize("folder", AWKWARD_FOLDERS)
def test_exec_line_is_escaped_as_the_specification_requires(build, folder):
    program = f"/opt/{folder}/MoebiusStudio"
    keys = _desktop_keys(build.render_desktop_entry(program, "moebius-studio"))
    assert exec_argv(keys["Exec"], "/photos/a b.jpg") == [program, "/photos/a b.jpg"]
    assert _unescape_string(keys["TryExec"]) == program
    if folder == "Moebius 100%":
        assert keys["Exec"] == '"/opt/Moebius 100%%/MoebiusStudio" %f'
    if folder == "plain":
        assert keys["Exec"] == "/opt/plain/MoebiusStudio %f"


def _validate(entry: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        return
    out = subprocess.run([tool, str(entry)], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.mark.skipif(os.name != "posix", reason="runs sh")
@pytest.mark.parametrize("folder", AWKWARD_FOLDERS)
def test_installed_entry_starts_the_bundle_from_an_awkward_folder(tmp_path, build, folder):
    """The installed menu entry, read as a launcher reads it, starts the app in a folder
    named e.g. `Moebius 100%`; desktop-file-validate accepts it."""
    bundle = tmp_path / folder / "MoebiusStudio"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    (bundle / "_internal" / "resources" / "icon.png").write_bytes(b"png")
    started = tmp_path / "started.txt"
    app = bundle / "MoebiusStudio"  # stands in for the app: records how it was started
    app.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" > "{started}"\n')
    app.chmod(0o755)
    build.add_linux_files(bundle)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))
    subprocess.run(["sh", str(bundle / "install-desktop-entry.sh")], env=env, check=True,
                   capture_output=True)
    entry = tmp_path / "data" / "applications" / "moebius-studio.desktop"
    keys = _desktop_keys(entry.read_text(encoding="utf-8"))
    assert _unescape_string(keys["TryExec"]) == str(app)
    argv = exec_argv(keys["Exec"], "/photos/holiday 1.jpg")
    assert argv == [str(app), "/photos/holiday 1.jpg"]
    subprocess.run(argv, check=True, timeout=30)
    assert started.read_text().splitlines() == [str(app), "/photos/holiday 1.jpg"]
    _validate(entry)


def test_desktop_file_validate_accepts_the_rendered_entries(tmp_path, build):
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate is not installed (Debian: desktop-file-utils; "
                    ".ci/run installs it); the specification checks above still ran")
    for i, folder in enumerate(AWKWARD_FOLDERS):
        entry = tmp_path / f"moebius-studio-{i}.desktop"
        entry.write_text(build.render_desktop_entry(f"/opt/{folder}/MoebiusStudio",
                                                    "moebius-studio"), encoding="utf-8")
        _validate(entry)
    bad = tmp_path / "bad.desktop"  # the checker is real: an unescaped % is refused
    bad.write_text("[Desktop Entry]\nType=Application\nName=X\nExec=\"/opt/Moebius 100%/x\" %f\n")
    out = subprocess.run(["desktop-file-validate", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 or out.stdout.strip()


# ---- library search paths --------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("gcc") is None,
                    reason="builds a shared library with gcc (Linux)")
def test_build_machine_search_paths_are_removed_and_the_library_still_loads(tmp_path, build):
    elf = build.elf  # installer/elf.py, as the build uses it
    source = tmp_path / "lib.c"
    source.write_text("int answer(void) { return 42; }\n")
    flags = {"mixed": "-Wl,-rpath,/build/venv/lib:$ORIGIN/deps",
             "foreign": "-Wl,--enable-new-dtags,-rpath,/root/.pyenv/lib",
             "own": "-Wl,-rpath,$ORIGIN"}
    for name, flag in flags.items():
        lib = tmp_path / f"lib{name}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(source), flag,
                        "-Wl,--no-as-needed", "-lm"], check=True)
        before = elf.read_dynamic(lib)
        assert "libm.so.6" in before.needed
        removed = elf.drop_foreign_search_paths(lib)
        after = elf.read_dynamic(lib)
        assert after.needed == before.needed
        assert all(elf.is_bundle_relative(p) for p in after.rpath + after.runpath)
        if name == "mixed":
            assert removed == ["/build/venv/lib"] and after.rpath + after.runpath == [
                "$ORIGIN/deps"]
        elif name == "foreign":
            assert removed == ["/root/.pyenv/lib"] and after.runpath == []
        else:
            assert removed == [] and after.rpath + after.runpath == ["$ORIGIN"]
        import ctypes

        assert ctypes.CDLL(str(lib)).answer() == 42  # still a library the loader takes
    assert elf.read_dynamic(source).needed == [] and elf.needed(source) == []


def test_the_face_detector_cascade_goes_where_scikit_image_looks(recipe):
    from skimage.data import lbp_frontal_face_cascade_filename

    [(source, dest)] = recipe.package_files()
    expected = Path(lbp_frontal_face_cascade_filename())
    assert Path(source) == expected and expected.is_file()
    site = expected.parents[2]  # .../site-packages
    assert dest == expected.parent.relative_to(site).as_posix()
    assert "scipy" not in recipe.EXCLUDES  # scikit-image's detector imports it
