"""Getting a Moebius fine-tune ready: the dialog shown when one is missing, and the
chooser for importing downloaded files (a file, a folder, or the autoencoder's
config.json and weights together)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.jobs.worker import Worker
from app.windows.job_panel import JobPanel
from app.windows.model_text import (
    failure_words,
    manual_download_html,
    megabytes,
    missing_summary,
    sentence,
    thing,
    total_to_get,
)
from engine.errors import MoebiusError
from engine.events import Done, Failed
from engine.weights import zoo
from engine.weights.state import ModelState, Status
from engine.weights.zoo import ModelEntry

WEIGHT_FILTER = ("Weights and their settings (*.bin *.safetensors *.pt *.pth *.json);;"
                 "All files (*)")


class ImportChooser(QDialog):
    """Which files to import: several files (for the autoencoder, its config.json and its
    weights; for a fine-tune, its weights file), or a folder holding them."""

    def __init__(self, entry: ModelEntry, parent: QWidget | None = None):
        super().__init__(parent)
        self.entry = entry
        self.setWindowTitle(f"Import {entry.name}")
        if entry.kind == "vae":
            hint = ("Choose the autoencoder's files: <b>diffusion_pytorch_model.bin</b> (or "
                    ".safetensors), with or without its <b>config.json</b>; or the folder "
                    "that holds them.")
        else:
            hint = (f"Choose the {escape(entry.name)} network's weights file "
                    "(<b>diffusion_pytorch_model.bin</b> or .safetensors, any name), or the "
                    "folder that holds it. The autoencoder's files are recognised too.")
        text = QLabel(hint)
        text.setWordWrap(True)
        self.list = QListWidget()
        self.list.setMinimumHeight(90)
        files = QPushButton("Choose &files…")
        files.clicked.connect(self._choose_files)
        folder = QPushButton("Choose a f&older…")
        folder.clicked.connect(self._choose_folder)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.addButton("&Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(files)
        row.addWidget(folder)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(row)
        layout.addWidget(self.list)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)
        self.set_paths([])

    def paths(self) -> list[Path]:
        return [Path(self.list.item(i).text()) for i in range(self.list.count())]

    def set_paths(self, paths: list[str] | list[Path]) -> None:
        self.list.clear()
        self.list.addItems([str(p) for p in paths])
        self.ok.setEnabled(bool(paths))

    def _choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, f"Files for {self.entry.name}", "",
                                                WEIGHT_FILTER)
        if names:
            self.set_paths(names)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Folder with {self.entry.name}")
        if folder:
            self.set_paths([folder])


class ModelDialog(QDialog):
    """A fine-tune cannot run yet: say what is missing and its size, and offer to
    download it, to import files the person has, or to use Quick instead.

    Result: Accepted when the model is ready; `use_quick` is True when the person chose
    the Quick engine instead.
    """

    def __init__(self, variant: str, store, worker: Worker, parent: QWidget | None = None):
        super().__init__(parent)
        self.entry = zoo.resolve(variant)
        self.store, self.worker = store, worker
        self.use_quick = False
        self._action = "download"
        self.setWindowTitle(f"{self.entry.name} is not installed yet")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.manual_toggle = QPushButton("Download by &hand…")
        self.manual_toggle.setCheckable(True)
        self.manual = QLabel()
        self.manual.setWordWrap(True)
        self.manual.setOpenExternalLinks(True)
        self.manual.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.manual.setVisible(False)
        self.manual_toggle.toggled.connect(self.manual.setVisible)
        self.panel = JobPanel(worker)
        self.status = self.panel.status

        self.download = QPushButton("&Download")
        self.download.setDefault(True)
        self.import_ = QPushButton("&Import files…")
        self.quick = QPushButton("Use &Quick instead")
        self.cancel = QPushButton("Cancel")
        self.download.clicked.connect(self._start_download)
        self.import_.clicked.connect(self._import)
        self.quick.clicked.connect(self._choose_quick)
        self.cancel.clicked.connect(self._cancel)
        self.panel.done.connect(self._on_done)
        self.panel.failed.connect(self._on_failed)
        self.panel.busyChanged.connect(self._busy)
        row = QHBoxLayout()
        for b in (self.download, self.import_, self.quick):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.manual_toggle, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.manual)
        layout.addWidget(self.panel)
        layout.addWidget(self.status)
        layout.addLayout(row)
        self.setMinimumWidth(560)
        self.refresh()

    def states(self) -> list[ModelState]:
        """The fine-tune's state, then the shared autoencoder's."""
        return [self.store.state(self.entry.id), self.store.state(zoo.VAE.id)]

    def refresh(self) -> None:
        states = self.states()
        missing = [s for s in states if s.status != Status.READY]
        size = megabytes(total_to_get(states))
        self.text.setText(
            f"<p><b>{escape(self.entry.name)}</b>: {self.entry.description}</p>"
            f"<p>To use it, this computer still needs:</p>{missing_summary(states)}"
            f"<p><b>Download</b> gets them from the internet ({size} in all; if it stops, it "
            "continues later where it stopped). <b>Import files</b> installs files you "
            "already downloaded. <b>Use Quick</b> removes objects without a download "
            "(good for small spots on plain backgrounds).</p>")
        self.download.setText(f"&Download ({size})")
        self.manual.setText(manual_download_html([s.entry for s in missing]))

    def _busy(self, busy: bool) -> None:
        for b in (self.download, self.import_, self.quick):
            b.setEnabled(not busy)

    def _start_download(self) -> None:
        from engine.weights.jobs import download_events

        store, variant = self.store, self.entry.id

        def make_events(cancel, host):
            return download_events(store, variant, cancel)

        self._action = "download"
        self.panel.run(make_events, f"download {variant}", "Connecting…")

    def _import(self) -> None:
        chooser = ImportChooser(self.entry, self)
        if chooser.exec() == QDialog.DialogCode.Accepted and chooser.paths():
            self.import_path(chooser.paths())

    def import_path(self, path: str | Path | list[Path]) -> None:
        """Import a file, a folder or several files (the autoencoder's are recognised)."""
        from engine.weights.jobs import import_events

        store, variant = self.store, self.entry.id
        paths = path if isinstance(path, list) else [Path(path)]

        def make_events(cancel, host):
            return import_events(store, variant, paths, cancel)

        self._action = "import"
        self.panel.run(make_events, f"import {variant}", "Checking the files…",
                       stoppable=False)

    def _choose_quick(self) -> None:
        self.use_quick = True
        self.reject()

    def _cancel(self) -> None:
        if self.panel.busy:
            self.panel.cancel()
        else:
            self.reject()

    @Slot(object)
    def _on_done(self, event: Done) -> None:
        self.refresh()
        try:
            self.store.paths(self.entry.id)  # the fine-tune and the autoencoder
        except MoebiusError:
            still = [s for s in self.states() if s.status != Status.READY]
            got = event.result
            done = (f"{sentence(thing(got.entry))} is installed. "
                    if isinstance(got, ModelState) and got.status == Status.READY else "")
            self.status.setText(done + "Still missing: " + ", ".join(
                f"{thing(s.entry)} ({megabytes(s.entry.size - s.partial_bytes)})"
                for s in still) + ". Import its file too, or press Download.")
            return
        self.status.setText("Ready.")
        self.accept()

    @Slot(object)
    def _on_failed(self, event: Failed) -> None:
        self.refresh()
        self.status.setText(failure_words(event, self._action))
        if not event.cancelled:
            self.manual_toggle.setChecked(True)

    def done(self, result: int) -> None:
        if self.panel.busy:  # closing the window stops a running transfer
            self.panel.cancel()
        super().done(result)
