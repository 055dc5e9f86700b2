"""The canvas: shows the photo and lets people paint the removal mask on it.

A plain QWidget with its own view transform (widget = image * zoom + offset) rather than
a QGraphicsView: the canvas draws each exposed rectangle straight from the right level of
a shared-memory image pyramid (canvas_layers), so painting on a 24 MP photo only touches
the changed box, and a scene graph would add indexing and caching we would have to defeat.

Mouse and keyboard handling is in canvas_input.py, the shortcuts in canvas_actions.py,
the transient marks (brush ring, rectangle, lasso) in canvas_paint.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from app.canvas.actions import build_actions
from app.canvas.input import CanvasInputMixin
from app.canvas.layers import MaskLayer, PhotoLayer, level_for_zoom
from app.canvas.paint import paint_interaction
from app.canvas.patches import Patches
from app.canvas.view import (
    BRUSH_DEFAULT,
    BRUSH_MAX,
    BRUSH_MIN,
    STEP_NAMES,
    Tool,
    clamp_zoom,
    fit_zoom,
    next_zoom_step,
    step_brush,
)
from app.history import CompositeEditCommand, HistoryStack, MaskEditCommand
from engine.document.box import Box
from engine.document.document import Document
from engine.document.mask import MaskPatch

if TYPE_CHECKING:
    from app.open_photo import OpenPhoto

log = logging.getLogger(__name__)

DEFAULT_OVERLAY = QColor(255, 0, 0, 128)
BACKGROUND = QColor(40, 40, 40)
_PAN_KEEP = 64  # px of the photo that always stay inside the view when panning


class MaskCanvas(CanvasInputMixin, QWidget):
    """Photo view and mask painter.

    Positions are image pixels (float, pixel (i, j) spans [i, i+1) x [j, j+1)) except
    where a name says widget. Edits go through `history` (a HistoryStack); call the
    canvas's undo()/redo() rather than the stack's so a stroke in progress ends first.
    """

    zoomChanged = Signal(float)  # new zoom (1.0 = 100 %)
    brushSizeChanged = Signal(int)  # new brush diameter in image pixels
    toolChanged = Signal(str)  # a Tool value: "brush", "eraser", "rect", "lasso"
    maskChanged = Signal()  # a mask edit finished, or was undone/redone
    imageChanged = Signal()  # the photo's pixels changed (removal applied/undone)
    overlayVisibleChanged = Signal(bool)
    historyChanged = Signal(object)  # the HistoryStack now shown (another photo's)
    choiceChanged = Signal(object)  # the shown photo's Choice of variations, or None

    def __init__(self, parent: QWidget | None = None, history: HistoryStack | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)  # the brush ring follows the mouse without a button
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 150)
        self.history = HistoryStack(self)
        self._photo_owner: OpenPhoto | None = None
        self._doc: Document | None = None
        self._photo: PhotoLayer | None = None
        self._original: tuple[np.ndarray, PhotoLayer] | None = None  # for before/after
        self._comparing = False
        self._split = 0.0  # before/after split: the original left of this share of the width
        self._overlay: MaskLayer | None = None
        self._preview = Patches()  # a running removal's fill, as it forms
        self._chosen = Patches()  # the variation being looked at (the photo's choice)
        self._zoom = 1.0
        self._emitted_zoom = 0.0  # zoomChanged fires only when the zoom really changes
        self._offset = QPointF(0, 0)
        self._fit_mode = True  # re-fit on resize until the person zooms
        self._tool = Tool.BRUSH
        self._brush = BRUSH_DEFAULT
        self._overlay_visible = True
        self._overlay_color = QColor(DEFAULT_OVERLAY)
        self._hover: QPointF | None = None  # widget position of the mouse, for the ring
        self._space = False
        self._drag: str | None = None  # "paint", "pan", "rect" or "lasso"
        self._drag_erase = False
        self._drag_points: list[QPointF] = []  # image points of a rectangle/lasso drag
        self._pan_from = QPointF()
        self._last_stroke_end: tuple[float, float] | None = None
        self._actions = build_actions(self)
        self.addActions(list(self._actions.values()))
        self._bind_history(history if history is not None else self.history, None)
        self._update_cursor()

    # -- document -------------------------------------------------------------------------

    def document(self) -> Document | None:
        return self._doc

    def photo(self) -> OpenPhoto | None:
        return self._photo_owner

    def setPhoto(self, photo: OpenPhoto | None) -> None:
        """Show an open photo: its document, and edits go into its history."""
        if self._photo_owner is not None:
            self._photo_owner.regionChanged.disconnect(self._composite_changed)
            self._photo_owner.choiceChanged.disconnect(self._choice_changed)
        self._photo_owner = photo
        if photo is None:
            self.setDocument(None, HistoryStack(self))
            self.choiceChanged.emit(None)
            return
        photo.regionChanged.connect(self._composite_changed)
        photo.choiceChanged.connect(self._choice_changed)
        self.setDocument(photo.document, photo.history)
        self._choice_changed()

    def setDocument(self, doc: Document | None, history: HistoryStack | None = None) -> None:
        """Show `doc` (None: nothing), fitted to the view. Edits go into `history`; without
        one, the canvas's own history starts empty."""
        self._end_drag(commit=False)
        if history is None:
            self.history.clear()
        else:
            self._bind_history(history, self.history)
        self._doc = doc
        self._preview.clear()
        self._chosen.clear()
        self._photo = PhotoLayer(doc.pixels) if doc else None
        self._original, self._comparing, self._split = None, False, 0.0
        self._overlay = MaskLayer(doc.mask.array, self._overlay_color) if doc else None
        self._last_stroke_end = None
        self.fitToWindow()
        self.maskChanged.emit()

    def setImage(self, pixels: np.ndarray) -> Document:
        """Convenience: open `pixels` as a new document with an empty mask."""
        doc = Document(pixels)
        self.setDocument(doc)
        return doc

    def showOriginal(self, original: np.ndarray | None) -> None:
        """Before/after: draw `original` (same size as the photo) instead of the current
        pixels, without the mask, until called with None. Nothing is edited."""
        if original is not None and self._photo is not None:
            if self._original is None or self._original[0] is not original:
                self._original = (original, PhotoLayer(original))  # built once per photo
            self._comparing = True
        else:
            self._comparing = False
        self.update()

    def isShowingOriginal(self) -> bool:
        return self._comparing

    def showSplit(self, original: np.ndarray | None, fraction: float) -> None:
        """Before/after split: `original` left of a vertical line at `fraction` of the
        photo's width, the current pixels (and the mask) right of it; 0 or None: off."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if original is None or self._photo is None:
            fraction = 0.0
        elif self._original is None or self._original[0] is not original:
            self._original = (original, PhotoLayer(original))
        self._split = fraction
        self.update()

    def split(self) -> float:
        return self._split

    def _bind_history(self, new: HistoryStack, old: HistoryStack | None) -> None:
        undo, redo = self._actions["edit.undo"], self._actions["edit.redo"]
        if old is not None and old is not new:
            for signal, slot in self._history_links(old):
                signal.disconnect(slot)
        self.history = new
        for signal, slot in self._history_links(new):
            signal.connect(slot)
        undo.setEnabled(new.canUndo())
        redo.setEnabled(new.canRedo())
        self._undo_text(new.undoText())
        self._redo_text(new.redoText())
        self.historyChanged.emit(new)

    def _history_links(self, stack: HistoryStack):
        undo, redo = self._actions["edit.undo"], self._actions["edit.redo"]
        return [(stack.canUndoChanged, undo.setEnabled), (stack.canRedoChanged, redo.setEnabled),
                (stack.undoTextChanged, self._undo_text),
                (stack.redoTextChanged, self._redo_text)]

    @Slot(str)
    def _undo_text(self, text: str) -> None:
        self._actions["edit.undo"].setText(f"Undo {text}".strip())

    @Slot(str)
    def _redo_text(self, text: str) -> None:
        self._actions["edit.redo"].setText(f"Redo {text}".strip())

    # -- view ---------------------------------------------------------------------------

    def zoom(self) -> float:
        return self._zoom

    def setZoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under `anchor` (widget px; default centre) fixed."""
        zoom = clamp_zoom(zoom)
        anchor = QPointF(anchor) if anchor is not None else QRectF(self.rect()).center()
        fixed = self.mapToImage(anchor)
        self._zoom = zoom
        self._offset = anchor - fixed * zoom
        self._fit_mode = False
        self._view_changed()

    def centerOn(self, point: QPointF) -> None:
        """Scroll so the image point `point` is at the centre of the view."""
        self._offset = QRectF(self.rect()).center() - QPointF(point) * self._zoom
        self._fit_mode = False
        self._view_changed()

    def zoomIn(self) -> None:
        self.setZoom(next_zoom_step(self._zoom, +1))

    def zoomOut(self) -> None:
        self.setZoom(next_zoom_step(self._zoom, -1))

    def actualSize(self) -> None:
        """100 %: one photo pixel per screen pixel."""
        self.setZoom(1.0)

    def fitToWindow(self) -> None:
        """Show the whole photo, centred; stays fitted when the view is resized."""
        if self._photo is not None:
            w, h = self._photo.width, self._photo.height
            self._zoom = fit_zoom(w, h, self.width(), self.height())
            self._offset = QPointF((self.width() - w * self._zoom) / 2,
                                   (self.height() - h * self._zoom) / 2)
        self._fit_mode = True
        self._view_changed(clamp=False)

    def mapToImage(self, pos: QPointF) -> QPointF:
        """Widget position -> image position (pixel (i, j) spans [i, i+1) x [j, j+1))."""
        return (QPointF(pos) - self._offset) / self._zoom

    def mapFromImage(self, pos: QPointF) -> QPointF:
        """Image position -> widget position."""
        return QPointF(pos) * self._zoom + self._offset

    def imageRectToWidget(self, box: Box) -> QRectF:
        x0, y0, x1, y1 = box
        z = self._zoom
        return QRectF(self._offset.x() + x0 * z, self._offset.y() + y0 * z,
                      (x1 - x0) * z, (y1 - y0) * z)

    def overlayVisible(self) -> bool:
        return self._overlay_visible

    def setOverlayVisible(self, visible: bool) -> None:
        if visible != self._overlay_visible:
            self._overlay_visible = bool(visible)
            self._actions["overlay.toggle"].setChecked(self._overlay_visible)
            self.update()
            self.overlayVisibleChanged.emit(self._overlay_visible)

    def setOverlayColor(self, color: QColor) -> None:
        """The mask's colour; its alpha is the overlay's opacity."""
        self._overlay_color = QColor(color)
        if self._overlay is not None:
            self._overlay.set_color(self._overlay_color)
        self.update()

    # -- tools ----------------------------------------------------------------------------

    def tool(self) -> str:
        return str(self._tool)

    def setTool(self, tool: str) -> None:
        tool = Tool(tool)
        if tool != self._tool:
            self._end_drag(commit=True)
            self._tool = tool
            self._actions[f"tool.{tool}"].setChecked(True)
            self._update_cursor()
            self._update_ring()
            self.toolChanged.emit(str(tool))

    def brushSize(self) -> int:
        """Brush diameter in image pixels."""
        return self._brush

    def setBrushSize(self, size: int) -> None:
        size = min(max(int(size), BRUSH_MIN), BRUSH_MAX)
        if size != self._brush:
            self._update_ring()
            self._brush = size
            self._update_ring()
            self.brushSizeChanged.emit(size)

    def stepBrushSize(self, direction: int) -> None:
        """One press of ] (direction > 0) or [."""
        self.setBrushSize(step_brush(self._brush, direction))

    def canvasActions(self) -> dict:
        """The canvas's QActions by name (see canvas_actions.py), for menus and toolbars."""
        return dict(self._actions)

    # -- mask and history -----------------------------------------------------------------

    def undo(self) -> None:
        self._end_drag(commit=True)  # a live stroke must end before the mask changes
        if self._photo_owner is not None and self._photo_owner.discard_choice():
            return  # undoing variations not yet kept: the photo as it was, nothing more
        self.history.undo()

    def redo(self) -> None:
        self._end_drag(commit=True)
        if self._photo_owner is not None:
            self._photo_owner.discard_choice()
        self.history.redo()

    # -- pictures over the photo ------------------------------------------------------------

    def showPreview(self, patches) -> None:
        """Show a running removal's fill (engine PreviewPatch items) until cleared."""
        self._redraw(self._preview.set([(p.box, p.rgba) for p in patches]))

    def clearPreview(self) -> None:
        self._redraw(self._preview.clear())

    def hasPreview(self) -> bool:
        return bool(self._preview.items)

    def settleChoice(self) -> None:
        """A new edit keeps the variation on show (one undo step) before it starts."""
        if self._photo_owner is not None and self._photo_owner.choice is not None:
            self._photo_owner.accept_choice()

    @Slot()
    def _choice_changed(self) -> None:
        choice = self._photo_owner.choice if self._photo_owner is not None else None
        shown = [] if choice is None else [(choice.current.box, choice.current.pixels)]
        self._redraw(self._chosen.set(shown))
        self.choiceChanged.emit(choice)

    def _redraw(self, boxes: list[Box]) -> None:
        for box in boxes:
            self.update(self.imageRectToWidget(box).toAlignedRect().adjusted(-2, -2, 2, 2))

    def paintStroke(self, points, erase: bool = False, brush_size: int | None = None) -> bool:
        """Paint (or erase) a polyline of image points as one step, like a mouse drag."""
        radius = (brush_size or self._brush) / 2
        name = STEP_NAMES[Tool.BRUSH][erase]
        return self._mask_op(name, lambda m: m.stroke(list(points), radius, erase))

    def fillRect(self, x0: float, y0: float, x1: float, y1: float, erase: bool = False) -> bool:
        name = STEP_NAMES[Tool.RECT][erase]
        return self._mask_op(name, lambda m: m.fill_rect(x0, y0, x1, y1, erase))

    def fillLasso(self, points, erase: bool = False) -> bool:
        name = STEP_NAMES[Tool.LASSO][erase]
        return self._mask_op(name, lambda m: m.fill_polygon(list(points), erase))

    def clearPaintedMask(self) -> bool:
        return self._mask_op("Clear mask", lambda m: m.clear())

    def invertMask(self) -> bool:
        return self._mask_op("Invert mask", lambda m: m.invert())

    def growMask(self, pixels: int) -> bool:
        return self._mask_op(f"Grow mask {int(pixels)} px", lambda m: m.grow(pixels))

    def shrinkMask(self, pixels: int) -> bool:
        return self._mask_op(f"Shrink mask {int(pixels)} px", lambda m: m.shrink(pixels))

    def setMaskArray(self, array: np.ndarray, name: str = "Load mask") -> bool:
        return self._mask_op(name, lambda m: m.set_array(array))

    def applyRemoval(self, box: Box, pixels: np.ndarray, name: str = "Remove object",
                     cleared: np.ndarray | None = None) -> bool:
        """Write a removal result into `box` and clear the mask (inside `box`, or where the
        full-size bool array `cleared` is True): one undoable step."""
        if self._doc is None:
            return False
        self._end_drag(commit=True)
        edit = self._doc.replace_region(box, pixels, True if cleared is None else cleared)
        if edit is None:
            return False
        self.history.push(CompositeEditCommand(self._doc, edit, name, self._composite_changed))
        self._composite_changed(edit.image and edit.image.bbox, edit.mask and edit.mask.bbox)
        return True

    def _mask_op(self, name: str, op) -> bool:
        if self._doc is None:
            return False
        self._end_drag(commit=True)
        self.settleChoice()
        patch = op(self._mask())
        if patch is None:
            return False
        self._push_mask(patch, name)
        self._mask_region_changed(patch.bbox)
        return True

    def _push_mask(self, patch: MaskPatch, name: str) -> None:
        self.history.push(MaskEditCommand(self._mask(), patch, name, self._mask_edited))
        self.maskChanged.emit()

    def _mask_edited(self, box: Box) -> None:  # undo/redo of a mask command
        self._mask_region_changed(box)
        self.maskChanged.emit()

    def _composite_changed(self, image_box: Box | None, mask_box: Box | None) -> None:
        if image_box is not None:
            self._image_region_changed(image_box)
            self.imageChanged.emit()
        if mask_box is not None:
            self._mask_region_changed(mask_box)
        self.maskChanged.emit()

    # -- redrawing ------------------------------------------------------------------------

    def _region_rect(self, box: Box, level: int) -> QRect:
        """Widget rectangle to repaint for a change in `box` (covering whole level cells)."""
        s = 1 << level
        x0, y0 = box[0] // s * s, box[1] // s * s
        x1, y1 = -(-box[2] // s) * s, -(-box[3] // s) * s
        return self.imageRectToWidget((x0, y0, x1, y1)).toAlignedRect().adjusted(-2, -2, 2, 2)

    def _mask_region_changed(self, box: Box | None) -> None:
        if box is None or self._overlay is None:
            return
        self._overlay.update(box)
        if self._overlay_visible:
            level = level_for_zoom(self._zoom, len(self._overlay.images))
            self.update(self._region_rect(box, level))

    def _image_region_changed(self, box: Box) -> None:
        if self._photo is None:
            return
        self._photo.update(box)
        self.update(self._region_rect(box, level_for_zoom(self._zoom, len(self._photo.images))))

    def _view_changed(self, clamp: bool = True) -> None:
        if clamp:
            self._clamp_offset()
        self.update()
        if self._zoom != self._emitted_zoom:
            self._emitted_zoom = self._zoom
            self.zoomChanged.emit(self._zoom)

    def _clamp_offset(self) -> None:
        """Keep at least a strip of the photo in view, so it can't be panned away."""
        if self._photo is None:
            return
        shown_w, shown_h = self._photo.width * self._zoom, self._photo.height * self._zoom
        keep_x, keep_y = min(_PAN_KEEP, shown_w), min(_PAN_KEEP, shown_h)
        x = min(max(self._offset.x(), keep_x - shown_w), self.width() - keep_x)
        y = min(max(self._offset.y(), keep_y - shown_h), self.height() - keep_y)
        self._offset = QPointF(x, y)

    def _ring_rect(self) -> QRect:
        if self._hover is None:
            return QRect()
        r = self._brush * self._zoom / 2 + 4
        return QRectF(self._hover.x() - r, self._hover.y() - r, 2 * r, 2 * r).toAlignedRect()

    def _update_ring(self) -> None:
        if self._tool in (Tool.BRUSH, Tool.ERASER):
            self.update(self._ring_rect())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), BACKGROUND)
        if self._photo is None:
            painter.setPen(QColor(160, 160, 160))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a photo to start")
            return
        photo_rect = self.imageRectToWidget((0, 0, self._photo.width, self._photo.height))
        exposed = QRectF(event.rect()).intersected(photo_rect)
        if not exposed.isEmpty():
            painter.save()
            painter.setClipRect(photo_rect)  # reduced levels may reach past the photo's edge
            photo = self._original[1] if self._comparing and self._original else self._photo
            self._draw_layer(painter, photo.images, exposed)
            if self._overlay_visible and not self._comparing and self._overlay is not None:
                self._draw_layer(painter, self._overlay.images, exposed)
            if not self._comparing:
                self._chosen.draw(painter, self.imageRectToWidget, exposed)
                self._preview.draw(painter, self.imageRectToWidget, exposed)
            if self._split > 0 and not self._comparing and self._original is not None:
                self._paint_split(painter, photo_rect, exposed)
            painter.restore()
        self._paint_marks(painter)

    def _paint_split(self, painter: QPainter, photo_rect: QRectF, exposed: QRectF) -> None:
        """The original photo left of the split line (without the mask), then the line."""
        assert self._original is not None
        x = photo_rect.left() + self._split * photo_rect.width()
        left = QRectF(photo_rect.left(), photo_rect.top(), x - photo_rect.left(),
                      photo_rect.height()).intersected(exposed)
        if not left.isEmpty():
            painter.save()
            painter.setClipRect(left)
            self._draw_layer(painter, self._original[1].images, left)
            painter.restore()
        painter.setPen(QColor(255, 255, 255, 220))
        painter.drawLine(QPointF(x, photo_rect.top()), QPointF(x, photo_rect.bottom()))

    def _paint_marks(self, painter: QPainter) -> None:
        fill = QColor(self._overlay_color)
        fill.setAlphaF(fill.alphaF() * 0.5)
        pts = [self.mapFromImage(p) for p in self._drag_points]
        ring = self._tool in (Tool.BRUSH, Tool.ERASER) and not self._space and self._drag != "pan"
        paint_interaction(
            painter,
            ring_center=self._hover if ring else None,
            ring_radius=self._brush * self._zoom / 2,
            eraser=self._tool == Tool.ERASER,
            rect=QRectF(pts[0], pts[1]).normalized() if self._drag == "rect" else None,
            lasso=pts if self._drag == "lasso" else None,
            fill=None if self._drag_erase else fill,
        )

    def _draw_layer(self, painter: QPainter, images: list, exposed: QRectF) -> None:
        """Draw the part of a pyramid that covers `exposed` (widget px)."""
        level = level_for_zoom(self._zoom, len(images))
        image = images[level]
        scale = self._zoom * (1 << level)  # screen px per level px
        # One level pixel of margin so smooth scaling has its neighbours at the edges.
        x0 = max(int((exposed.left() - self._offset.x()) / scale) - 1, 0)
        y0 = max(int((exposed.top() - self._offset.y()) / scale) - 1, 0)
        x1 = min(int((exposed.right() - self._offset.x()) / scale) + 2, image.width())
        y1 = min(int((exposed.bottom() - self._offset.y()) / scale) + 2, image.height())
        if x0 >= x1 or y0 >= y1:
            return
        source = QRectF(x0, y0, x1 - x0, y1 - y0)
        target = QRectF(self._offset.x() + x0 * scale, self._offset.y() + y0 * scale,
                        (x1 - x0) * scale, (y1 - y0) * scale)
        # Crisp pixels when zoomed in (pixel peeping), smooth when reducing.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 2)
        painter.drawImage(target, image, source)
