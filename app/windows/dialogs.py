"""Preferences. (The dialogs about model weights are in model_dialog.py and
model_manager.py.)"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.jobs.keeper import HistoryKeeper
from app.jobs.worker import JobHandle, Worker
from app.settings import Settings
from app.windows.history_disk import HistoryDiskRow
from engine.about import APP_NAME as APP
from engine.removal.settings import RANGES
from engine.sampling.device import DeviceSupport
from engine.weights.location import ENV_VAR, default_models_dir, models_folder

DEVICES = [("auto", "Automatic (GPU if there is one)"), ("cpu", "CPU"),
           ("cuda", "NVIDIA GPU (CUDA)"), ("mps", "Apple GPU (Metal)")]
# The device setting in a few words, for the status bar before a removal has run.
DEVICE_WORDS = {"auto": "GPU if there is one, else CPU", "cpu": "CPU", "cuda": "NVIDIA GPU",
                "mps": "Apple GPU"}
QUALITIES = [("auto", "Automatic: fast on a GPU, exact on the CPU"),
             ("exact", "Exact: full precision, the reference's numbers"),
             ("fast", "Fast: half precision where the hardware has it; pixels differ slightly")]


class PreferencesDialog(QDialog):
    """The removal settings, and the device they run on (`in_use`: found by a job on the
    worker, because it imports torch; `in_use_ready` is emitted when it is shown)."""

    in_use_ready = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None,
                 worker: Worker | None = None, devices: list[DeviceSupport] | None = None,
                 history: HistoryKeeper | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.worker = worker
        self._probe: JobHandle | None = None
        form = QFormLayout()

        self.device = QComboBox()
        self._add_devices(devices if devices is not None else _probe_devices())
        form.addRow("Device:", self.device)

        self.quality = QComboBox()
        for key, label in QUALITIES:
            self.quality.addItem(label, key)
        self.quality.setCurrentIndex(max(0, self.quality.findData(settings.quality)))
        form.addRow("Quality:", self.quality)

        self.in_use = QLabel("")
        self.in_use.setWordWrap(True)
        self.in_use.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("In use:", self.in_use)
        self.device.currentIndexChanged.connect(self._show_device_in_use)
        self.quality.currentIndexChanged.connect(self._show_device_in_use)
        self._show_device_in_use()

        self.steps = QSpinBox()
        self.steps.setRange(1, 100)
        self.steps.setValue(settings.steps)
        self.steps.setToolTip("More steps: finer detail, proportionally slower. 20 is the "
                              "authors' setting.")
        form.addRow("Sampling steps:", self.steps)

        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 10.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(settings.guidance)
        self.guidance.setToolTip("How strongly the fill follows the model's sense of "
                                 "'background'. 2.5 is the authors' setting.")
        form.addRow("Guidance:", self.guidance)

        seed_row = QHBoxLayout()
        self.random_seed = QCheckBox("New seed each time")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.random_seed.setChecked(settings.seed < 0)
        self.seed.setValue(max(settings.seed, 0))
        self.seed.setEnabled(settings.seed >= 0)
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        seed_row.addWidget(self.random_seed)
        seed_row.addWidget(self.seed)
        form.addRow("Seed:", seed_row)

        self.variations = QSpinBox()
        low, high = (int(RANGES["variations"].low), int(RANGES["variations"].high))
        self.variations.setRange(low, high)
        self.variations.setValue(settings.variations)
        self.variations.setToolTip(
            "Fills to choose from after each removal, one seed each (click or ← → to "
            "switch, Enter keeps one, Esc none). On a GPU several cost little more than "
            "one; on a CPU each costs a whole removal.")
        form.addRow("Variations:", self.variations)

        self.colour_match = QCheckBox("Match the fill's colour to its surroundings")
        self.colour_match.setChecked(settings.colour_match)
        form.addRow("", self.colour_match)

        self.reencode_jpeg = QCheckBox("Re-encode the whole JPEG")
        self.reencode_jpeg.setChecked(settings.reencode_jpeg)
        self.reencode_jpeg.setToolTip(
            "Off (recommended): saving a JPEG re-encodes only the 8-32 pixel blocks you "
            "changed; the rest of the photo keeps its exact bytes. On: the whole picture is "
            "encoded again, as most editors do, which changes every pixel slightly.")
        form.addRow("JPEG saving:", self.reencode_jpeg)

        models_row = QHBoxLayout()
        self.models_dir = QLineEdit(settings.models_dir)
        self.models_dir.setPlaceholderText(f"default: {default_models_dir()}")
        self.models_dir.setToolTip("Where the Moebius models are kept; the command line "
                                   "uses the same folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        models_row.addWidget(self.models_dir)
        models_row.addWidget(browse)
        form.addRow("Models folder:", models_row)
        used = models_folder()
        if used.source == "environment":  # the variable wins over this setting
            self.models_dir.setEnabled(False)
            browse.setEnabled(False)
            note = QLabel(f"Set by the {ENV_VAR} environment variable: {used.path}")
            note.setWordWrap(True)
            form.addRow("", note)

        self.history: HistoryDiskRow | None = None
        if history is not None:
            self.history = HistoryDiskRow(history, settings.history_limit_mb)
            form.addRow("Edit histories:", self.history)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    @Slot()
    def _show_device_in_use(self) -> None:
        """The device the chosen settings run on, with its memory, and why not a GPU."""
        if self.worker is None:
            self.in_use.setText("")
            return
        if self._probe is not None:
            self._probe.cancel()  # its answer is for settings no longer chosen
        from engine.sampling.device_report import device_report_events

        device, quality = self.device.currentData(), self.quality.currentData()
        self.in_use.setText("Checking…")

        def make_events(cancel, host):
            return device_report_events(device, quality)

        handle = self.worker.submit(make_events, "device in use")
        self._probe = handle
        handle.done.connect(lambda event: self._device_found(handle, event.result))
        handle.failed.connect(lambda event: self._device_found(handle, None, event.message))

    def _device_found(self, handle: JobHandle, report, error: str = "") -> None:
        if handle is not self._probe or handle.cancel_requested:
            return
        self._probe = None
        if report is None:
            self.in_use.setText(error)
        else:
            self.in_use.setText(report.summary + (f"\n{report.note}" if report.note else ""))
        self.in_use_ready.emit()

    def _add_devices(self, devices: list[DeviceSupport]) -> None:
        """Every device choice; those this computer lacks are greyed out, with the reason."""
        support = {d.device: d for d in devices}
        model = self.device.model()
        assert isinstance(model, QStandardItemModel)
        for key, label in DEVICES:
            info = support.get(key)
            available = info is None or info.available
            self.device.addItem(label if available else f"{label}: not available", key)
            added = model.item(self.device.count() - 1)
            if not available and info is not None and added is not None:
                added.setEnabled(False)
                added.setToolTip(f"Not available: {info.reason}")
        index = self.device.findData(self.settings.device)
        chosen = model.item(index) if index >= 0 else None
        self.device.setCurrentIndex(index if chosen is not None and chosen.isEnabled() else 0)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", self.models_dir.text())
        if folder:
            self.models_dir.setText(folder)

    def accept(self) -> None:
        s = self.settings
        s.device = self.device.currentData()
        s.quality = self.quality.currentData()
        s.steps = self.steps.value()
        s.guidance = self.guidance.value()
        s.seed = -1 if self.random_seed.isChecked() else self.seed.value()
        s.colour_match = self.colour_match.isChecked()
        s.variations = self.variations.value()
        s.reencode_jpeg = self.reencode_jpeg.isChecked()
        if self.models_dir.isEnabled():
            s.models_dir = self.models_dir.text().strip()
        if self.history is not None:
            s.history_limit_mb = self.history.limit.value()
            self.history.keeper.store.limit = s.history_limit_mb * 2**20
        super().accept()

    def done(self, result: int) -> None:
        if self._probe is not None:  # nobody will read its answer
            self._probe.cancel()
            self._probe = None
        super().done(result)


def _probe_devices() -> list[DeviceSupport]:
    """Which devices this computer has (imports torch once: a moment's wait)."""
    from PySide6.QtGui import QGuiApplication

    from engine.sampling.device import device_support

    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        return device_support()
    finally:
        QGuiApplication.restoreOverrideCursor()


def ask_large_mask(parent: QWidget, share: float) -> bool:
    """Ask before a removal replaces most of the photo; True if the person wants that."""
    answer = QMessageBox.question(
        parent, APP,
        f"The mask covers {share:.0%} of the photo, so most of the picture would be "
        "replaced by invented content.\n\nRemove all of it anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
