"""User preferences, persisted with QSettings."""

from __future__ import annotations

import json
import random

from PySide6.QtCore import QByteArray, QSettings

from engine.about import APP_DIR_NAME
from engine.errors import SettingsError
from engine.removal.settings import RANGES, SEED_MAX, EngineKind, RemovalSettings
from engine.weights.zoo import DEFAULT_VARIANT

RECENT_LIMIT = 10
KEPT_LIMIT = 1000  # photos whose fine-tune suggestion was answered with Keep
QUICK = "quick"  # the engine choice that is not a Moebius fine-tune


class Settings:
    """Typed access to the app's QSettings (a temporary file in tests)."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings or QSettings(APP_DIR_NAME, APP_DIR_NAME)

    def _get(self, key: str, default, kind):
        value = self.q.value(key, default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def _number(self, key: str, name: str, default):
        """A numeric setting, or its default when the stored value is not a valid one
        (a hand-edited or damaged settings file must not make every removal fail)."""
        value = self.q.value(key, default)
        try:
            return RANGES[name].check(name, float(str(value)))
        except (TypeError, ValueError, SettingsError):
            return default

    def removal_settings(self) -> RemovalSettings:
        """The settings of the next removal; a new random seed unless one is fixed."""
        choice = self.engine_choice
        quick = choice == QUICK
        return RemovalSettings(
            engine=EngineKind.QUICK if quick else EngineKind.MOEBIUS,
            variant=DEFAULT_VARIANT if quick else choice,
            steps=self.steps, guidance=self.guidance,
            seed=self.seed if self.seed >= 0 else random.randrange(2**31),
            device=self.device, quality=self.quality, colour_match=self.colour_match,
            variations=self.variations)

    # The engine: QUICK or a Moebius fine-tune id (DEFAULT_VARIANT, ...).
    @property
    def engine_choice(self) -> str:
        return self._get("engine/choice", DEFAULT_VARIANT, str)

    @engine_choice.setter
    def engine_choice(self, value: str) -> None:
        self.q.setValue("engine/choice", value)

    @property
    def device(self) -> str:
        return self._get("engine/device", "auto", str)

    @device.setter
    def device(self, value: str) -> None:
        self.q.setValue("engine/device", value)

    @property
    def quality(self) -> str:
        return self._get("engine/quality", "auto", str)

    @quality.setter
    def quality(self, value: str) -> None:
        self.q.setValue("engine/quality", value)

    @property
    def steps(self) -> int:
        return int(self._number("engine/steps", "steps", 20))

    @steps.setter
    def steps(self, value: int) -> None:
        self.q.setValue("engine/steps", int(value))

    @property
    def guidance(self) -> float:
        return float(self._number("engine/guidance", "guidance", 2.5))

    @guidance.setter
    def guidance(self, value: float) -> None:
        self.q.setValue("engine/guidance", float(value))

    @property
    def seed(self) -> int:
        """-1 means a new random seed for every removal."""
        value = self._get("engine/seed", -1, int)
        return value if 0 <= value <= SEED_MAX else -1

    @seed.setter
    def seed(self, value: int) -> None:
        self.q.setValue("engine/seed", int(value))

    @property
    def variations(self) -> int:
        """Candidates per removal; unset: what suits the chosen device (1 on a CPU, 3 on a
        GPU, engine.removal.settings.default_variations)."""
        if self.q.value("engine/variations") is None:
            from engine.removal.settings import default_variations

            return default_variations(self.device)
        return int(self._number("engine/variations", "variations", 1))

    @variations.setter
    def variations(self, value: int) -> None:
        self.q.setValue("engine/variations", int(value))

    @property
    def live_preview(self) -> bool:
        """Show the fill forming in the hole while a removal denoises (View menu)."""
        return self._get("view/live_preview", True, bool)

    @live_preview.setter
    def live_preview(self, value: bool) -> None:
        self.q.setValue("view/live_preview", bool(value))

    @property
    def colour_match(self) -> bool:
        return self._get("engine/colour_match", True, bool)

    @colour_match.setter
    def colour_match(self, value: bool) -> None:
        self.q.setValue("engine/colour_match", bool(value))

    # The models folder is shared with the command line: it lives in the engine's settings
    # file (engine/weights/location.py), not in QSettings. "" means the default folder.
    @property
    def reencode_jpeg(self) -> bool:
        """Save JPEGs by re-encoding the whole picture instead of keeping untouched blocks."""
        return self._get("files/reencode_jpeg", False, bool)

    @reencode_jpeg.setter
    def reencode_jpeg(self, value: bool) -> None:
        self.q.setValue("files/reencode_jpeg", bool(value))

    @property
    def models_dir(self) -> str:
        from engine.weights.location import configured_models_dir, set_models_dir

        legacy = self._get("models/dir", "", str)
        if legacy:  # chosen before the setting was shared: move it over once
            if configured_models_dir() is None:
                set_models_dir(legacy)
            self.q.remove("models/dir")
        folder = configured_models_dir()
        return str(folder) if folder is not None else ""

    @models_dir.setter
    def models_dir(self, value: str) -> None:
        from engine.weights.location import set_models_dir

        self.q.remove("models/dir")
        set_models_dir(value or None)

    # -- remembered between runs ------------------------------------------------------------

    def stage_costs(self, key: str) -> dict[str, float]:
        """Seconds per unit of each job stage measured last time on this machine (for the
        time-left estimate; engine/eta.py), for jobs of kind `key`."""
        try:
            data = json.loads(str(self.q.value(f"progress/{key}", "{}")))
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def set_stage_costs(self, key: str, costs: dict[str, float]) -> None:
        self.q.setValue(f"progress/{key}", json.dumps({k: round(v, 4) for k, v in
                                                      costs.items()}))

    @property
    def brush_size(self) -> int:
        return self._get("canvas/brush_size", 0, int)

    @brush_size.setter
    def brush_size(self, value: int) -> None:
        self.q.setValue("canvas/brush_size", int(value))

    @property
    def window_geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self.q.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self.q.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.q.setValue("window/state", value)

    @property
    def device_notice(self) -> str:
        """The last start-up notice about the device shown (app/windows/device_notice.py)."""
        return self._get("notices/device", "", str)

    @device_notice.setter
    def device_notice(self, value: str) -> None:
        self.q.setValue("notices/device", value)

    @property
    def recent_files(self) -> list[str]:
        value = self.q.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def add_recent(self, path: str) -> None:
        files = [path] + [p for p in self.recent_files if p != path]
        self.q.setValue("files/recent", files[:RECENT_LIMIT])

    def clear_recent(self) -> None:
        self.q.setValue("files/recent", [])

    def _kept(self) -> list[str]:
        value = self.q.value("suggest/kept", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def kept_fine_tune(self, content_hash: str) -> bool:
        """True if the person chose Keep for the photo with this SHA-256."""
        return content_hash in self._kept()

    def keep_fine_tune(self, content_hash: str) -> None:
        kept = [content_hash] + [h for h in self._kept() if h != content_hash]
        self.q.setValue("suggest/kept", kept[:KEPT_LIMIT])

    @property
    def history_limit_mb(self) -> int:
        """Disk the edit histories of all photos may use together, in MB."""
        return self._get("history/limit_mb", 2048, int)

    @history_limit_mb.setter
    def history_limit_mb(self, value: int) -> None:
        self.q.setValue("history/limit_mb", int(value))
