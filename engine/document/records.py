"""The on-disk form of one history step (and of a whole mask): a small, versioned record.

    MAGIC (8 bytes) | header length (u32, little-endian) | header (JSON, UTF-8)
    | blobs, one after another | CRC-32 of everything before it (u32, little-endian)

The header names the record's kind, its version and each blob with its length. A step's
blobs are the image patch's old and new pixel blocks (zlib, level 1: a removal's patch
shrinks to about half and costs a few ms per megapixel) and the mask patch's old and new
bits exactly as the undo history holds them (already bit-packed and compressed). So a
record is never a copy of the photo, only of the box a step changed.

Any damage (a truncated file, flipped bits, another version, blocks that do not fit their
box) raises `DamagedRecord`: callers restore what came before it and say so once.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from engine.document.document import CompositeEdit, ImagePatch
from engine.document.mask import MaskPatch, decode_bits_into, encode_bits

MAGIC = b"MSTUDIO\x01"
VERSION = 1
_LENGTH = struct.Struct("<I")
_DTYPES = {"uint8": np.uint8, "uint16": np.uint16}


class DamagedRecord(ValueError):
    """A record that cannot be read back exactly as it was written."""


def _pack(header: dict, blobs: Sequence[tuple[str, bytes]]) -> bytes:
    header = {**header, "version": VERSION, "blobs": [[name, len(b)] for name, b in blobs]}
    head = json.dumps(header, separators=(",", ":")).encode()
    body = b"".join([MAGIC, _LENGTH.pack(len(head)), head, *(b for _, b in blobs)])
    return body + _LENGTH.pack(zlib.crc32(body))


def _unpack(data: bytes, kind: str) -> tuple[dict, dict[str, bytes]]:
    if len(data) < len(MAGIC) + 8 or not data.startswith(MAGIC):
        raise DamagedRecord("not a history record (or cut off at its start)")
    body, (crc,) = data[:-4], _LENGTH.unpack(data[-4:])
    if zlib.crc32(body) != crc:
        raise DamagedRecord("its checksum does not match (truncated or damaged)")
    (n,) = _LENGTH.unpack_from(body, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(body[start : start + n])
    except ValueError as exc:
        raise DamagedRecord(f"its header is unreadable ({exc})") from None
    if header.get("version") != VERSION or header.get("kind") != kind:
        raise DamagedRecord(f"it is a {header.get('kind')!r} record of version "
                            f"{header.get('version')!r}, not {kind!r} version {VERSION}")
    blobs, pos = {}, start + n
    for name, length in header["blobs"]:
        blobs[name] = body[pos : pos + length]
        pos += length
    if pos != len(body):
        raise DamagedRecord("its blobs do not add up to its length")
    return header, blobs


def encode_step(text: str, edit: CompositeEdit) -> bytes:
    """One undo step: its name and its image and/or mask patch."""
    header: dict = {"kind": "step", "text": text, "image": None, "mask": None}
    blobs: list[tuple[str, bytes]] = []
    if edit.image is not None:
        p = edit.image
        channels = 1 if p.old.ndim == 2 else p.old.shape[2]
        header["image"] = {"box": list(p.bbox), "dtype": p.old.dtype.name, "channels": channels}
        blobs += [("image_old", zlib.compress(np.ascontiguousarray(p.old).tobytes(), 1)),
                  ("image_new", zlib.compress(np.ascontiguousarray(p.new).tobytes(), 1))]
    if edit.mask is not None:
        header["mask"] = {"box": list(edit.mask.bbox)}
        blobs += [("mask_old", edit.mask.old_bits), ("mask_new", edit.mask.new_bits)]
    return _pack(header, blobs)


def decode_step(data: bytes, photo_shape: tuple[int, ...]) -> tuple[str, CompositeEdit]:
    """(name, edit) of a step record for a photo of `photo_shape` ([H, W] or [H, W, C])."""
    header, blobs = _unpack(data, "step")
    height, width = photo_shape[:2]
    image = mask = None
    try:
        if header["image"] is not None:
            info = header["image"]
            box = _box(info["box"], width, height)
            dtype = _DTYPES[info["dtype"]]
            channels = int(info["channels"])
            shape = (box[3] - box[1], box[2] - box[0]) + ((channels,) if channels > 1 else ())
            if (len(photo_shape) == 3 and channels != photo_shape[2]) or \
                    (len(photo_shape) == 2 and channels != 1):
                raise DamagedRecord(f"{channels} channels do not fit the photo {photo_shape}")
            old, new = (_block(blobs[k], dtype, shape) for k in ("image_old", "image_new"))
            image = ImagePatch(box, old, new)
        if header["mask"] is not None:
            box = _box(header["mask"]["box"], width, height)
            mask = MaskPatch(box, blobs["mask_old"], blobs["mask_new"])
            for bits in (mask.old_bits, mask.new_bits):  # prove both decode to the box
                decode_bits_into(bits, np.empty(mask.shape, dtype=bool))
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        if isinstance(exc, DamagedRecord):
            raise
        raise DamagedRecord(f"its content does not fit ({exc})") from None
    edit = CompositeEdit(image, mask)
    if edit.empty:
        raise DamagedRecord("it holds no change")
    return str(header.get("text", "")), edit


def encode_mask(mask: np.ndarray) -> bytes:
    """A whole bool mask (the mask as it was when a photo was saved)."""
    h, w = mask.shape
    return _pack({"kind": "mask", "shape": [h, w]}, [("bits", encode_bits(mask))])


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    header, blobs = _unpack(data, "mask")
    if tuple(header.get("shape", ())) != tuple(shape):
        raise DamagedRecord(f"the mask is {header.get('shape')}, the photo {list(shape)}")
    out = np.empty(shape, dtype=bool)
    try:
        decode_bits_into(blobs["bits"], out)
    except (KeyError, ValueError, zlib.error) as exc:
        raise DamagedRecord(f"its bits do not decode ({exc})") from None
    return out


def _box(values, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in values)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise DamagedRecord(f"box {values} lies outside the {width}×{height} photo")
    return (x0, y0, x1, y1)


def _block(data: bytes, dtype, shape: tuple[int, ...]) -> np.ndarray:
    raw = zlib.decompress(data)
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise DamagedRecord(f"a pixel block has {len(raw)} bytes, not {expected}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
