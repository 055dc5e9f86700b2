"""Edit histories on disk (engine/document/journal.py, records.py), without Qt.

`Stack` below behaves like the app's QUndoStack for what the journal sees: commands in
order, an index, a clean index, pushes that drop the redo tail and a size limit that
drops the oldest commands. Every test checks pixels and masks: what a restore rebuilds
from the file must equal the live document, at the same place in the history."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from engine.document.document import CompositeEdit, Document
from engine.document.history_store import INDEX_NAME, HistoryStore, file_digest
from engine.document.journal import HistorySnapshot, PhotoInfo, PhotoJournal, StepRef
from engine.document.records import DamagedRecord, decode_step, encode_step


class Stack:
    def __init__(self, doc: Document):
        self.doc, self.cmds, self.index, self.clean, self.trimmed = doc, [], 0, 0, 0

    def push(self, text: str, edit: CompositeEdit | None, key=None) -> None:
        assert edit is not None
        if self.clean > self.index:
            self.clean = -1
        self.cmds = self.cmds[: self.index] + [StepRef(text, edit, key or edit)]
        self.index += 1

    def paint(self, x0, y0, x1, y1, erase=False):
        patch = self.doc.mask.fill_rect(x0, y0, x1, y1, erase)
        self.push("Rectangle", CompositeEdit(mask=patch), key=patch)

    def remove(self, x0, y0, x1, y1, value):
        block = np.full((y1 - y0, x1 - x0, 3), value, np.uint8)
        self.push("Remove object", self.doc.replace_region((x0, y0, x1, y1), block))

    def undo(self):
        self.index -= 1
        self.doc.revert(self.cmds[self.index].edit)

    def redo(self):
        self.doc.apply(self.cmds[self.index].edit)
        self.index += 1

    def trim(self, n: int):
        self.cmds, self.index, self.trimmed = self.cmds[n:], self.index - n, self.trimmed + n
        self.clean = self.clean - n if self.clean >= n else -1

    def snapshot(self) -> HistorySnapshot:
        return HistorySnapshot(tuple(self.cmds), self.index, self.clean, self.trimmed)


def _photo(seed=0, shape=(60, 80, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _info(pixels):
    return PhotoInfo("photo.png", pixels.shape, pixels.dtype.name)


def _restore(store, key, file_pixels):
    """A fresh document from `file_pixels`, rebuilt from the journal and moved to its index
    (what the app does with QUndoStack): (document, saved, undoable count)."""
    journal, saved = PhotoJournal.open(store, key, _info(file_pixels))
    doc = Document(np.array(file_pixels))
    if saved is None:
        return doc, None, journal
    saved.rebuild(doc)
    commands = saved.steps[saved.undoable_from :]
    for edit in reversed(commands[saved.index :]):  # move to the saved index
        doc.revert(edit)
    return doc, saved, journal


def _same(doc_a: Document, doc_b: Document) -> bool:
    return (np.array_equal(doc_a.pixels, doc_b.pixels)
            and np.array_equal(doc_a.mask.array, doc_b.mask.array))


@pytest.fixture
def store(tmp_path):
    return HistoryStore(tmp_path / "history")


def test_records_round_trip_and_refuse_damage():
    doc = Document(_photo())
    mask = doc.mask.fill_rect(3, 4, 20, 30)
    edit = doc.replace_region((10, 10, 30, 25), np.zeros((15, 20, 3), np.uint8), clear_mask=False)
    both = CompositeEdit(edit.image, mask)
    data = encode_step("Remove object", both)
    text, back = decode_step(data, doc.pixels.shape)
    assert text == "Remove object"
    assert np.array_equal(back.image.old, both.image.old)
    assert np.array_equal(back.image.new, both.image.new)
    assert back.mask.old_bits == mask.old_bits and back.mask.bbox == mask.bbox
    raw_bytes = both.image.old.nbytes * 2 + len(mask.old_bits) * 2
    assert len(data) < raw_bytes + 1024  # patches, never the photo
    for bad in (data[:-1], data[:40], data[:100] + b"x" + data[101:], b""):
        with pytest.raises(DamagedRecord):
            decode_step(bad, doc.pixels.shape)
    with pytest.raises(DamagedRecord):  # a box outside another, smaller photo
        decode_step(data, (12, 12, 3))


def test_a_history_comes_back_at_the_same_step_with_redo(store):
    file_pixels = _photo()
    live = Document(np.array(file_pixels))
    stack = Stack(live)
    journal, saved = PhotoJournal.open(store, "k1", _info(file_pixels))
    assert saved is None
    stack.paint(5, 5, 30, 20)
    stack.remove(5, 5, 30, 20, 7)
    stack.paint(40, 30, 70, 55)
    stack.remove(50, 40, 60, 50, 200)
    journal.sync(stack.snapshot())
    stack.undo()
    journal.sync(stack.snapshot())
    doc, saved, _ = _restore(store, "k1", file_pixels)
    assert _same(doc, live)
    assert saved.index == 3 and len(saved.steps) == 4 and saved.file_at == 0
    assert saved.texts == ["Rectangle", "Remove object", "Rectangle", "Remove object"]
    doc.apply(saved.steps[3])  # redo brings back the undone removal
    stack.redo()
    assert _same(doc, live)


def test_a_new_edit_after_undo_drops_the_old_tail_from_disk(store):
    file_pixels = _photo(1)
    live = Document(np.array(file_pixels))
    stack = Stack(live)
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    for i in range(4):
        stack.paint(i * 10, 0, i * 10 + 8, 8)
    journal.sync(stack.snapshot())
    assert len(list(store.folder("k").glob("*.step"))) == 4
    stack.undo()
    stack.undo()
    stack.remove(0, 20, 10, 30, 9)
    journal.sync(stack.snapshot())
    assert len(list(store.folder("k").glob("*.step"))) == 3
    doc, saved, _ = _restore(store, "k", file_pixels)
    assert _same(doc, live) and len(saved.steps) == 3


def test_steps_dropped_by_the_memory_limit_are_still_replayed(store):
    file_pixels = _photo(2)
    live = Document(np.array(file_pixels))
    stack = Stack(live)
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    stack.remove(0, 0, 10, 10, 1)
    stack.remove(10, 0, 20, 10, 2)
    journal.sync(stack.snapshot())
    stack.remove(20, 0, 30, 10, 3)
    stack.trim(2)  # the stack forgot the first two removals; the file still lacks them
    journal.sync(stack.snapshot())
    doc, saved, _ = _restore(store, "k", file_pixels)
    assert _same(doc, live)
    assert saved.undoable_from == 2 and len(saved.steps[saved.undoable_from :]) == 1


def test_steps_dropped_before_they_were_written_end_the_journal(store, caplog):
    file_pixels = _photo(3)
    stack = Stack(Document(np.array(file_pixels)))
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    stack.paint(0, 0, 5, 5)
    journal.sync(stack.snapshot())
    stack.paint(5, 5, 9, 9)
    stack.paint(10, 10, 20, 20)
    stack.trim(2)  # the second stroke was never written
    with caplog.at_level(logging.WARNING):
        journal.sync(stack.snapshot())
    assert not store.has("k")
    assert sum("can no longer be kept" in r.message for r in caplog.records) == 1
    journal.sync(stack.snapshot())  # stays quiet and writes nothing
    assert not store.has("k")


def test_after_a_save_the_history_follows_the_saved_file(store, tmp_path):
    original = _photo(4)
    live = Document(np.array(original))
    stack = Stack(live)
    journal, _ = PhotoJournal.open(store, "old", _info(original))
    stack.remove(0, 0, 20, 20, 50)
    stack.paint(30, 30, 40, 40)  # painted, not removed: the mask is part of the saved state
    journal.sync(stack.snapshot())
    saved_pixels = np.array(live.pixels)  # a lossless save writes exactly these
    stack.clean = stack.index
    journal.rekey("new", stack.snapshot(), np.array(live.mask.array))
    assert not store.has("old") and store.has("new")
    stack.remove(30, 30, 40, 40, 99)
    stack.undo()
    stack.undo()
    stack.undo()  # back past the save point: undo works across it
    stack.paint(60, 40, 70, 50)  # a new branch: the saved state is no longer in the stack
    journal.sync(stack.snapshot())
    doc, saved, _ = _restore(store, "new", saved_pixels)
    assert saved.detour and saved.mask_at_file is not None
    assert _same(doc, live)


def test_closing_without_saving_reopens_as_the_file_with_edits_to_redo(store):
    file_pixels = _photo(5)
    live = Document(np.array(file_pixels))
    stack = Stack(live)
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    stack.remove(0, 0, 20, 20, 50)
    journal.sync(stack.snapshot(), index=stack.clean)  # "Discard" on close
    doc, saved, _ = _restore(store, "k", file_pixels)
    assert np.array_equal(doc.pixels, file_pixels) and saved.index == 0
    doc.apply(saved.steps[0])
    assert _same(doc, live)


def test_a_truncated_step_restores_what_came_before_with_one_log_line(store, caplog):
    file_pixels = _photo(6)
    live = Document(np.array(file_pixels))
    stack = Stack(live)
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    for i in range(3):
        stack.remove(i * 10, 0, i * 10 + 10, 10, 10 * i + 5)
    journal.sync(stack.snapshot())
    index = json.loads((store.folder("k") / INDEX_NAME).read_text())
    last = store.folder("k") / f"{index['steps'][2]}.step"
    last.write_bytes(last.read_bytes()[:-20])  # a crash cut the last record short
    stack.undo()
    with caplog.at_level(logging.WARNING):
        doc, saved, _ = _restore(store, "k", file_pixels)
    assert _same(doc, live) and len(saved.steps) == 2 and saved.damaged
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_an_unreadable_index_is_forgotten_with_one_log_line(store, caplog):
    file_pixels = _photo(7)
    stack = Stack(Document(np.array(file_pixels)))
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    stack.paint(0, 0, 9, 9)
    journal.sync(stack.snapshot())
    (store.folder("k") / INDEX_NAME).write_text('{"format": "moebius-studio-hist')
    with caplog.at_level(logging.WARNING):
        doc, saved, _ = _restore(store, "k", file_pixels)
    assert saved is None and not store.has("k")
    assert np.array_equal(doc.pixels, file_pixels)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_a_history_for_another_picture_size_is_never_applied(store):
    file_pixels = _photo(8)
    stack = Stack(Document(np.array(file_pixels)))
    journal, _ = PhotoJournal.open(store, "k", _info(file_pixels))
    stack.remove(0, 0, 9, 9, 1)
    journal.sync(stack.snapshot())
    _, saved = PhotoJournal.open(store, "k", _info(_photo(8, (60, 81, 3))))
    assert saved is None


def test_disk_use_is_bounded_oldest_photos_first(tmp_path):
    store = HistoryStore(tmp_path / "history")
    for n, key in enumerate(["a", "b", "c"]):
        pixels = _photo(n, (200, 200, 3))
        stack = Stack(Document(np.array(pixels)))
        journal, _ = PhotoJournal.open(store, key, _info(pixels))
        stack.remove(0, 0, 200, 200, 0)  # noise -> zeros: poorly compressible old block
        journal.sync(stack.snapshot())
    each = store.usage() // 3
    assert each > 100_000
    import os
    import time

    for age, key in enumerate(["a", "b", "c"]):  # a is the oldest
        t = time.time() - 100 + age
        for f in store.folder(key).iterdir():
            os.utime(f, (t, t))
    store.limit = int(each * 2.5)
    assert store.enforce_limit(keep={"a"}) == ["b"]  # the oldest that is not open
    assert store.has("a") and not store.has("b") and store.has("c")
    store.limit = int(each * 1.5)
    assert store.enforce_limit() == ["a"]
    assert store.usage() <= store.limit
    store.clear()
    assert store.usage() == 0


def test_file_digest_is_the_files_sha256(tmp_path):
    import hashlib

    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 5_000_000)
    assert file_digest(path) == hashlib.sha256(b"x" * 5_000_000).hexdigest()
