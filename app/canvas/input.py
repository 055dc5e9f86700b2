"""Mouse and keyboard handling of the canvas (a mixin of MaskCanvas, split out for size).

Left button: the current tool; with Alt the opposite (erase with brush, rectangle and
lasso; paint with the eraser). Shift+click with brush/eraser: a straight line from where
the last stroke ended. Middle button, or Space + left button: pan. Wheel: zoom around the
cursor. Arrow keys: pan (Shift: further). Escape: cancel the drag in progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QWidget

from app.canvas.view import STEP_NAMES, Tool, wheel_zoom

if TYPE_CHECKING:
    from app.canvas.layers import PhotoLayer
    from engine.document.box import Box
    from engine.document.document import Document
    from engine.document.mask import MaskModel, MaskPatch


_ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1),
           Qt.Key.Key_Down: (0, 1)}


class CanvasInputMixin(QWidget):
    """Event handlers; state and drawing live in MaskCanvas."""

    if TYPE_CHECKING:  # what MaskCanvas provides (declared for the type checker only)
        _doc: Document | None
        _photo: PhotoLayer | None
        _tool: str
        _brush: int
        _zoom: float
        _offset: QPointF
        _fit_mode: bool
        _space: bool
        _hover: QPointF | None
        _drag: str | None
        _drag_erase: bool
        _drag_points: list[QPointF]
        _pan_from: QPointF
        _last_stroke_end: tuple[float, float] | None

        def mapToImage(self, pos: QPointF) -> QPointF: ...
        def setZoom(self, zoom: float, anchor: QPointF | None = None) -> None: ...
        def fitToWindow(self) -> None: ...
        def setOverlayVisible(self, visible: bool) -> None: ...
        def settleChoice(self) -> None: ...
        def _view_changed(self, clamp: bool = True) -> None: ...
        def _update_ring(self) -> None: ...
        def _mask_region_changed(self, box: Box | None) -> None: ...
        def _push_mask(self, patch: MaskPatch, name: str) -> None: ...

    def _mask(self) -> MaskModel:
        """The mask being painted (a drag only starts on an open photo)."""
        assert self._doc is not None
        return self._doc.mask

    def resizeEvent(self, event) -> None:
        if self._fit_mode:
            self.fitToWindow()
        else:  # keep the photo point at the centre where it was
            delta = event.size() - event.oldSize()
            if event.oldSize().isValid():
                self._offset += QPointF(delta.width() / 2, delta.height() / 2)
            self._view_changed()
        super().resizeEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta and self._photo is not None:
            self.setZoom(wheel_zoom(self._zoom, delta), event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._doc is None or self._drag is not None:
            return
        button, pos = event.button(), event.position()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._drag, self._pan_from = "pan", pos
        elif button == Qt.MouseButton.LeftButton:
            self._start_tool_drag(event)
        else:
            event.ignore()
            return
        self._update_cursor()

    def _start_tool_drag(self, event: QMouseEvent) -> None:
        mods = event.modifiers()
        alt = bool(mods & Qt.KeyboardModifier.AltModifier)
        point = self.mapToImage(event.position())
        self.settleChoice()  # a new stroke keeps the variation on show
        self.setOverlayVisible(True)  # painting blind helps nobody
        if self._tool in (Tool.BRUSH, Tool.ERASER):
            self._drag_erase = (self._tool == Tool.ERASER) != alt
            radius = self._brush / 2
            mask = self._mask()
            if mods & Qt.KeyboardModifier.ShiftModifier and self._last_stroke_end:
                dirty = mask.begin_stroke(self._last_stroke_end, radius, self._drag_erase)
                self._mask_region_changed(dirty)
                dirty = mask.stroke_segment((point.x(), point.y()))
            else:
                dirty = mask.begin_stroke((point.x(), point.y()), radius, self._drag_erase)
            self._drag = "paint"
            self._last_stroke_end = (point.x(), point.y())
            self._mask_region_changed(dirty)
        else:
            self._drag_erase = alt
            self._drag = "rect" if self._tool == Tool.RECT else "lasso"
            self._drag_points = [point, point] if self._drag == "rect" else [point]
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._update_ring()
        self._hover = pos
        self._update_ring()
        if self._drag == "pan":
            self._offset += pos - self._pan_from
            self._pan_from = pos
            self._view_changed()
        elif self._drag == "paint":
            point = self.mapToImage(pos)
            self._last_stroke_end = (point.x(), point.y())
            self._mask_region_changed(self._mask().stroke_segment(self._last_stroke_end))
        elif self._drag == "rect":
            self._drag_points[1] = self.mapToImage(pos)
            self.update()
        elif self._drag == "lasso":
            point = self.mapToImage(pos)
            last = self._drag_points[-1]
            # Skip points closer than 1.5 screen px: they add nothing but work.
            if (point - last).manhattanLength() * self._zoom >= 1.5:
                self._drag_points.append(point)
                self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        buttons = [Qt.MouseButton.LeftButton]
        if self._drag == "pan":
            buttons.append(Qt.MouseButton.MiddleButton)
        if self._drag is not None and event.button() in buttons:
            self._end_drag(commit=True)

    def _end_drag(self, commit: bool) -> None:
        """Finish (commit=True) or cancel the drag in progress, if any."""
        drag, self._drag = self._drag, None
        if drag == "paint":
            mask = self._mask()
            if commit:
                patch = mask.end_stroke()
                if patch is not None:
                    self._push_mask(patch, STEP_NAMES[Tool(self._tool)][self._drag_erase])
            else:
                self._mask_region_changed(mask.cancel_stroke())
        elif drag in ("rect", "lasso") and commit:
            pts = self._drag_points
            mask = self._mask()
            if drag == "rect":
                a, b = pts
                patch = mask.fill_rect(a.x(), a.y(), b.x(), b.y(), erase=self._drag_erase)
            else:
                patch = mask.fill_polygon([(p.x(), p.y()) for p in pts], self._drag_erase)
            if patch is not None:
                self._push_mask(patch, STEP_NAMES[Tool(self._tool)][self._drag_erase])
                self._mask_region_changed(patch.bbox)
        if drag in ("rect", "lasso"):
            self._drag_points = []
            self.update()
        self._update_cursor()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        arrow = _ARROWS.get(Qt.Key(event.key()))
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self._update_cursor()
        elif event.key() == Qt.Key.Key_Escape and self._drag is not None:
            self._end_drag(commit=False)
        elif arrow is not None and self._photo is not None:
            self.panBy(arrow, bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        else:
            super().keyPressEvent(event)

    def panBy(self, direction: tuple[int, int], far: bool = False) -> None:
        """Arrow keys: move the view a tenth of its size (Shift: half) in `direction`."""
        share = 0.5 if far else 0.1
        dx, dy = direction
        # The view moves right, so the photo moves left on the screen.
        self._offset -= QPointF(dx * self.width() * share, dy * self.height() * share)
        self._fit_mode = False
        self._view_changed()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._update_cursor()
        else:
            super().keyReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        self._update_ring()
        self._hover = None
        super().leaveEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False  # the release may go to another window
        self._update_cursor()
        super().focusOutEvent(event)

    def _update_cursor(self) -> None:
        shape = Qt.CursorShape
        if self._drag == "pan":
            cursor = shape.ClosedHandCursor
        elif self._space:
            cursor = shape.OpenHandCursor
        elif self._tool in (Tool.BRUSH, Tool.ERASER) and self._doc is not None:
            cursor = shape.BlankCursor  # the ring drawn in paintEvent is the cursor
        else:
            cursor = shape.CrossCursor
        self.setCursor(cursor)
