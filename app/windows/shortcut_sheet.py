"""Help ▸ Keyboard shortcuts: every shortcut of every menu, and the mouse gestures.

Built from the menus' own actions, so a shortcut added to a menu is listed without
anyone remembering to add it here.
"""

from __future__ import annotations

from html import escape

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QMenu, QMenuBar, QTextBrowser, QVBoxLayout, QWidget

# What is not a menu entry: keys held while dragging, and keys with no menu entry.
GESTURES = [
    ("Esc", "Cancel a running removal, or the stroke being drawn"),
    ("\\ (hold)", "See the original photo while held"),
    ("Alt + drag", "The opposite action: erase with the brush, rectangle or lasso"),
    ("Shift + click", "A straight line from where the last stroke ended"),
    ("Space + drag, or middle button", "Pan"),
    ("Arrow keys (Shift: further)", "Pan"),
    ("Mouse wheel", "Zoom around the mouse pointer"),
]


def _plain(text: str) -> str:
    return text.split("\t")[0].replace("&&", "\0").replace("&", "").replace("\0", "&")


def shortcut_rows(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, keys, what) for every menu action with a shortcut, then the gestures."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def walk(menu: QMenu, title: str) -> None:
        for action in menu.actions():
            sub = action.menu()
            if isinstance(sub, QMenu):
                walk(sub, title)
                continue
            if id(action) in seen or not action.shortcuts():
                continue
            seen.add(id(action))
            keys = " / ".join(k.toString(QKeySequence.SequenceFormat.NativeText)
                              for k in action.shortcuts())
            rows.append((title, keys, _plain(action.text())))

    for action in menu_bar.actions():
        menu = action.menu()
        if isinstance(menu, QMenu):
            walk(menu, _plain(action.text()))
    rows += [("Canvas", keys, what) for keys, what in GESTURES]
    return rows


def sheet_html(rows: list[tuple[str, str, str]]) -> str:
    out, last = [], None
    for menu, keys, what in rows:
        if menu != last:
            out.append(f"<tr><td colspan=2><br><b>{escape(menu)}</b></td></tr>")
            last = menu
        out.append(f"<tr><td><b>{escape(keys)}</b>&nbsp;&nbsp;&nbsp;</td>"
                   f"<td>{escape(what)}</td></tr>")
    return "<table>" + "".join(out) + "</table>"


class ShortcutSheet(QDialog):
    def __init__(self, menu_bar: QMenuBar, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = shortcut_rows(menu_bar)
        view = QTextBrowser()
        view.setHtml(sheet_html(self.rows))
        layout = QVBoxLayout(self)
        layout.addWidget(view)
        self.resize(520, 560)


