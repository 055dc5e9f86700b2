"""Guard against Qt binding releases that corrupt the interpreter (PySide6 6.12.0 on
Python 3.11 dropped a reference to None on every void method call, and aborted)."""

import sys

import pytest


@pytest.mark.gui
def test_void_qt_calls_do_not_leak_references_to_none(qtbot):
    from PySide6.QtWidgets import QWidget

    w = QWidget()
    qtbot.addWidget(w)
    before = sys.getrefcount(None)
    for _ in range(2000):
        w.update()
    assert abs(sys.getrefcount(None) - before) < 50
