"""Icons for the canvas's actions, from qtawesome's Material Design Icons (mdi6)."""

from __future__ import annotations

import logging

from PySide6.QtGui import QIcon

log = logging.getLogger(__name__)

ICON_NAMES = {
    "tool.brush": "mdi6.brush",
    "tool.eraser": "mdi6.eraser",
    "tool.rect": "mdi6.rectangle-outline",
    "tool.lasso": "mdi6.lasso",
    "zoom.in": "mdi6.magnify-plus-outline",
    "zoom.out": "mdi6.magnify-minus-outline",
    "zoom.fit": "mdi6.fit-to-screen-outline",
    "zoom.actual": "mdi6.numeric-1-box-outline",
    "overlay": "mdi6.eye-outline",
    "mask.clear": "mdi6.delete-outline",
    "mask.invert": "mdi6.invert-colors",
    "mask.grow": "mdi6.arrow-expand-all",
    "mask.shrink": "mdi6.arrow-collapse-all",
    "undo": "mdi6.undo",
    "redo": "mdi6.redo",
    "history": "mdi6.history",
    "remove": "mdi6.auto-fix",
    "retry": "mdi6.dice-multiple-outline",
    "compare": "mdi6.compare-horizontal",
    "cancel": "mdi6.close-circle-outline",
    "file.open": "mdi6.folder-open-outline",
    "file.save": "mdi6.content-save-outline",
    "file.save_as": "mdi6.content-save-edit-outline",
    "file.export": "mdi6.export",
    "batch": "mdi6.folder-multiple-image",
    "settings": "mdi6.cog-outline",
    "model": "mdi6.brain",
}


def icon(name: str) -> QIcon:
    """The icon for a logical `name` (see ICON_NAMES); an empty icon if unavailable."""
    try:
        import qtawesome

        return qtawesome.icon(ICON_NAMES.get(name, name))
    except Exception:  # a missing font or name must not stop the app from starting
        log.warning("icon %r is not available", name, exc_info=True)
        return QIcon()
