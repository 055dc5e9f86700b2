"""Drawing of the canvas's transient marks: brush ring, rectangle and lasso outlines."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF


def _two_tone(painter: QPainter, draw, dashed: bool = False) -> None:
    """Draw a shape as a white line on a dark one, so it shows on any photo."""
    dark = QPen(QColor(0, 0, 0, 170), 3)
    light = QPen(QColor(255, 255, 255), 1)
    if dashed:
        light.setStyle(Qt.PenStyle.DashLine)
    for pen in (dark, light):
        pen.setCosmetic(True)
        painter.setPen(pen)
        draw()


def paint_interaction(
    painter: QPainter,
    *,
    ring_center: QPointF | None = None,
    ring_radius: float = 0.0,
    eraser: bool = False,
    rect: QRectF | None = None,
    lasso: list[QPointF] | None = None,
    fill: QColor | None = None,
) -> None:
    """Everything in widget coordinates. `fill` tints a rectangle/lasso being drawn."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    if rect is not None:
        if fill is not None:
            painter.fillRect(rect, fill)
        _two_tone(painter, lambda: painter.drawRect(rect), dashed=True)
    if lasso:
        polygon = QPolygonF(lasso)
        if fill is not None and len(lasso) > 2:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawPolygon(polygon, Qt.FillRule.OddEvenFill)
            painter.setBrush(Qt.BrushStyle.NoBrush)
        _two_tone(painter, lambda: painter.drawPolyline(polygon))
        if len(lasso) > 2:  # where the lasso will close
            _two_tone(painter, lambda: painter.drawLine(lasso[-1], lasso[0]), dashed=True)
    if ring_center is not None:
        r = max(ring_radius, 0.5)
        _two_tone(painter, lambda: painter.drawEllipse(ring_center, r, r), dashed=eraser)
        if r < 6:  # a ring this small is hard to see: add a cross-hair
            c = ring_center
            _two_tone(painter, lambda: (painter.drawLine(c - QPointF(8, 0), c + QPointF(8, 0)),
                                        painter.drawLine(c - QPointF(0, 8), c + QPointF(0, 8))))
    painter.restore()
