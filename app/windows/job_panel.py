"""A progress bar, a status line and a Cancel button for one background job at a time.

The model dialogs run downloads, imports, checks and removals through it: the work goes
to the app's `Worker` (never the GUI thread), its events come back on the job's handle.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.jobs.worker import JobHandle, MakeEvents, Worker
from engine.events import Progress


class JobPanel(QWidget):
    done = Signal(object)  # Done
    failed = Signal(object)  # Failed: an error, or cancelled (check .cancelled)
    progressed = Signal(object)  # Progress
    busyChanged = Signal(bool)

    def __init__(self, worker: Worker, parent: QWidget | None = None):
        super().__init__(parent)
        self.worker = worker
        self.handle: JobHandle | None = None
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton("&Stop")
        self.cancel_button.setToolTip("Stop the download (it continues later where it stopped)")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self._show_running(False)

    @property
    def busy(self) -> bool:
        return self.handle is not None

    def run(self, make_events: MakeEvents, description: str, starting: str,
            stoppable: bool = True) -> JobHandle:
        """Submit a job to the worker; `starting` is shown until its first event. A job
        that never checks its cancel token (an import) shows no Stop button."""
        waiting = self.worker.busy
        handle = self.worker.submit(make_events, description)
        self.handle = handle
        self.bar.setRange(0, 0)  # busy until the job says how far it is
        self.status.setText(f"{starting} (it starts when the running job ends)" if waiting
                            else starting)
        handle.progress.connect(self._on_progress)
        handle.done.connect(self.done)
        handle.failed.connect(self.failed)
        handle.cancelled.connect(self.failed)
        handle.finished.connect(self._on_finished)
        self._show_running(True)
        self.cancel_button.setVisible(stoppable)
        self.busyChanged.emit(True)
        return handle

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Stopping…")

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        if self.handle is None or self.handle.cancel_requested:
            return
        if event.total > 1:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(event.fraction * 1000))
        self.status.setText(event.message)
        self.progressed.emit(event)

    @Slot()
    def _on_finished(self) -> None:
        self.handle = None
        self._show_running(False)
        self.busyChanged.emit(False)

    def _show_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
