"""Preferences, and the dialog shown when a chosen fine-tune is not installed yet."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
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
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.jobs.keeper import HistoryKeeper
from app.jobs.worker import JobHandle, Worker
from app.settings import Settings
from app.windows.history_disk import HistoryDiskRow
from engine.errors import MoebiusError
from engine.events import Done, Failed, Progress
from engine.weights import zoo

DEVICES = [("auto", "Automatic (GPU if there is one)"), ("cpu", "CPU"),
           ("cuda", "NVIDIA GPU (CUDA)"), ("mps", "Apple GPU (Metal)")]
QUALITIES = [("auto", "Automatic: fast on a GPU, exact on the CPU"),
             ("exact", "Exact: full precision, the reference's numbers"),
             ("fast", "Fast: half precision where the hardware has it; pixels differ slightly")]


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None,
                 history: HistoryKeeper | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        form = QFormLayout()

        self.device = QComboBox()
        for key, label in DEVICES:
            self.device.addItem(label, key)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form.addRow("Device:", self.device)

        self.quality = QComboBox()
        for key, label in QUALITIES:
            self.quality.addItem(label, key)
        self.quality.setCurrentIndex(max(0, self.quality.findData(settings.quality)))
        form.addRow("Quality:", self.quality)

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
        self.models_dir.setPlaceholderText("default (your user data folder)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        models_row.addWidget(self.models_dir)
        models_row.addWidget(browse)
        form.addRow("Models folder:", models_row)

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
        s.reencode_jpeg = self.reencode_jpeg.isChecked()
        s.models_dir = self.models_dir.text().strip()
        if self.history is not None:
            s.history_limit_mb = self.history.limit.value()
            self.history.keeper.store.limit = s.history_limit_mb * 2**20
        super().accept()


class ModelDialog(QDialog):
    """A fine-tune's weights are missing: download, import, or use Quick instead.

    Result: Accepted when the model is ready; `use_quick` is True when the person chose
    the Quick engine instead.
    """

    def __init__(self, variant: str, store, worker: Worker, parent: QWidget | None = None):
        super().__init__(parent)
        from engine.weights.jobs import download_events, import_events

        self._download_events, self._import_events = download_events, import_events
        self.entry = zoo.resolve(variant)
        self.store, self.worker = store, worker
        self.use_quick = False
        self._job: JobHandle | None = None
        self.setWindowTitle(f"{self.entry.name} is not installed")
        vae_ready = store.status(zoo.VAE.id) == "ready"
        size_mb = self.entry.size // 1_000_000 + (0 if vae_ready else zoo.VAE.size // 1_000_000)
        self.text = QLabel(
            f"<b>{self.entry.name}</b>: {self.entry.description}<br><br>"
            f"Its weights are not on this computer yet (about {size_mb} MB to download"
            f"{'' if vae_ready else ', including the shared autoencoder'}). "
            "You can download them now, import files you already have, or use the "
            "Quick engine, which needs no download."
        )
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.download = QPushButton("Download")
        self.download.setDefault(True)
        self.import_ = QPushButton("Import from disk…")
        self.quick = QPushButton("Use Quick instead")
        self.cancel = QPushButton("Cancel")
        self.download.clicked.connect(self._start_download)
        self.import_.clicked.connect(self._import)
        self.quick.clicked.connect(self._choose_quick)
        self.cancel.clicked.connect(self._cancel)
        row = QHBoxLayout()
        for b in (self.download, self.import_, self.quick):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addLayout(row)
        self.setMinimumWidth(520)

    def _busy(self, busy: bool) -> None:
        for b in (self.download, self.import_, self.quick):
            b.setEnabled(not busy)
        self.bar.setVisible(busy)

    def _start_download(self) -> None:
        variant = self.entry.id
        self.status.setText("Connecting…")
        self._busy(True)
        self.bar.setRange(0, 0)
        store, download = self.store, self._download_events

        def make_events(cancel, host):
            return download(store, variant, cancel)

        self._watch(self.worker.submit(make_events, f"download {variant}"))

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Import {self.entry.name} weights", "",
            "Weights (*.bin *.safetensors);;All files (*)")
        if path:
            self.import_path(path)

    def import_path(self, path: str) -> None:
        self._busy(True)
        self.bar.setRange(0, 0)
        variant, store, import_ = self.entry.id, self.store, self._import_events

        def make_events(cancel, host):
            return import_(store, variant, path, cancel)

        self._watch(self.worker.submit(make_events, f"import {variant}"))

    def _watch(self, handle: JobHandle) -> None:
        self._job = handle
        handle.progress.connect(self._on_progress)
        handle.done.connect(self._on_done)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_failed)
        handle.finished.connect(self._on_finished)

    def _choose_quick(self) -> None:
        self.use_quick = True
        self.reject()

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.status.setText("Cancelling…")
        else:
            self.reject()

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        if event.total > 1:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(event.fraction * 1000))
        self.status.setText(event.message)

    @Slot(object)
    def _on_done(self, event: Done) -> None:
        try:
            self.store.paths(self.entry.id)  # the variant and the autoencoder
        except MoebiusError as exc:  # e.g. imported the network, autoencoder missing
            self._busy(False)
            self.status.setText(str(exc))
            return
        self.status.setText("Ready.")
        self.accept()

    @Slot(object)
    def _on_failed(self, event: Failed) -> None:
        self._busy(False)
        self.status.setText(event.message)

    @Slot()
    def _on_finished(self) -> None:
        self._job = None

    def done(self, result: int) -> None:
        if self._job is not None:  # closing the window cancels a running transfer
            self._job.cancel()
        super().done(result)
