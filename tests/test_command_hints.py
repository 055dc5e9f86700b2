"""The commands that messages tell a person to run name the command as it exists for
them (engine/about.py `command_line`): in the bundle, in a checkout, after pip install."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from engine import about
from engine.errors import WeightsMissing

ROOT = Path(__file__).resolve().parent.parent


def test_command_line_in_a_checkout_a_bundle_and_a_pip_install(monkeypatch, tmp_path):
    assert about.installation() == "checkout"
    assert about.command_line("models download ft_places2") == (
        "python main.py models download ft_places2")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert about.installation() == "bundle"
    expected = {"win32": ".\\moebius-cli.exe", "darwin":
                '"/Applications/Moebius Studio.app/Contents/MacOS/MoebiusStudio"'}.get(
                    sys.platform, "./MoebiusStudio")
    assert about.command_line("models download ft_places2") == (
        f"{expected} models download ft_places2")
    monkeypatch.delattr(sys, "frozen")
    # A pip install: the package sits in site-packages, with no main.py beside it.
    site = tmp_path / "site-packages" / "engine"
    site.mkdir(parents=True)
    shutil.copy(ROOT / "engine" / "about.py", site / "about.py")
    spec = importlib.util.spec_from_file_location("installed_about", site / "about.py")
    assert spec is not None and spec.loader is not None
    installed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installed)
    assert installed.installation() == "pip"
    assert installed.command_line("models list") == "moebius-studio models list"


def test_missing_weights_name_the_bundle_command(monkeypatch, tmp_path, capsys):
    from engine.cli import models as models_cli
    from engine.weights.store import WeightStore

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    store = WeightStore(tmp_path / "models")
    with pytest.raises(WeightsMissing) as err:
        store.paths("ft_places2")
    message = str(err.value)
    assert "run: ./MoebiusStudio models download ft_places2" in message
    assert "./MoebiusStudio models import ft_places2 <downloaded file>" in message
    assert "./MoebiusStudio models import vae <folder>" in message
    assert "python main.py" not in message
    models_cli._list(store, None)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "* = default. Download with: ./MoebiusStudio models download NAME")
