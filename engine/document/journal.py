"""Edit histories that survive a restart: one journal per photo, keyed by its content.

Layout, under the user data folder (`history_store.default_root()`):

    history/<sha256 of the photo file>/journal.json   the index (versioned JSON)
    history/<sha256 of the photo file>/<id>.step      one record per step (records.py)
    history/<sha256 of the photo file>/<id>.mask      the mask when the file was saved

A step record is written once, when its step is first seen, and never changed; each
sync then rewrites only the small index, atomically (temporary file, fsync, rename), and
deletes records no step refers to any more. A crash therefore loses at most what
happened since the last sync, and leaves either the old or the new index, never half of
one. Reading tolerates damage: an unreadable index forgets that photo's history; a
damaged step ends the history just before it (or, when only undo needed it, ends the
undo there); either says so in one log line.

What the index holds (positions are in `steps`, the chain of step ids):
- `undoable_from` u: steps[u:] are the undo stack's commands; earlier ones were dropped
  from memory by its size limit but are still needed to rebuild the photo ("baked").
- `file_at` b: the file on disk is the state after steps[:b] (then `detour` applied: steps
  of a branch since abandoned by undo + a new edit, which a restore first reverts).
- `index`: the undo stack's index (relative to u) to restore.
A restore reads the file, sets the saved mask, reverts the detour, applies steps[b:],
pushes steps[u:] as done and moves to `index`. Keys are the SHA-256 of the file's
bytes, so a photo changed on disk has another key and is never restored onto.

`PhotoJournal` methods do file work: call them off the GUI thread, one at a time.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.document.document import CompositeEdit, Document
from engine.document.history_store import INDEX_NAME, HistoryStore
from engine.document.records import (
    DamagedRecord,
    decode_mask,
    decode_step,
    encode_mask,
    encode_step,
)

log = logging.getLogger(__name__)

FORMAT = "moebius-studio-history"
VERSION = 1


@dataclass(frozen=True)
class StepRef:
    """One command of the undo stack, as the app hands it over."""

    text: str
    edit: CompositeEdit
    key: object  # the patch object that identifies the command across stack rebuilds


@dataclass(frozen=True)
class HistorySnapshot:
    """The undo stack at one moment (taken on the GUI thread; holds only immutable patches)."""

    steps: tuple[StepRef, ...]
    index: int
    clean: int = 0  # the stack's clean index; -1: the saved state is not in the stack
    trimmed: int = 0  # commands the stack has dropped from its start so far


@dataclass
class SavedHistory:
    """A journal read back: what a restore applies (see the module docstring)."""

    texts: list[str]
    steps: list[CompositeEdit]
    undoable_from: int
    file_at: int
    detour: list[CompositeEdit]
    index: int
    mask_at_file: np.ndarray | None = None
    damaged: str = ""  # what was left out, when something was damaged

    def rebuild(self, document: Document) -> None:
        """Bring `document`, freshly opened from the file, to the state after every step:
        the saved mask, the detour reverted, steps[file_at:] applied. The undo stack then
        takes steps[undoable_from:] as done and moves to `index`."""
        if self.mask_at_file is not None:
            document.mask.set_array(self.mask_at_file)
        for edit in reversed(self.detour):
            document.revert(edit)
        for edit in self.steps[self.file_at :]:
            document.apply(edit)


@dataclass
class PhotoInfo:
    name: str
    shape: tuple[int, ...]  # the photo's working pixels: [H, W, C]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class _State:
    steps: list[str] = field(default_factory=list)
    undoable_from: int = 0
    file_at: int = 0
    detour: list[str] = field(default_factory=list)
    index: int = 0
    mask: str | None = None  # record of the mask at file_at (None: empty mask)
    next_id: int = 1


class PhotoJournal:
    """The journal of one photo. Open it with `PhotoJournal.open`; then `sync` snapshots
    of the undo stack, and `rekey` when the photo is saved to a file."""

    def __init__(self, store: HistoryStore, key: str, info: PhotoInfo):
        self.store, self.key, self.info = store, key, info
        self._state = _State()
        self._ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._trimmed = 0  # the stack's `trimmed` at the last sync
        self._broken = False  # steps were dropped before they were written: stop here

    @property
    def folder(self) -> Path:
        return self.store.folder(self.key)

    # -- reading --------------------------------------------------------------------------

    @classmethod
    def open(cls, store: HistoryStore, key: str,
             info: PhotoInfo) -> tuple[PhotoJournal, SavedHistory | None]:
        """The photo's journal, and what it holds when there is something to restore."""
        journal = cls(store, key, info)
        if not store.has(key):
            return journal, None
        try:
            saved = journal._read()
        except (OSError, ValueError, KeyError, TypeError, DamagedRecord) as exc:
            log.warning("the edit history of %s could not be read and is forgotten: %s",
                        info.name, exc)
            store.forget(key)
            journal._state = _State()
            return journal, None
        return journal, saved

    def _read(self) -> SavedHistory | None:
        index = json.loads((self.folder / INDEX_NAME).read_text(encoding="utf-8"))
        if index.get("format") != FORMAT or index.get("version") != VERSION:
            raise ValueError(f"format {index.get('format')!r} version {index.get('version')!r}")
        photo = index["photo"]
        if tuple(photo["shape"]) != tuple(self.info.shape) or photo["dtype"] != self.info.dtype:
            raise ValueError(f"it was made for a {photo['shape']} {photo['dtype']} photo")
        s = _State([str(i) for i in index["steps"]], int(index["undoable_from"]),
                   int(index["file_at"]), [str(i) for i in index["detour"]], int(index["index"]),
                   index.get("mask"), int(index["next_id"]))
        if not (0 <= s.undoable_from <= len(s.steps) and 0 <= s.file_at <= len(s.steps)
                and 0 <= s.index <= len(s.steps) - s.undoable_from):
            raise ValueError("its positions do not fit its steps")
        shape = tuple(self.info.shape)
        mask = decode_mask(self._record(s.mask), (shape[0], shape[1])) if s.mask else None
        detour = [decode_step(self._record(f"{i}.step"), shape)[1] for i in s.detour]
        texts, edits, bad = [], [], []
        for position, step_id in enumerate(s.steps):
            try:
                text, edit = decode_step(self._record(f"{step_id}.step"), shape)
            except (OSError, DamagedRecord) as exc:
                bad.append((position, str(exc)))
                text, edit = "", None
            texts.append(text)
            edits.append(edit)
        damaged = ""
        if bad:
            total = len(s.steps)
            s, first, end = _without_damage(s, [p for p, _ in bad])
            texts, edits = texts[first:end], edits[first:end]
            damaged = (f"{len(bad)} of {total} steps are damaged ({bad[0][1]}); "
                       f"{len(s.steps)} restored")
            log.warning("the edit history of %s is restored in part: %s", self.info.name,
                        damaged)
        self._state = s
        for step_id, edit in zip(s.steps[s.undoable_from :], edits[s.undoable_from :],
                                 strict=True):
            self._ids[edit] = step_id
        if bad:
            self._write_index()
            self._collect_garbage()
        if not s.steps and not s.detour and s.mask is None:
            return None
        return SavedHistory(texts, [e for e in edits if e is not None], s.undoable_from,
                            s.file_at, detour, s.index, mask, damaged)

    def _record(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    # -- writing --------------------------------------------------------------------------

    def sync(self, snapshot: HistorySnapshot, index: int | None = None) -> None:
        """Write what changed since the last sync: new steps, then the index; unreferenced
        records are deleted. `index` overrides the snapshot's (closing without saving
        keeps the edits to redo but reopens the photo as it is on disk)."""
        if self._broken:
            return
        s = self._state
        start = s.undoable_from + snapshot.trimmed - self._trimmed
        if start > len(s.steps):
            # The stack dropped steps that were never written: the chain from the file to
            # now has a hole. Nothing restorable can be written until the next save.
            log.warning("the edit history of %s can no longer be kept: older steps were "
                        "dropped before they were saved", self.info.name)
            self._broken = True
            self.store.forget(self.key)
            return
        if not snapshot.steps and not s.steps and not s.detour and s.mask is None:
            return  # nothing edited: no folder for every photo merely looked at
        ids = [self._write_step(step) for step in snapshot.steps]
        chain = s.steps[:start] + ids
        common = 0
        for old, new in zip(s.steps, chain, strict=False):
            if old != new:
                break
            common += 1
        file_at, detour = s.file_at, s.detour
        if file_at > common:  # the saved state lies on a branch undo has since abandoned
            detour = s.steps[common:file_at] + detour
            file_at = common
        drop = min(file_at, start)
        self._state = _State(chain[drop:], start - drop, file_at - drop, detour,
                             snapshot.index if index is None else index, s.mask, s.next_id)
        self._trimmed = snapshot.trimmed
        self._write_index()
        self._collect_garbage()

    def rekey(self, key: str, snapshot: HistorySnapshot, mask: np.ndarray | None) -> None:
        """The photo was saved to a file with SHA-256 `key`, at the snapshot's clean index,
        with `mask` painted (None: an empty mask): from now on the journal belongs to that
        file and the saved state is where a restore starts."""
        if key != self.key:
            target = self.store.folder(key)
            shutil.rmtree(target, ignore_errors=True)
            if self.folder.is_dir():
                self.folder.rename(target)
            self.key = key
        self._broken = False
        ids = [self._write_step(step) for step in snapshot.steps]
        s = self._state
        mask_name = None
        if mask is not None and mask.any():
            mask_name = f"{s.next_id:06d}.mask"
            s.next_id += 1
            self._write_file(mask_name, encode_mask(mask))
        self._state = _State(ids, 0, max(snapshot.clean, 0), [], snapshot.index, mask_name,
                             s.next_id)
        self._trimmed = snapshot.trimmed
        self._write_index()
        self._collect_garbage()

    def _write_step(self, step: StepRef) -> str:
        known = self._ids.get(step.key)
        if known is not None:
            return known
        s = self._state
        step_id = f"{s.next_id:06d}"
        s.next_id += 1
        self._write_file(f"{step_id}.step", encode_step(step.text, step.edit))
        self._ids[step.key] = step_id
        return step_id

    def _write_index(self) -> None:
        s = self._state
        data = {"format": FORMAT, "version": VERSION, "photo": self.info.to_json(),
                "steps": s.steps, "undoable_from": s.undoable_from, "file_at": s.file_at,
                "detour": s.detour, "index": s.index, "mask": s.mask, "next_id": s.next_id,
                "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._write_file(INDEX_NAME, json.dumps(data, indent=1).encode())

    def _write_file(self, name: str, data: bytes) -> None:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _collect_garbage(self) -> None:
        s = self._state
        wanted = {f"{i}.step" for i in s.steps + s.detour} | {INDEX_NAME}
        if s.mask:
            wanted.add(s.mask)
        for f in self.folder.iterdir():
            if f.name not in wanted:
                f.unlink(missing_ok=True)

    def restart(self) -> None:
        """Delete what is on disk and start again from the file as it is (the history found
        there was not restored, so the file is where the photo's new edits start)."""
        self.store.forget(self.key)
        self._state = _State(next_id=self._state.next_id)
        self._ids = weakref.WeakKeyDictionary()
        self._trimmed = 0
        self._broken = False

    def forget(self) -> None:
        """Delete this photo's journal. Without it the chain from the file to the photo as
        it is now is gone, so nothing more is written until the photo is saved (`rekey`)."""
        self.store.forget(self.key)
        self._state = _State(next_id=self._state.next_id)
        self._ids = weakref.WeakKeyDictionary()
        self._broken = True


def _without_damage(s: _State, bad: list[int]) -> tuple[_State, int, int]:
    """The state without its damaged steps and what cannot be had without them, and the
    range [first, end) of the old steps it keeps.

    A damaged step after the saved state ends the history there (the photo can be rebuilt
    up to it). One before it (only undo needs those) ends the undo there."""
    after = [p for p in bad if p >= s.file_at]
    before = [p for p in bad if p < s.file_at]
    end = min(after) if after else len(s.steps)
    first = max(before) + 1 if before else 0
    steps = s.steps[first:end]
    u = min(max(s.undoable_from - first, 0), len(steps))
    current = min(max(s.undoable_from + s.index - first, u), len(steps))
    index = current - u
    return (_State(steps, u, s.file_at - first, s.detour, index, s.mask, s.next_id),
            first, end)
