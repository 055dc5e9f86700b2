"""The canvas's keyboard shortcuts, as QActions a main window can also show in menus.

| name | shortcut | does |
|---|---|---|
| tool.brush / tool.eraser / tool.rect / tool.lasso | B / E / R / L | pick the tool |
| brush.smaller / brush.larger | [ / ] | brush size down / up (x1.25) |
| zoom.in / zoom.out | Ctrl++ (or Ctrl+=) / Ctrl+- (platform's ZoomIn/ZoomOut) | zoom steps |
| zoom.fit / zoom.actual | Ctrl+0 / Ctrl+1 | fit to window / 100 % |
| overlay.toggle | H | show/hide the mask overlay |
| mask.clear / mask.invert | Ctrl+D / Ctrl+Shift+I | clear / invert the mask |
| edit.undo / edit.redo | platform's Undo / Redo (Ctrl+Z, Ctrl+Shift+Z / Ctrl+Y) | history |

The actions use Qt.WindowShortcut, so they work wherever focus is in the canvas's
window; a window should add these actions to its menus rather than make copies with the
same shortcuts (two enabled actions with one shortcut cancel each other).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from app.canvas.view import TOOL_LABELS, TOOL_SHORTCUTS, Tool
from app.icons import icon

_STD = QKeySequence.StandardKey


def build_actions(canvas) -> dict[str, QAction]:
    actions: dict[str, QAction] = {}

    def add(name, text, slot, shortcuts=(), icon_name=None, checkable=False):
        action = QAction(text, canvas)
        action.setObjectName(name)
        keys = []
        for key in shortcuts:
            if isinstance(key, _STD):
                keys += QKeySequence.keyBindings(key)
            else:
                keys.append(QKeySequence(key))
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        if icon_name:
            action.setIcon(icon(icon_name))
        action.triggered.connect(slot)
        actions[name] = action
        return action

    group = QActionGroup(canvas)
    group.setExclusive(True)
    for tool in Tool:
        key = TOOL_SHORTCUTS[tool]
        action = add(f"tool.{tool}", f"{TOOL_LABELS[tool]} ({key})",
                     lambda _=False, t=tool: canvas.setTool(t), [key], f"tool.{tool}", True)
        group.addAction(action)
    actions[f"tool.{canvas.tool()}"].setChecked(True)

    add("brush.smaller", "Smaller brush", lambda: canvas.stepBrushSize(-1), ["["])
    add("brush.larger", "Larger brush", lambda: canvas.stepBrushSize(+1), ["]"])
    # Ctrl+= too: on many layouts "+" needs Shift, and people press Ctrl+= for it.
    add("zoom.in", "Zoom in", canvas.zoomIn, [_STD.ZoomIn, "Ctrl+="], "zoom.in")
    add("zoom.out", "Zoom out", canvas.zoomOut, [_STD.ZoomOut], "zoom.out")
    add("zoom.fit", "Fit to window", canvas.fitToWindow, ["Ctrl+0"], "zoom.fit")
    add("zoom.actual", "Actual size (100 %)", canvas.actualSize, ["Ctrl+1"], "zoom.actual")
    overlay = add("overlay.toggle", "Show mask", canvas.setOverlayVisible, ["H"],
                  "overlay", True)
    overlay.setChecked(canvas.overlayVisible())
    add("mask.clear", "Clear mask", canvas.clearPaintedMask, ["Ctrl+D"], "mask.clear")
    add("mask.invert", "Invert mask", canvas.invertMask, ["Ctrl+Shift+I"], "mask.invert")

    # Enabled state and text follow the shown photo's history (MaskCanvas._bind_history).
    add("edit.undo", "Undo", canvas.undo, [_STD.Undo], "undo")
    add("edit.redo", "Redo", canvas.redo, [_STD.Redo], "redo")
    return actions
