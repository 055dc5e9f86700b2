"""Where the app's data files (sample photo, icon) are, however it was installed.

A checkout and the PyInstaller bundle keep them in `<root>/resources`; `pip install`
ships the same folder as the package `app.resources` (see pyproject.toml), beside this
module.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _folder() -> Path:
    for candidate in (_HERE / "resources", _HERE.parent / "resources"):
        if (candidate / "sample.jpg").is_file():
            return candidate
    return _HERE.parent / "resources"  # missing files are reported where they are used


RESOURCES = _folder()
SAMPLE_PHOTO = RESOURCES / "sample.jpg"
ICON = RESOURCES / "icon.png"
