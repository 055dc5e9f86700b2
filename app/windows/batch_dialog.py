"""Clean a whole folder: choose folders and masks, run `engine.removal.batch` on the app's worker.

Photos whose mask covers more than half of them are not cleaned (see engine/removal/masks.py);
after such a run the dialog says so and offers to run them again with the masks inverted,
or as they are once the person confirms.

The batch runs on the same background worker as single removals, so a loaded network is
reused and the GUI thread only receives events: it never waits. Engine, model, steps,
seed and device come from the app's settings (shown read-only; changed in Preferences or
the Model menu), so a batch looks like the removals the user has been trying one by one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs.worker import JobHandle, Worker
from app.settings import QUICK, Settings
from app.windows.reveal import show_folder
from engine.errors import MoebiusError, WeightsMissing
from engine.eta import Eta, format_eta
from engine.events import Done, Failed, Item
from engine.removal.batch import BatchJob, BatchProgress, BatchSummary, ItemStatus, run_batch
from engine.removal.masks import LARGE_MASK_SHARE, MaskPolicy
from engine.weights import zoo

COLUMNS = ("File", "Status", "Time", "Message")
STEPS = 1000  # progress bar resolution


def describe_settings(settings: Settings) -> str:
    choice = settings.engine_choice
    if choice == QUICK:
        return "Quick (classical, no model)"
    try:
        name = zoo.resolve(choice).name
    except MoebiusError:
        name = choice
    seed = "random" if settings.seed < 0 else str(settings.seed)
    return (f"Moebius {name} · {settings.steps} steps · seed {seed} · device "
            f"{settings.device} · {settings.quality}")


# Answers to "some masks cover most of their photo" (BatchDialog.ask_about_large_masks).
INVERT, ANYWAY = "invert", "anyway"


class BatchDialog(QDialog):
    """Attributes used by tests: input_edit, output_edit, mask_edit, use_masks_folder,
    use_one_mask, recursive, overwrite, invert_masks, start_button, cancel_button,
    open_button, table, progress, current_label, summary_label, warning_label, summary
    (BatchSummary after a run)."""

    batchFinished = Signal(object)  # BatchSummary, or None when the run stopped early

    def __init__(self, worker: Worker, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Clean a folder")
        self.resize(760, 560)
        self.worker, self.settings = worker, settings
        self.summary: BatchSummary | None = None
        self._job: BatchJob | None = None
        self._handle: JobHandle | None = None
        self._rows: dict[str, QTreeWidgetItem] = {}
        self._eta = Eta()
        self._close_when_done = False
        self._build()
        self._set_running(False)

    # -- layout -------------------------------------------------------------------------

    def _build(self) -> None:
        form = QFormLayout()
        self.input_edit, row = self._path_row(self._browse_input)
        form.addRow("Photos folder:", row)
        self.output_edit, row = self._path_row(self._browse_output)
        form.addRow("Output folder:", row)
        self.use_masks_folder = QRadioButton("A masks folder (photo.jpg ← photo.png, "
                                             "photo_mask.png or photo.mask.png)")
        self.use_one_mask = QRadioButton("One mask for every photo (scaled to each)")
        self.use_masks_folder.setChecked(True)
        form.addRow("Masks:", self.use_masks_folder)
        form.addRow("", self.use_one_mask)
        self.mask_edit, row = self._path_row(self._browse_mask)
        form.addRow("", row)
        self.recursive = QCheckBox("Include sub-folders (kept in the output)")
        self.overwrite = QCheckBox("Redo photos that already have an output")
        self.invert_masks = QCheckBox("Masks are inverted (black marks what to remove)")
        self.invert_masks.setToolTip(
            f"Photos whose mask covers more than {LARGE_MASK_SHARE:.0%} of them are not "
            "cleaned: usually their masks mark what to keep.")
        form.addRow("", self.recursive)
        form.addRow("", self.overwrite)
        form.addRow("", self.invert_masks)
        self.settings_label = QLabel(describe_settings(self.settings))
        hint = QLabel("Engine, steps, seed and device are changed in Preferences and the "
                      "Model menu.")
        hint.setStyleSheet("color: gray")
        form.addRow("Settings:", self.settings_label)
        form.addRow("", hint)

        self.table = QTreeWidget()
        self.table.setHeaderLabels(COLUMNS)
        self.table.setRootIsDecorated(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for column, width in enumerate((240, 90, 60)):
            self.table.setColumnWidth(column, width)
        self.progress = QProgressBar()
        self.progress.setRange(0, STEPS)
        self.current_label = QLabel("")
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.warning_label = QLabel("")  # photos left alone because of their masks
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #b35c00")
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open output folder")
        self.close_button = QPushButton("Close")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_output)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.current_label)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.warning_label)
        layout.addLayout(buttons)

    def _path_row(self, browse) -> tuple[QLineEdit, QWidget]:
        edit = QLineEdit()
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(edit, 1)
        box.addWidget(button)
        return edit, row

    def _browse_input(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Photos folder", self.input_edit.text())
        if path:
            self.input_edit.setText(path)
            if not self.output_edit.text():  # a sibling folder: never the input itself
                self.output_edit.setText(str(Path(path).with_name(Path(path).name + "_cleaned")))

    def _browse_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if path:
            self.output_edit.setText(path)

    def _browse_mask(self) -> None:
        if self.use_one_mask.isChecked():
            path, _ = QFileDialog.getOpenFileName(
                self, "Mask for every photo", self.mask_edit.text(),
                "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Masks folder", self.mask_edit.text())
        if path:
            self.mask_edit.setText(path)

    # -- running ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._handle is not None

    def make_job(self) -> BatchJob:
        """The job the fields describe; raises MoebiusError saying what is missing."""
        src, out, mask = (e.text().strip() for e in
                          (self.input_edit, self.output_edit, self.mask_edit))
        if not src or not out:
            raise MoebiusError("Choose a photos folder and an output folder.")
        if not mask:
            raise MoebiusError("Choose the masks folder or the mask file.")
        one = self.use_one_mask.isChecked()
        return BatchJob(Path(src), Path(out), None if one else Path(mask),
                        Path(mask) if one else None, self.recursive.isChecked(),
                        self.overwrite.isChecked(), self.settings.removal_settings(),
                        MaskPolicy(invert=self.invert_masks.isChecked()),
                        keep_jpeg_blocks=not self.settings.reencode_jpeg)

    def start(self, job: BatchJob | None = None) -> str | None:
        """Start the batch (the fields' job by default) on the worker; returns why it
        cannot, or None."""
        if self.running:
            return "A batch is already running."
        try:
            job = job or self.make_job()
        except MoebiusError as exc:
            self.summary_label.setText(str(exc))
            return str(exc)
        self.warning_label.setText("")
        self._job, self.summary = job, None
        self.table.clear()
        self._rows.clear()
        self.progress.setValue(0)
        self._eta = Eta()
        self.summary_label.setText("")
        self.current_label.setText("Waiting for the worker…" if self.worker.busy
                                   else "Starting…")

        def make_events(cancel, host):
            return run_batch(job, cancel, host)

        handle = self.worker.submit(make_events, f"batch {job.input_dir}")
        handle.progress.connect(self._on_progress)
        handle.item.connect(self._on_item)
        handle.done.connect(self._on_done)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_failed)
        handle.finished.connect(self._on_finished)
        self._handle = handle
        self._set_running(True)
        return None

    def cancel(self) -> None:
        """Stop after the current step: that photo is abandoned (nothing written)."""
        if self._handle is not None:
            self._handle.cancel()
            self.cancel_button.setEnabled(False)
            self.current_label.setText("Cancelling…")

    def output_url(self) -> QUrl | None:
        text = self.output_edit.text().strip()
        return QUrl.fromLocalFile(str(Path(text).resolve())) if text else None

    def open_output(self) -> QUrl | None:
        url = self.output_url()
        if url is not None:  # without a file manager: says where the folder is
            show_folder(self, Path(url.toLocalFile()), "The output folder")
        return url

    def _set_running(self, running: bool) -> None:
        for w in (self.input_edit, self.output_edit, self.mask_edit, self.use_masks_folder,
                  self.use_one_mask, self.recursive, self.overwrite, self.invert_masks,
                  self.start_button):
            w.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(not running and self.summary is not None)

    # -- events (GUI thread) --------------------------------------------------------------

    def _row(self, source: str) -> QTreeWidgetItem:
        row = self._rows.get(source)
        if row is None:
            name = source
            if self._job is not None:
                try:
                    name = str(Path(source).relative_to(self._job.input_dir))
                except ValueError:
                    pass
            row = QTreeWidgetItem([name, "waiting", "", ""])
            row.setToolTip(0, source)
            self.table.addTopLevelItem(row)
            self._rows[source] = row
        return row

    @Slot(object)
    def _on_item(self, event: Item) -> None:
        o = event.outcome
        row = self._row(o.source)
        row.setText(1, o.status)
        row.setText(2, f"{o.seconds:.1f} s" if o.seconds else "")
        row.setText(3, o.message or o.note)
        row.setToolTip(3, o.message or o.note)

    @Slot(object)
    def _on_done(self, event: Done) -> None:
        summary: BatchSummary = event.result
        self.summary = summary
        self.progress.setValue(STEPS)
        report = f" Report: {summary.report}" if summary.report else ""
        self.summary_label.setText(f"{summary.text()} in {summary.seconds:.1f} s.{report}")
        large = summary.count(ItemStatus.LARGE_MASK)
        if large:
            self.warning_label.setText(
                f"{large} photo(s) were not cleaned: their mask covers more than half of the "
                "photo. If your masks mark what to remove in black, tick Masks are inverted.")

    @Slot(object)
    def _on_failed(self, event: Failed) -> None:
        hint = (" Install the model from the Model menu, or choose Quick there."
                if event.is_a(WeightsMissing) else "")
        self.summary_label.setText(f"Stopped: {event.message}{hint}")

    @Slot(object)
    def _on_progress(self, e: BatchProgress) -> None:
        if e.stage == "planned":
            for source in e.files:
                self._row(source)
            self.current_label.setText(e.message)
            return
        if e.stage == "waiting":  # another run is writing to the output folder
            self.current_label.setText(e.message)
            return
        self.progress.setValue(int(round(e.fraction * STEPS)))
        if e.stage == "file":
            self.current_label.setText(e.message)
            return
        self._row(e.source).setText(1, "working…")
        step = f" step {e.step}/{e.total}" if e.total > 1 else ""
        eta = self._eta.remaining(e.fraction, e.stage)
        tail = f" · ETA {format_eta(eta)}" if eta is not None else ""
        self.current_label.setText(f"{e.message}{step}{tail}")

    @Slot()
    def _on_finished(self) -> None:
        self._handle = None
        self._set_running(False)
        if self.summary is not None:
            self.current_label.setText("")
        self.batchFinished.emit(self.summary)
        if self._close_when_done:
            super().reject()
            return
        large = self.summary.count(ItemStatus.LARGE_MASK) if self.summary else 0
        if large and self._job is not None:
            self._offer_large_masks(self._job, large)

    def _offer_large_masks(self, job: BatchJob, count: int) -> None:
        """Run the photos left alone for their masks again, if the person says how. Only
        they are run: the others have their output and overwriting is off for this run."""
        answer = self.ask_about_large_masks(count)
        if answer == INVERT:
            self.invert_masks.setChecked(True)
            policy = MaskPolicy(invert=True)
        elif answer == ANYWAY:
            policy = MaskPolicy(invert=job.masks.invert, allow_large=True)
        else:
            return
        self.start(replace(job, overwrite=False, masks=policy))

    def ask_about_large_masks(self, count: int) -> str | None:
        """INVERT, ANYWAY, or None to leave those photos as they are."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Clean a folder",
                          f"{count} photo(s) were not cleaned because their mask covers more "
                          "than half of the photo.", parent=self)
        box.setInformativeText("Masks mark what to remove in white. If yours mark it in "
                               "black, they are inverted. If the masks are right, the photos "
                               "can be cleaned anyway, though most of each is invented then.")
        invert = box.addButton("&Masks are inverted", QMessageBox.ButtonRole.AcceptRole)
        anyway = box.addButton("&Clean them anyway", QMessageBox.ButtonRole.ActionRole)
        box.addButton("&Leave them", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return INVERT if clicked is invert else ANYWAY if clicked is anyway else None

    def reject(self) -> None:
        """Closing (Esc, Close, the window button: QDialog routes them all here) while
        running cancels first; the dialog closes once the worker has let go of the batch,
        without waiting here."""
        if self.running:
            self._close_when_done = True
            self.cancel()
            return
        super().reject()
