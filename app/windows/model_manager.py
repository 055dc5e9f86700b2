"""Model ▸ Manage models…: every Moebius fine-tune and the shared autoencoder, with their
state, size on disk and what they suit; download (with progress, stop and resume),
import, verify, remove, and the models folder.

Everything that reads or writes weights runs on the app's worker through a `JobPanel`;
the GUI thread only reads states (a marker file and a few file sizes per model).
"""

from __future__ import annotations

import time
from html import escape

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs.worker import Worker
from app.windows.job_panel import JobPanel
from app.windows.model_dialog import ImportChooser
from app.windows.model_text import (
    failure_words,
    manual_download_html,
    megabytes,
    problem_words,
    sentence,
    state_words,
    still_to_get,
    thing,
)
from app.windows.reveal import show_folder
from engine.events import Done, Failed, Progress
from engine.weights import zoo
from engine.weights.state import ModelState, Status

COLUMNS = ("Model", "State", "On disk", "Suits")


class ModelManager(QDialog):
    """Attributes used by tests: table, download_button, import_button, verify_button,
    remove_button, folder_button, panel, status, details."""

    modelsChanged = Signal()  # something was installed or removed

    def __init__(self, store, worker: Worker, parent: QWidget | None = None,
                 selected: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Manage models")
        self.store, self.worker = store, worker
        self._action = ""
        self._refreshed = 0.0
        folder = QLabel(f"Models are kept in <b>{escape(str(store.root))}</b> (change it in "
                        "Edit ▸ Preferences).")
        folder.setWordWrap(True)
        folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTreeWidget()
        self.table.setHeaderLabels(COLUMNS)
        self.table.setRootIsDecorated(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for column, width in enumerate((190, 250, 80)):
            self.table.setColumnWidth(column, width)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setOpenExternalLinks(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.panel = JobPanel(worker)
        self.status = self.panel.status
        self.panel.done.connect(self._on_done)
        self.panel.failed.connect(self._on_failed)
        self.panel.progressed.connect(self._on_progress)
        self.panel.busyChanged.connect(lambda _busy: self._update_buttons())

        self.download_button = QPushButton("&Download")
        self.import_button = QPushButton("&Import…")
        self.verify_button = QPushButton("&Verify")
        self.remove_button = QPushButton("&Remove…")
        self.folder_button = QPushButton("Open &folder")
        close = QPushButton("Close")
        self.download_button.clicked.connect(self.download)
        self.import_button.clicked.connect(self._import)
        self.verify_button.clicked.connect(self.verify)
        self.remove_button.clicked.connect(self._remove)
        self.folder_button.clicked.connect(self.open_folder)
        close.clicked.connect(self.reject)
        self.verify_button.setToolTip("Check the installed files again (checksums and a load)")
        row = QHBoxLayout()
        for b in (self.download_button, self.import_button, self.verify_button,
                  self.remove_button, self.folder_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(folder)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.panel)
        layout.addWidget(self.status)
        layout.addLayout(row)
        self.resize(940, 540)
        self.refresh()
        self.select(selected or zoo.DEFAULT_VARIANT)

    # -- the table ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every model's state (cheap: a marker file and sizes per model)."""
        chosen = self.selected_id()
        self.table.clear()
        for state in self.store.list():
            name = state.entry.name + (" (default)" if state.id == zoo.DEFAULT_VARIANT else "")
            size = self.store.size_on_disk(state.id)
            item = QTreeWidgetItem([name, state_words(state), megabytes(size) if size else "—",
                                    state.entry.description])
            item.setData(0, Qt.ItemDataRole.UserRole, state.id)
            item.setToolTip(1, problem_words(state) or "Installed and checked.")
            item.setToolTip(3, state.entry.description)
            self.table.addTopLevelItem(item)
        if chosen:
            self.select(chosen)
        self._update_buttons()

    def _items(self) -> list[QTreeWidgetItem]:
        items = (self.table.topLevelItem(i) for i in range(self.table.topLevelItemCount()))
        return [item for item in items if item is not None]

    def select(self, model_id: str) -> None:
        for item in self._items():
            if item.data(0, Qt.ItemDataRole.UserRole) == model_id:
                self.table.setCurrentItem(item)
                return

    def selected_id(self) -> str | None:
        item = self.table.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def selected_state(self) -> ModelState | None:
        model_id = self.selected_id()
        return self.store.state(model_id) if model_id else None

    def row_text(self, model_id: str) -> list[str]:
        for item in self._items():
            if item.data(0, Qt.ItemDataRole.UserRole) == model_id:
                return [item.text(c) for c in range(len(COLUMNS))]
        raise KeyError(model_id)

    @Slot()
    def _selection_changed(self) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        state = self.selected_state()
        busy = self.panel.busy
        has_files = state is not None and self.store.folder(state.id).exists()
        ready = state is not None and state.status == Status.READY
        self.download_button.setEnabled(not busy and state is not None and not ready)
        partial = state is not None and state.status == Status.DOWNLOADING
        self.download_button.setText("&Resume download" if partial else "&Download")
        self.import_button.setEnabled(not busy and state is not None)
        self.verify_button.setEnabled(not busy and state is not None
                                      and state.status in (Status.READY, Status.DAMAGED))
        self.remove_button.setEnabled(not busy and has_files)
        self.details.setText(self._details(state))

    def _details(self, state: ModelState | None) -> str:
        if state is None:
            return ""
        text = f"<b>{escape(state.entry.name)}</b>: {escape(state.entry.description)}"
        problem = problem_words(state)
        if problem:
            text += f"<br>{escape(problem)}"
        if state.status != Status.READY:
            if state.status != Status.DOWNLOADING:
                text += f" Download size: {megabytes(still_to_get(state))}."
            text += manual_download_html([state.entry])
        return text

    # -- actions --------------------------------------------------------------------------

    def download(self) -> None:
        from engine.weights.jobs import download_events

        state = self.selected_state()
        if state is None:
            return
        store, name = self.store, state.id

        def make_events(cancel, host):
            return download_events(store, name, cancel)

        self._action = "download"
        self.panel.run(make_events, f"download {name}", "Connecting…")

    def _import(self) -> None:
        state = self.selected_state()
        if state is None:
            return
        chooser = ImportChooser(state.entry, self)
        if chooser.exec() == QDialog.DialogCode.Accepted and chooser.paths():
            self.import_paths(state.id, chooser.paths())

    def import_paths(self, model_id: str, paths) -> None:
        """Import files for `model_id` (the autoencoder's files are recognised as such)."""
        from engine.weights.jobs import import_events

        store = self.store

        def make_events(cancel, host):
            return import_events(store, model_id, list(paths), cancel)

        self._action = "import"
        self.panel.run(make_events, f"import {model_id}", "Checking the files…",
                       stoppable=False)

    def verify(self) -> None:
        from engine.weights.jobs import verify_events

        state = self.selected_state()
        if state is None:
            return
        store, names = self.store, [state.id]

        def make_events(cancel, host):
            return verify_events(store, names, cancel)

        self._action = "verify"
        self.panel.run(make_events, f"verify {state.id}", "Checking…")

    def _remove(self) -> None:
        state = self.selected_state()
        if state is not None and self.confirm_remove(state):
            self.remove(state.id)

    def confirm_remove(self, state: ModelState) -> bool:
        size = megabytes(self.store.size_on_disk(state.id))
        box = QMessageBox(QMessageBox.Icon.Question, "Remove a model",
                          f"Remove {thing(state.entry)}?", parent=self)
        needs = (" Every Moebius model needs it: none of them can run until it is downloaded "
                 "or imported again." if state.entry.kind == "vae" else
                 " You can download or import it again later.")
        box.setInformativeText(f"This frees {size} on disk.{needs}")
        remove = box.addButton("&Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("&Keep it", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return box.clickedButton() is remove

    def remove(self, model_id: str) -> None:
        from engine.weights.jobs import remove_events

        store = self.store

        def make_events(cancel, host):
            return remove_events(store, model_id, cancel)

        self._action = "remove"
        self.panel.run(make_events, f"remove {model_id}", "Removing…", stoppable=False)

    def open_folder(self) -> bool:
        state = self.selected_state()
        folder = self.store.folder(state.id) if state is not None else self.store.root
        if not folder.exists():
            folder = self.store.root
        folder.mkdir(parents=True, exist_ok=True)
        return show_folder(self, folder, "The models folder")

    # -- job events -----------------------------------------------------------------------

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        now = time.monotonic()
        if event.stage == "downloading" and now - self._refreshed > 1.0:
            self._refreshed = now
            self.refresh()  # the row shows how far the download is

    @Slot(object)
    def _on_done(self, event: Done) -> None:
        self.refresh()
        result = event.result
        states = result if isinstance(result, list) else [result]
        words = []
        for s in states:
            if not isinstance(s, ModelState):
                continue
            if self._action == "remove":
                words.append(f"{sentence(thing(s.entry))} was removed.")
            elif s.status == Status.READY:
                words.append(f"{sentence(thing(s.entry))} is ready.")
            else:
                words.append(f"{sentence(thing(s.entry))}: {problem_words(s)}")
            self.select(s.id)
        self.status.setText(" ".join(words) or "Done.")
        self.modelsChanged.emit()

    @Slot(object)
    def _on_failed(self, event: Failed) -> None:
        self.refresh()
        self.status.setText(failure_words(event, self._action))

    def done(self, result: int) -> None:
        if self.panel.busy:  # closing stops a download; it continues next time
            self.panel.cancel()
        super().done(result)
