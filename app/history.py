"""Undo history for the canvas: QUndoStack commands that hold only patches.

One brush stroke (press to release), rectangle, lasso or mask operation is one command;
a removal result is one `CompositeEditCommand` (image patch + mask patch). Commands keep
the patches' boxes of old and new pixels, never whole copies of the photo or the mask.

Memory limit: QUndoStack can only cap the *number* of commands (setUndoLimit, and only
while empty), but a stroke may be 2 KB and an inverted 24 MP mask 48 MB, so a count says
nothing about memory. `HistoryStack` therefore counts the bytes of its commands' patches
and, when a push goes over the limit, drops the oldest commands by rebuilding the stack:
the survivors are re-pushed as fresh commands marked "already applied", so nothing is
redone on the mask. A rebuild costs one pass over the kept commands; trimming to 90 % of
the limit makes it rare. We keep QUndoStack (rather than our own list) so the standard
undo/redo actions, QUndoView, clean state and canUndo/canRedo signals all keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.document.box import Box
from engine.document.document import CompositeEdit, Document
from engine.document.journal import HistorySnapshot, StepRef
from engine.document.mask import MaskModel, MaskPatch

log = logging.getLogger(__name__)

DEFAULT_BYTE_LIMIT = 512 * 1024 * 1024
_TRIM_TO = 0.9  # after a rebuild the history holds at most this share of the limit


class PatchCommand(QUndoCommand):
    """Base of the canvas's commands: knows its size in bytes and can copy itself.

    `applied=True` means the edit is already in the model (a live stroke painted it), so
    the first redo(), which QUndoStack.push() calls, does nothing.
    """

    def __init__(self, text: str, applied: bool):
        super().__init__(text)
        self._skip_redo = applied

    @property
    def nbytes(self) -> int:
        raise NotImplementedError

    def clone_applied(self) -> PatchCommand:
        """A fresh command with the same edit, marked as applied (for stack rebuilds)."""
        raise NotImplementedError

    def step(self) -> StepRef:
        """The command as the on-disk journal sees it: its name, its edit and the patch
        object that stays the same across clones."""
        raise NotImplementedError

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self._do(redo=True)

    def undo(self) -> None:
        self._do(redo=False)

    def _do(self, redo: bool) -> None:
        raise NotImplementedError


class MaskEditCommand(PatchCommand):
    """A mask edit; `on_change(box)` tells the canvas which box to redraw."""

    def __init__(
        self,
        mask: MaskModel,
        patch: MaskPatch,
        text: str,
        on_change: Callable[[Box], None] | None = None,
        applied: bool = True,
    ):
        super().__init__(text, applied)
        self.mask = mask
        self.patch = patch
        self.on_change = on_change

    @property
    def nbytes(self) -> int:
        return self.patch.nbytes

    def clone_applied(self) -> MaskEditCommand:
        return MaskEditCommand(self.mask, self.patch, self.text(), self.on_change, True)

    def step(self) -> StepRef:
        return StepRef(self.text(), CompositeEdit(mask=self.patch), self.patch)

    def _do(self, redo: bool) -> None:
        (self.mask.apply if redo else self.mask.revert)(self.patch)
        if self.on_change is not None:
            self.on_change(self.patch.bbox)


class CompositeEditCommand(PatchCommand):
    """A removal result: photo pixels and mask change together as one step.

    `on_change(image_box, mask_box)` tells the canvas what to redraw (None: unchanged).
    """

    def __init__(
        self,
        document: Document,
        edit: CompositeEdit,
        text: str = "Remove object",
        on_change: Callable[[Box | None, Box | None], None] | None = None,
        applied: bool = True,
    ):
        super().__init__(text, applied)
        self.document = document
        self.edit = edit
        self.on_change = on_change

    @property
    def nbytes(self) -> int:
        return self.edit.nbytes

    def clone_applied(self) -> CompositeEditCommand:
        return CompositeEditCommand(self.document, self.edit, self.text(), self.on_change, True)

    def step(self) -> StepRef:
        return StepRef(self.text(), self.edit, self.edit)

    def _do(self, redo: bool) -> None:
        (self.document.apply if redo else self.document.revert)(self.edit)
        if self.on_change is not None:
            image, mask = self.edit.image, self.edit.mask
            self.on_change(image.bbox if image else None, mask.bbox if mask else None)


class HistoryStack(QUndoStack):
    """A QUndoStack whose commands' patches together stay under `byte_limit` bytes.

    The newest command is always kept, even if it alone is over the limit, so the last
    action can be undone. Push only PatchCommands. With a canvas, undo and redo through
    the canvas (its undo()/redo() or its edit.undo/edit.redo actions, which carry the
    standard Undo/Redo shortcuts), so that a stroke in progress ends first.
    """

    def __init__(self, parent=None, byte_limit: int = DEFAULT_BYTE_LIMIT):
        super().__init__(parent)
        self._byte_limit = int(byte_limit)
        self.trimmed = 0  # commands dropped from the start by the limit, ever (journal.py)
        # Which pixels the bottom of the stack stands for: None for the photo as opened,
        # else the last pixel edit that was dropped to stay under the limit.
        self.base_pixels: object | None = None

    def pixels_at(self, index: int) -> object | None:
        """A token for the photo's pixels at history `index`: the newest pixel edit below
        it (mask edits do not count), or `base_pixels`. Equal tokens, equal pixels."""
        for i in range(min(index, self.count()) - 1, -1, -1):
            command = self.command(i)
            if isinstance(command, CompositeEditCommand) and command.edit.image is not None:
                return command.edit
        return self.base_pixels

    def byteLimit(self) -> int:
        return self._byte_limit

    def setByteLimit(self, limit: int) -> None:
        """Change the limit; takes effect at the next push."""
        self._byte_limit = int(limit)

    def commands(self) -> list[PatchCommand]:
        return [cast(PatchCommand, self.command(i)) for i in range(self.count())]

    def snapshot(self) -> HistorySnapshot:
        """The stack as the on-disk journal sees it (cheap: patches are shared, not copied)."""
        return HistorySnapshot(tuple(c.step() for c in self.commands()), self.index(),
                               self.cleanIndex(), self.trimmed)

    def bytesHeld(self) -> int:
        """Bytes of patch data held by every command, undoable or redoable."""
        return sum(cmd.nbytes for cmd in self.commands())

    def push(self, cmd: QUndoCommand) -> None:
        if not isinstance(cmd, PatchCommand):
            raise TypeError("HistoryStack holds PatchCommands only")
        super().push(cmd)  # also deletes any redoable commands, as usual
        if self.bytesHeld() > self._byte_limit:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        # Called right after a push, so every command is applied and index == count.
        cmds = self.commands()
        sizes = [c.nbytes for c in cmds]
        total, first = sum(sizes), 0
        target = self._byte_limit * _TRIM_TO
        while first < len(cmds) - 1 and total > target:
            total -= sizes[first]
            first += 1
        dropped_pixels = [c.edit for c in cmds[:first] if isinstance(c, CompositeEditCommand)
                          and c.edit.image is not None]
        if dropped_pixels:
            self.base_pixels = dropped_pixels[-1]
        clean = self.cleanIndex() - first  # where the clean state lands after the drop
        clones = [c.clone_applied() for c in cmds[first:]]
        self.trimmed += first
        log.info("history over %d bytes: dropping %d oldest steps", self._byte_limit, first)
        super().clear()  # deletes the commands (no undo) and marks index 0 clean
        if clean != 0:
            self.resetClean()
        for i, clone in enumerate(clones, start=1):
            super().push(clone)
            if i == clean:
                self.setClean()
