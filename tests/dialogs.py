"""Message boxes in GUI tests: answered by the test, never left waiting for a person."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


def answer_boxes(monkeypatch, choices: list[str]) -> list[tuple[str, list[str]]]:
    """Message boxes answer themselves: each clicks the button named by the next choice
    (mnemonic marks ignored). Returns (text, button texts) of every box shown."""
    shown = []

    def fake_exec(box):
        shown.append((box.text(), [b.text() for b in box.buttons()]))
        want = choices.pop(0)
        next(b for b in box.buttons() if b.text().replace("&", "") == want).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown
