"""The main window's Model menu: the engine picker (which marks what is installed), the
model manager, the models folder, and making sure a chosen fine-tune can run.

A mixin of MainWindow, split out for size; it holds no state of its own beyond the weights
store, which follows the models-folder setting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMainWindow, QMenu

from app.settings import QUICK, Settings
from app.windows.model_dialog import ModelDialog
from app.windows.model_text import megabytes
from app.windows.reveal import show_folder
from engine.errors import MoebiusError
from engine.weights import zoo
from engine.weights.state import Status

if TYPE_CHECKING:
    from PySide6.QtGui import QAction, QActionGroup

    from app.jobs.worker import Worker
    from engine.events import CancelToken

log = logging.getLogger(__name__)

QUICK_LABEL = "Quick (no download)"


class ModelActions(QMainWindow):
    if TYPE_CHECKING:  # what MainWindow provides (declared for the type checker only)
        settings: Settings
        worker: Worker
        engine_group: QActionGroup
        engine_actions: list[QAction]
        model_menu: QMenu
        installed: dict[str, bool]  # fine-tune -> ready to run, as the picker last saw it
        _store: object

        def _update_status(self) -> None: ...

    # -- the weights store ------------------------------------------------------------------

    def store(self):
        """The weights store for the models folder in use (the shared setting)."""
        if self._store is None:
            from engine.weights.store import WeightStore

            self._store = WeightStore()
        return self._store

    def _load_model(self, variant: str, placement, cancel: CancelToken | None = None):
        """Runs on the worker thread when a removal first needs the network; `cancel`
        stops it between its parts."""
        from engine.sampling.inpainter import MoebiusInpainter

        unet, vae = self.store().paths(variant)
        return MoebiusInpainter.load(unet, vae, placement, cancel=cancel)

    def ensure_model(self) -> bool:
        """True when the chosen engine can run now; offers download/import/Quick if not."""
        choice = self.settings.engine_choice
        if choice == QUICK:
            return True
        try:
            self.store().paths(choice)
            return True
        except MoebiusError:
            pass
        dialog = ModelDialog(choice, self.store(), self.worker, self)
        accepted = dialog.exec() == ModelDialog.DialogCode.Accepted
        dialog.deleteLater()
        self.mark_installed()
        if dialog.use_quick:
            self.set_engine_choice(QUICK)
            return True
        return accepted

    def set_engine_choice(self, choice: str) -> None:
        self.settings.engine_choice = choice
        for action in self.engine_group.actions():
            action.setChecked(action.data() == choice)
        self._update_status()

    # -- the picker -------------------------------------------------------------------------

    def engine_entries(self) -> list[tuple[str, str, str]]:
        """(engine choice, menu text, tooltip) of every engine, Quick first."""
        rows = [(QUICK, QUICK_LABEL,
                 "Classical inpainting: instant, fine for small spots on plain backgrounds")]
        rows += [(e.id, f"Moebius: {e.name}", e.description) for e in zoo.VARIANTS.values()]
        return rows

    def mark_installed(self) -> None:
        """Say in the picker which fine-tunes are installed (and what the others need)."""
        try:
            vae = self.store().state(zoo.VAE.id)
        except OSError as exc:  # an unreadable models folder: the picker still works
            log.warning("cannot read the models folder: %s", exc)
            return
        for action in self.engine_actions:
            choice = action.data()
            if choice == QUICK:
                continue
            entry = zoo.resolve(choice)
            state = self.store().state(choice)
            if state.status == Status.READY and vae.status == Status.READY:
                mark = "installed"
            elif state.status == Status.READY:
                mark = f"needs the autoencoder ({megabytes(zoo.VAE.size)})"
            elif state.status == Status.DOWNLOADING:
                mark = "partly downloaded"
            elif state.status == Status.DAMAGED:
                mark = "damaged: see Manage models"
            else:
                mark = f"not installed · {megabytes(entry.size)}"
            action.setText(f"Moebius: {entry.name}\t{mark}")
            action.setToolTip(f"{entry.description} ({mark})")
            self.installed[choice] = mark == "installed"
        self._update_status()

    # -- the manager and the folder ---------------------------------------------------------

    def manage_models(self, selected: str | None = None) -> None:
        from app.windows.model_manager import ModelManager

        choice = self.settings.engine_choice
        dialog = ModelManager(self.store(), self.worker, self,
                              selected or (None if choice == QUICK else choice))
        dialog.exec()
        dialog.deleteLater()  # it listens to the worker: do not keep closed ones around
        self.mark_installed()

    def open_models_folder(self) -> bool:
        folder = self.store().root
        folder.mkdir(parents=True, exist_ok=True)
        return show_folder(self, folder, "The models folder")

    def models_folder_changed(self) -> None:
        """Preferences chose another models folder: look there from now on."""
        self._store = None
        self.mark_installed()
