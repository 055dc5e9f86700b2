"""`MaskPatch`: what one mask edit changed, kept as compressed bits.

The undo history holds many patches, so each one keeps only the changed box, with its old
and new pixels as zlib-compressed packed bits (a stroke across a 24 MP photo: tens of
kilobytes).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from engine.document.box import Box

# Rows handled at a time when comparing or encoding big blocks, so no temporary is as
# large as the block (allocating fresh memory is what makes big copies slow).
BAND = 256


def encode_bits(block: np.ndarray) -> bytes:
    """A bool block as zlib-compressed packed bits (rows padded to whole bytes).

    Masks are long runs of equal values, so a brush stroke across a 24 MP photo, whose
    box holds 2 x 9 MB of bools, encodes to tens of kilobytes in a few milliseconds."""
    z = zlib.compressobj(3)
    parts = [z.compress(np.packbits(block[y : y + BAND], axis=1).tobytes())
             for y in range(0, block.shape[0], BAND)]
    return b"".join(parts) + z.flush()


def decode_bits_into(data: bytes, out: np.ndarray) -> None:
    """Write the bool block encoded by encode_bits into `out` (a view of its shape)."""
    h, w = out.shape
    row_bytes = (w + 7) // 8
    z = zlib.decompressobj()
    pending = data
    for y in range(0, h, BAND):
        rows = min(BAND, h - y)
        chunk = z.decompress(pending, rows * row_bytes)
        pending = z.unconsumed_tail
        packed = np.frombuffer(chunk, dtype=np.uint8).reshape(rows, row_bytes)
        out[y : y + rows] = np.unpackbits(packed, axis=1, count=w).view(bool)


@dataclass(frozen=True, eq=False)
class MaskPatch:
    """What one edit changed: the box `bbox` and its old and new pixels.

    The pixels are kept encoded (encode_bits) because the undo history holds many
    patches; `old` and `new` decode them. Build one with MaskPatch.from_blocks."""

    bbox: Box
    old_bits: bytes
    new_bits: bytes

    @classmethod
    def from_blocks(cls, bbox: Box, old: np.ndarray, new: np.ndarray) -> MaskPatch:
        shape = (bbox[3] - bbox[1], bbox[2] - bbox[0])
        if old.shape != shape or new.shape != shape:
            raise ValueError(f"patch blocks {old.shape}/{new.shape} != box {shape}")
        return cls(bbox, encode_bits(old), encode_bits(new))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.bbox[3] - self.bbox[1], self.bbox[2] - self.bbox[0])

    @property
    def old(self) -> np.ndarray:
        return self._decode(self.old_bits)

    @property
    def new(self) -> np.ndarray:
        return self._decode(self.new_bits)

    def _decode(self, data: bytes) -> np.ndarray:
        out = np.empty(self.shape, dtype=bool)
        decode_bits_into(data, out)
        return out

    @property
    def nbytes(self) -> int:
        return len(self.old_bits) + len(self.new_bits)

