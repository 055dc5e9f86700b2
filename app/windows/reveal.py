"""Showing a folder to the person: in their file manager, or by saying where it is."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.about import APP_NAME


def show_folder(parent: QWidget | None, folder: Path, what: str) -> bool:
    """Open `folder` in the file manager. Where none opens (no file manager, a bare
    desktop, a remote session), say where the folder is, in text that can be copied.
    True when a file manager took it."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        return True
    box = QMessageBox(QMessageBox.Icon.Information, APP_NAME, f"{what} is here:", parent=parent)
    box.setInformativeText(f"{folder}\n\nNo file manager could be opened on this computer; "
                           "the path above can be selected and copied.")
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.exec()
    return False
