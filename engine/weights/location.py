"""Where the model weights live: one setting that the command line and the app share.

The models folder is, first match wins:

1. a folder the caller names (`--models-dir`, or a test's argument),
2. `$MOEBIUS_MODELS_DIR`,
3. `models_dir` in the shared settings file `<user config folder>/MoebiusStudio/config.json`
   (written by the app's Preferences; on Linux `~/.config/MoebiusStudio/config.json`),
4. `<user data folder>/MoebiusStudio/models`.

The settings file is plain JSON so the command line reads it without Qt, and a person can
edit it by hand. Paths are computed on every call (never cached), so a changed setting or
environment takes effect at once.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from engine.about import APP_DIR_NAME

log = logging.getLogger(__name__)

ENV_VAR = "MOEBIUS_MODELS_DIR"
CONFIG_NAME = "config.json"
MODELS_KEY = "models_dir"


@dataclass(frozen=True)
class ModelsFolder:
    path: Path
    source: str  # "argument", "environment", "settings" or "default"


def config_file() -> Path:
    """The settings file shared by the command line and the app."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_DIR_NAME, appauthor=False)) / CONFIG_NAME


def default_models_dir() -> Path:
    from platformdirs import user_data_dir

    # No appauthor argument: the folder where earlier versions put the weights.
    return Path(user_data_dir(APP_DIR_NAME)) / "models"


def _read_config() -> dict:
    path = config_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def configured_models_dir() -> Path | None:
    """The models folder chosen in the settings file, or None (not set)."""
    value = _read_config().get(MODELS_KEY)
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else None


def set_models_dir(folder: str | os.PathLike | None) -> None:
    """Store the models folder in the settings file (None or "" = back to the default).

    Other keys in the file are kept; the file is replaced atomically."""
    data = _read_config()
    text = str(folder).strip() if folder is not None else ""
    if text:
        data[MODELS_KEY] = str(Path(text).expanduser())
    elif MODELS_KEY in data:
        del data[MODELS_KEY]
    else:
        return  # nothing set, nothing to write
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    log.info("models folder set to %s in %s", data.get(MODELS_KEY, "the default"), path)


def models_folder(override: str | os.PathLike | None = None) -> ModelsFolder:
    """The models folder and which of the four rules chose it."""
    if override:
        return ModelsFolder(Path(override).expanduser(), "argument")
    if os.environ.get(ENV_VAR):
        return ModelsFolder(Path(os.environ[ENV_VAR]).expanduser(), "environment")
    configured = configured_models_dir()
    if configured is not None:
        return ModelsFolder(configured, "settings")
    return ModelsFolder(default_models_dir(), "default")


def models_root(override: str | os.PathLike | None = None) -> Path:
    """The models folder: argument > $MOEBIUS_MODELS_DIR > settings file > default."""
    return models_folder(override).path
