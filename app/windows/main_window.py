"""The main window: canvas, menus, toolbar, status bar and History panel.

The window shows one `OpenPhoto` at a time (`self.photo`), which owns everything about
that photo. The GUI thread only paints and dispatches: removals, downloads and batches
run on the `Worker`'s thread (see app/jobs/worker.py, app/jobs/removal.py). Its commands
are in mixins: files (files.py), removal, compare and mask (edit_actions.py), and the
Model menu (model_actions.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.canvas.widget import MaskCanvas
from app.history import HistoryStack
from app.icons import icon
from app.jobs.keeper import HistoryKeeper
from app.jobs.removal import RemovalController
from app.jobs.suggest import SuggestionController
from app.jobs.worker import Worker
from app.open_photo import OpenPhoto
from app.settings import QUICK, Settings
from app.windows.choice_actions import ChoiceActions
from app.windows.dialogs import DEVICE_WORDS, PreferencesDialog
from app.windows.edit_actions import EditActions
from app.windows.everyday import EverydayActions
from app.windows.files import FileActions
from app.windows.geometry import place_window
from app.windows.history_panel import HistoryPanel
from app.windows.model_actions import ModelActions
from app.windows.shortcut_sheet import ShortcutSheet
from app.windows.suggestion_bar import SuggestionBar
from app.windows.welcome import WelcomePage
from engine.about import APP_NAME as APP
from engine.document.history_store import HistoryStore
from engine.removal.run import EngineHost
from engine.weights import zoo

log = logging.getLogger(__name__)


class MainWindow(EditActions, ChoiceActions, ModelActions, FileActions, EverydayActions,
                 QMainWindow):
    def __init__(self, settings: Settings | None = None, store=None,
                 host: EngineHost | None = None, history_store: HistoryStore | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self._store = store
        self._device_in_use: str | None = None  # "CPU fp32" once a removal has run
        self.installed: dict[str, bool] = {}  # filled by mark_installed()
        self.worker = Worker(host or EngineHost(loader=self._load_model), self)
        # Light background work (faces, the edit history on disk) on its own thread, so it
        # never waits behind a removal, nor a removal behind it.
        self.background = Worker(EngineHost(), self)
        self.canvas = MaskCanvas(self)
        self.jobs = RemovalController(self.worker, self.settings, self)
        limit = self.settings.history_limit_mb * 2**20
        self.keeper = HistoryKeeper(self.background,
                                    history_store or HistoryStore(limit=limit), self)
        self.suggestions = SuggestionController(self.background, self.settings, self)
        self._closing = False
        self.photo: OpenPhoto | None = None
        self.welcome = WelcomePage()
        self.suggestion_bar = SuggestionBar()
        self.canvas_page = QWidget()  # the photo, with the suggestion bar above it
        page = QVBoxLayout(self.canvas_page)
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(0)
        page.addWidget(self.suggestion_bar)
        page.addWidget(self.canvas, 1)
        page.addWidget(self._build_choice())
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.canvas_page)
        self.setCentralWidget(self.stack)
        self.setAcceptDrops(True)
        if self.settings.brush_size > 0:
            self.canvas.setBrushSize(self.settings.brush_size)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._build_history_dock()
        self._connect()
        self.welcome.setRecent(self.settings.recent_files)
        self._show_history(None)
        self._update_title()
        self._update_enabled()
        self.mark_installed()
        self.canvas.installEventFilter(self)
        if self.settings.window_state is not None:
            self.restoreState(self.settings.window_state)
        place_window(self, self.settings.window_geometry)

    # -- actions --------------------------------------------------------------------------

    def _action(self, text, slot, shortcut=None, icon_name=None, tip=None, checkable=False):
        action = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(k) for k in keys])
        if icon_name:
            action.setIcon(icon(icon_name))
        action.setCheckable(checkable)
        names = " / ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText)
                           for k in (shortcut if isinstance(shortcut, list) else
                                     [shortcut] if shortcut is not None else []))
        tip = tip or text.replace("…", "")
        action.setToolTip(f"{tip} ({names})" if names else tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        std = QKeySequence.StandardKey
        a = self._action
        self.a_open = a("&Open…", self.open_dialog, std.Open, "file.open")
        self.a_sample = a("Open the &sample photo", self.open_sample)
        self.a_save = a("&Save", self.save, std.Save, "file.save",
                        "Save over the opened file (asks first)")
        self.a_save_as = a("Save &As…", self.save_as, std.SaveAs, "file.save_as")
        self.a_export = a("&Export a copy…", self.export, "Ctrl+E", "file.export",
                          "Save a copy in another format; keeps working on this file")
        self.a_batch = a("Clean a &folder…", self.open_batch, "Ctrl+B", "batch",
                         "Remove the same kind of object from many photos")
        self.a_close = a("&Close photo", self.close_photo, std.Close)
        self.a_quit = a("&Quit", self.close, std.Quit)
        self.a_prefs = a("&Preferences…", self.open_preferences, std.Preferences, "settings")
        self.a_remove = a("&Remove", self.remove, ["Return", "Enter"], "remove",
                          "Remove what the mask covers")
        self.a_retry = a("&Try again", self.try_again, "Ctrl+R", "retry",
                         "Undo the last removal and run it again with a new seed")
        self.a_cancel = a("&Cancel removal", self.cancel_removal, None, "cancel")
        self.a_compare = a("&Compare with original", self.toggle_compare, None, "compare",
                           "Show the original photo (or hold \\)", checkable=True)
        self.a_grow = a("&Grow mask…", self.grow_mask, None, "mask.grow")
        self.a_shrink = a("S&hrink mask…", self.shrink_mask, None, "mask.shrink")
        self.a_load_mask = a("&Load mask from file…", self.load_mask_dialog)
        self.a_save_mask = a("&Save mask…", self.save_mask_dialog, None, None,
                             "Save the mask as a PNG (white = remove) for --mask or Load mask")
        self.a_paste = a("&Paste as new photo", self.paste, std.Paste, None,
                         "Open the picture on the clipboard as a new, untitled photo")
        self.a_copy_image = a("&Copy image", self.copy_image, std.Copy, None,
                              "Copy the picture as it is now to the clipboard")
        self.a_models_dir = a("Open the models &folder", self.open_models_folder)
        self.a_manage = a("&Manage models…", self.manage_models, None, "model",
                          "Download, import, check or remove the Moebius models")
        self.a_shortcuts = a("&Keyboard shortcuts", self.show_shortcuts, std.HelpContents)
        self.a_about = a("&About Moebius Studio", self.show_about)
        self.esc = QShortcut(QKeySequence("Esc"), self, self.cancel_removal)
        self.esc.setEnabled(False)

        self.engine_group = QActionGroup(self)
        self.engine_actions = []
        for key, text, tip in self.engine_entries():
            act = a(text, self._engine_picked, None, None, tip, checkable=True)
            act.setData(key)
            act.setChecked(key == self.settings.engine_choice)
            self.engine_group.addAction(act)
            self.engine_actions.append(act)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        c = self.canvas.canvasActions()
        m = bar.addMenu("&File")
        m.addActions([self.a_open])
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addActions([self.a_sample])
        m.addSeparator()
        m.addActions([self.a_save, self.a_save_as, self.a_export])
        m.addSeparator()
        m.addActions([self.a_batch])
        m.addSeparator()
        m.addActions([self.a_close, self.a_quit])
        m = bar.addMenu("&Edit")
        m.addActions([c["edit.undo"], c["edit.redo"]])
        m.addSeparator()
        m.addActions([self.a_copy_image, self.a_paste])
        m.addSeparator()
        m.addActions([self.a_remove, self.a_retry, self.a_cancel])
        m.addSeparator()
        m.addAction(self.a_prefs)
        m = bar.addMenu("&Mask")
        m.addActions([c[f"tool.{t}"] for t in ("brush", "eraser", "rect", "lasso")])
        m.addSeparator()
        m.addActions([c["brush.smaller"], c["brush.larger"]])
        m.addSeparator()
        m.addActions([c["mask.clear"], c["mask.invert"], self.a_grow, self.a_shrink,
                      self.a_load_mask, self.a_save_mask])
        m = bar.addMenu("&View")
        m.addActions([c["zoom.in"], c["zoom.out"], c["zoom.fit"], c["zoom.actual"]])
        m.addSeparator()
        m.addActions([c["overlay.toggle"], self.a_compare, self.a_preview])
        self.view_menu = m
        m = self.model_menu = bar.addMenu("M&odel")
        m.addActions(self.engine_actions[:1])
        m.addSeparator()
        m.addActions(self.engine_actions[1:])
        m.addSeparator()
        m.addActions([self.a_manage, self.a_models_dir])
        m.aboutToShow.connect(self.mark_installed)
        m = bar.addMenu("&Help")
        m.addActions([self.a_shortcuts, self.a_about])

    def _build_toolbar(self) -> None:
        c = self.canvas.canvasActions()
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.addActions([self.a_open, self.a_save])
        tb.addSeparator()
        tb.addActions([c["edit.undo"], c["edit.redo"]])
        tb.addSeparator()
        tb.addActions([c[f"tool.{t}"] for t in ("brush", "eraser", "rect", "lasso")])
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 400)
        self.size_slider.setFixedWidth(140)
        self.size_slider.setValue(self.canvas.brushSize())
        self.size_slider.setToolTip("Brush size in photo pixels ([ and ])")
        self.size_label = QLabel(f" {self.canvas.brushSize()} px ")
        tb.addWidget(self.size_slider)
        tb.addWidget(self.size_label)
        tb.addSeparator()
        tb.addActions([c["overlay.toggle"], self.a_compare])
        self.split_label = QLabel(" Before | after ")
        tb.addWidget(self.split_label)
        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setRange(0, 100)
        self.split_slider.setFixedWidth(110)
        self.split_slider.setToolTip("Before / after: slide right to show the original photo "
                                     "left of a line (or hold \\ to see all of it)")
        self.split_slider.setAccessibleName("Before and after split")
        tb.addWidget(self.split_slider)
        tb.addSeparator()
        self.engine_button = QToolButton()
        self.engine_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.engine_button.setIcon(icon("model"))
        self.engine_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.engine_button.setMenu(self.model_menu)
        self.engine_button.setToolTip("Which engine removes objects (Model menu)")
        tb.addWidget(self.engine_button)
        tb.addSeparator()
        self.remove_button = QToolButton()
        self.remove_button.setDefaultAction(self.a_remove)
        self.remove_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addWidget(self.remove_button)
        tb.addAction(self.a_retry)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(220)
        self.progress_text = QLabel()
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(self.a_cancel)
        self.size_status = QLabel()
        self.zoom_status = QLabel()
        self.device_status = QLabel()
        for w in (self.progress_text, self.progress, self.cancel_button):
            sb.addWidget(w)
            w.setVisible(False)
        for w in (self.size_status, self.zoom_status, self.device_status):
            sb.addPermanentWidget(w)

    def _build_history_dock(self) -> None:
        dock = QDockWidget("History", self)
        dock.setObjectName("history-dock")
        self.history_panel = HistoryPanel(self.canvas.history)
        self.canvas.historyChanged.connect(self._history_changed)
        dock.setWidget(self.history_panel)
        self.history_dock = dock
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.view_menu.addSeparator()
        self.view_menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        self.welcome.openRequested.connect(self.open_dialog)
        self.welcome.pathRequested.connect(self._open_requested)
        self.size_slider.valueChanged.connect(self.canvas.setBrushSize)
        self.split_slider.valueChanged.connect(self._split_changed)
        self.canvas.brushSizeChanged.connect(self._brush_size_changed)
        self.canvas.zoomChanged.connect(self._update_status)
        self.canvas.maskChanged.connect(self._update_enabled)
        self.jobs.started.connect(self._job_started)
        self.jobs.progress.connect(self._job_progress)
        self.jobs.finished.connect(self._job_finished)
        self.jobs.failed.connect(self._job_failed)
        self.jobs.ended.connect(self._job_ended)
        self.jobs.deviceChanged.connect(self._device_used)
        self.keeper.restored.connect(self._history_restored)
        self.suggestions.offered.connect(self._suggestion_offered)
        self.suggestion_bar.switchRequested.connect(self._suggestion_taken)
        self.suggestion_bar.keepRequested.connect(self._suggestion_declined)

    # -- the open photo -------------------------------------------------------------------

    def set_photo(self, photo: OpenPhoto | None) -> None:
        """Show `photo` (None: the welcome page). The previous photo is closed: its jobs
        are cancelled and their results will never be applied (to it or to this one)."""
        old, self.photo = self.photo, photo
        self.suggestion_bar.dismiss()
        if old is not None:
            self.keeper.photo_closing(old)  # its last edits go to disk (in the background)
            self.suggestions.photo_closed(old)
            self.jobs.cancel(old)
            old.close()
            old.pathChanged.disconnect(self._update_title)
            old.jobsChanged.disconnect(self._update_enabled)
        self.canvas.setPhoto(photo)
        if photo is not None:
            photo.pathChanged.connect(self._update_title)
            photo.jobsChanged.connect(self._update_enabled)
            self.keeper.photo_opened(photo)  # these two only queue background jobs
            self.suggestions.photo_opened(photo)
        self.split_slider.setValue(0)
        self._show_history(photo)
        self._show_canvas(photo is not None)
        self._job_ended()
        self._update_title()
        self._update_enabled()

    @Slot(object)
    def _history_changed(self, stack: HistoryStack) -> None:
        """The canvas shows another photo's history: follow it everywhere."""
        self.history_panel.setStack(stack)
        stack.cleanChanged.connect(self._update_title)
        stack.indexChanged.connect(self._update_enabled)

    def _show_history(self, photo: OpenPhoto | None) -> None:
        """With no photo the History panel says so, rather than listing an "Original"."""
        self.history_panel.setEmptyLabel("Original" if photo is not None else "No photo open")
        self.history_panel.setEnabled(photo is not None)

    @Slot(str)
    def _open_requested(self, path: str) -> None:
        self.open_path(Path(path))

    @Slot()
    def _engine_picked(self) -> None:
        action = self.engine_group.checkedAction()
        if action is not None:
            self.set_engine_choice(action.data())

    # -- other dialogs --------------------------------------------------------------------

    def open_preferences(self) -> None:
        before = (self.settings.models_dir, self.settings.device, self.settings.quality)
        dialog = PreferencesDialog(self.settings, self, self.worker, history=self.keeper)
        if dialog.exec():
            models, device, quality = before
            if self.settings.models_dir != models:
                self.models_folder_changed()
            if (self.settings.device, self.settings.quality) != (device, quality):
                self._device_in_use = None  # the next run says which device it got
        dialog.deleteLater()
        self._update_status()

    def open_batch(self) -> None:
        from app.windows.batch_dialog import BatchDialog

        dialog = BatchDialog(self.worker, self.settings, self)
        dialog.exec()
        dialog.deleteLater()  # it listens to the worker: do not keep closed ones around

    def show_shortcuts(self) -> None:
        sheet = ShortcutSheet(self.menuBar(), self)
        sheet.exec()
        sheet.deleteLater()

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP}", f"<h3>{APP}</h3><p>Object removal with "
                          "Moebius (hustvl, ECCV'26), a latent-diffusion inpainting network, "
                          "in our own clean-room implementation.</p>")

    # -- state display --------------------------------------------------------------------

    @Slot(str)
    def _device_used(self, engine: str) -> None:
        """A removal ran: its description ends with the device it used ("CPU fp32")."""
        self._device_in_use = engine.rsplit(" · ", 1)[-1] if " · " in engine else None
        self._update_status()

    def _brush_size_changed(self, size: int) -> None:
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(min(size, self.size_slider.maximum()))
        self.size_slider.blockSignals(False)
        self.size_label.setText(f" {size} px ")

    @Slot()
    def _update_title(self) -> None:
        if self._closing:
            return
        name = self.photo.name if self.photo else "No photo"
        self.setWindowTitle(f"{name}[*] — {APP}")
        self.setWindowModified(self.photo is not None and self.photo.is_modified)

    @Slot()
    def _update_status(self) -> None:
        doc = self.canvas.document()
        self.size_status.setText(f"{doc.width} × {doc.height} px" if doc else "")
        self.zoom_status.setText(f"{self.canvas.zoom():.0%}" if doc else "")
        choice = self.settings.engine_choice
        name = "Quick" if choice == QUICK else zoo.resolve(choice).name
        missing = choice != QUICK and not self.installed.get(choice, True)
        self.engine_button.setText(f"{name} (not installed)" if missing else name)
        if choice == QUICK:
            self.device_status.setText("Quick · CPU")
        else:
            device = self._device_in_use or DEVICE_WORDS.get(self.settings.device,
                                                             self.settings.device)
            self.device_status.setText(f"Moebius {name} · {device}")

    @Slot()
    def _update_enabled(self) -> None:
        if self._closing or (self.photo is not None and not self.photo.alive):
            return
        self._update_title()
        doc = self.canvas.document()
        running = self.jobs.running(self.photo)
        has_mask = doc is not None and doc.mask.any()
        self.a_remove.setEnabled(has_mask and not running)
        self.a_retry.setEnabled(self.jobs.can_try_again(self.photo) and not running)
        last = self.photo.last_removal() if self.photo is not None else None
        self.a_retry.setToolTip(
            "Quick gives the same result every time; Try again needs a Moebius model"
            if last is not None and last.settings.deterministic else
            "Undo the last removal and run it again with a new seed (Ctrl+R)")
        self.a_cancel.setEnabled(running)
        for action in (self.a_save, self.a_save_as, self.a_export, self.a_close,
                       self.a_compare, self.a_grow, self.a_shrink, self.a_load_mask,
                       self.a_save_mask, self.a_copy_image):
            action.setEnabled(doc is not None)
        self.split_slider.setEnabled(doc is not None)
        self.split_label.setEnabled(doc is not None)
        self._update_status()

    def _show_canvas(self, visible: bool) -> None:
        self.stack.setCurrentWidget(self.canvas_page if visible else self.welcome)
        if visible:
            self.canvas.setFocus()

    def closeEvent(self, event) -> None:
        if not self.confirm_discard():
            event.ignore()
            return
        self.settings.window_geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.brush_size = self.canvas.brushSize()
        self._closing = True  # signals still arrive while Qt tears the widgets down
        if self.photo is not None:
            self.keeper.photo_closing(self.photo)
            self.photo.close()  # cancels its jobs; a late result is refused
        self.worker.shutdown()  # returns at once: a running load or decode is abandoned
        self.keeper.finish()  # the history's last write runs to its end, in the background
        event.accept()

