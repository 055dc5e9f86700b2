"""JPEG files at the byte level, for the block-preserving save (`engine.imageio.jpeg_blocks`).

A JPEG is a list of marker segments (APPn metadata, comments, quantization and Huffman
tables, the frame header) followed by entropy-coded scans. This module reads the segments
before the first scan, says what the frame header declares, and puts a file together from
the source's metadata segments and a new file's tables and scans. It never decodes pixels.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

SOI, EOI, SOS, DHT, DQT, COM = 0xD8, 0xD9, 0xDA, 0xC4, 0xDB, 0xFE
APP1, APP2 = 0xE1, 0xE2
APP14 = 0xEE  # Adobe: says whether three components are YCbCr or RGB
_SOF = frozenset(range(0xC0, 0xD0)) - {DHT, 0xC8, 0xCC}  # 0xC8: reserved; 0xCC: DAC
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM and RSTn carry no length

# TIFF tags of EXIF's IFD1, which describes the embedded thumbnail.
_THUMB_OFFSET, _THUMB_LENGTH, _COMPRESSION = 0x0201, 0x0202, 0x0103


@dataclass(frozen=True)
class Segment:
    marker: int
    raw: bytes  # the whole segment: 0xFF, the marker, the length and the payload

    @property
    def payload(self) -> bytes:
        return self.raw[4:]

    @property
    def is_metadata(self) -> bool:
        """APPn and comments: what the file says about the picture, not how it is coded."""
        return 0xE0 <= self.marker <= 0xEF or self.marker == COM

    @property
    def is_mpf(self) -> bool:
        """The Multi-Picture Format index of a camera's large previews after EOI."""
        return self.marker == APP2 and self.payload.startswith(b"MPF\0")

    @property
    def is_exif(self) -> bool:
        return self.marker == APP1 and self.payload.startswith(b"Exif\0\0")


@dataclass(frozen=True)
class Component:
    id: int
    h: int  # horizontal sampling factor
    v: int  # vertical sampling factor
    table: int  # quantization table number


@dataclass(frozen=True)
class Frame:
    """What a JPEG's start-of-frame segment declares."""

    marker: int
    precision: int  # bits per sample: 8, or 12 (and 2..16 for lossless)
    width: int
    height: int
    components: tuple[Component, ...]

    @property
    def progressive(self) -> bool:
        return self.marker in (0xC2, 0xC6, 0xCA, 0xCE)

    @property
    def arithmetic(self) -> bool:
        return self.marker >= 0xC9

    @property
    def lossless(self) -> bool:
        return self.marker in (0xC3, 0xC7, 0xCB, 0xCF)

    @property
    def hierarchical(self) -> bool:
        return self.marker in (0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF)

    @property
    def mcu_size(self) -> tuple[int, int]:
        """(width, height) in pixels of a minimal coded unit of an interleaved scan."""
        return 8 * max(c.h for c in self.components), 8 * max(c.v for c in self.components)


@dataclass(frozen=True)
class Header:
    segments: tuple[Segment, ...]  # everything between SOI and the first SOS
    frame: Frame
    trailing: int  # bytes after EOI (a camera's previews, or junk)

    def find(self, marker: int) -> list[Segment]:
        return [s for s in self.segments if s.marker == marker]

    @property
    def adobe_transform(self) -> int | None:
        """The Adobe segment's colour transform: 0 = stored as is (RGB or CMYK), 1 = YCbCr,
        2 = YCCK; None without an Adobe segment."""
        for s in self.find(APP14):
            if s.payload.startswith(b"Adobe") and len(s.payload) >= 12:
                return s.payload[11]
        return None

    def huffman_tables(self) -> list[bytes]:
        """Each Huffman table defined before the first scan: class/id byte + counts + symbols."""
        tables = []
        for s in self.find(DHT):
            body = s.payload
            while len(body) >= 17:
                size = 17 + sum(body[1:17])
                tables.append(bytes([body[0] >> 4]) + body[1:size])  # class, not slot
                body = body[size:]
        return tables


def segments(data: bytes) -> tuple[list[Segment], int]:
    """The segments from SOI up to (not including) the first SOS, and where that SOS starts.

    ValueError if the bytes are not a JPEG or a segment runs past the end.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    out: list[Segment] = []
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= len(data):
            break
        marker = data[pos + 1]
        if marker == SOS:
            return out, pos
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ValueError(f"the segment at byte {pos} runs past the end of the file")
        out.append(Segment(marker, bytes(data[pos:end])))
        pos = end
    raise ValueError("the file has no image data (no start of scan)")


def read_header(data: bytes) -> Header:
    """The segments and frame of a JPEG file (ValueError if it is malformed)."""
    found, _ = segments(data)
    frames = [s for s in found if s.marker in _SOF]
    if not frames:
        raise ValueError("the file has no frame header")
    body = frames[0].payload
    precision, height, width, count = struct.unpack(">BHHB", body[:6])
    if len(body) < 6 + 3 * count or count == 0:
        raise ValueError("the frame header is cut short")
    comps = []
    for i in range(count):
        cid, hv, table = body[6 + 3 * i : 9 + 3 * i]
        comps.append(Component(cid, hv >> 4, hv & 15, table))
    if any(not 1 <= c.h <= 4 or not 1 <= c.v <= 4 for c in comps):
        raise ValueError("the frame header has invalid sampling factors")
    end = data.rfind(b"\xff\xd9")
    trailing = len(data) - (end + 2) if end >= 0 else 0
    frame = Frame(frames[0].marker, precision, width, height, tuple(comps))
    return Header(tuple(found), frame, trailing)


@lru_cache(maxsize=1)
def standard_huffman_tables() -> frozenset[bytes]:
    """The four Huffman tables of the JPEG standard's Annex K, as libjpeg writes them when
    it is not asked to optimise: taken from a tiny file libjpeg encodes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=90, optimize=False)
    return frozenset(read_header(buf.getvalue()).huffman_tables())


def assemble(source: Header, metadata: list[Segment], coded: bytes) -> bytes:
    """SOI, the given metadata segments, then everything of `coded` (a complete JPEG)
    except its own metadata segments: its tables, frame header, scans and EOI.

    Coders number components and group quantization tables their own way: the frame
    header and every scan header get the source's component ids back, and when the
    quantization tables are the source's (they always are) the source's own segments are
    used, so the header stays as it was without any pixel changing.
    """
    found, scan = segments(coded)
    frame = read_header(coded).frame
    ids = (c.id for c in source.frame.components)
    rename = {c.id: new for c, new in zip(frame.components, ids, strict=True)}
    own_tables = quant_tables(source.segments) == quant_tables(found)
    body: list[bytes] = []
    for seg in found:
        if seg.is_metadata or (own_tables and seg.marker == DQT):
            continue
        if own_tables and seg.marker in _SOF:
            body.extend(s.raw for s in source.segments if s.marker == DQT)
        body.append(_renamed(seg, rename))
    return b"".join([b"\xff\xd8", *(s.raw for s in metadata), *body,
                     _renamed_scans(coded[scan:], rename)])


def quant_tables(found: tuple[Segment, ...] | list[Segment]) -> dict[int, tuple[int, ...]]:
    """Quantization tables by slot, as defined before the first scan (later ones win)."""
    tables = {}
    for seg in found:
        if seg.marker != DQT:
            continue
        body = seg.payload
        while body:
            wide = body[0] >> 4  # 0: 8-bit entries, 1: 16-bit entries
            size = 1 + 64 * (1 + wide)
            entries = body[1:size]
            if wide:
                values = struct.unpack(">64H", entries)
            else:
                values = tuple(entries)
            tables[body[0] & 15] = values
            body = body[size:]
    return tables


def _renamed(segment: Segment, rename: dict[int, int]) -> bytes:
    raw = bytearray(segment.raw)
    if segment.marker in _SOF:  # P, Y, X, Nf, then (id, factors, table) per component
        for at in range(10, 10 + 3 * raw[9], 3):
            raw[at] = rename[raw[at]]
    return bytes(raw)


def _renamed_scans(data: bytes, rename: dict[int, int]) -> bytes:
    """Scan headers with their component selectors renamed. Entropy-coded bytes never
    hold FF DA (a coded FF is always followed by 00 or a restart marker), so every FF DA
    found is a real scan header."""
    if all(k == v for k, v in rename.items()):
        return data
    out = bytearray(data)
    at = out.find(b"\xff\xda")
    while at >= 0:
        for sel in range(at + 5, at + 5 + 2 * out[at + 4], 2):  # FF DA, Ls (2), Ns, then pairs
            out[sel] = rename[out[sel]]
        at = out.find(b"\xff\xda", at + 2)
    return bytes(out)


# --- The EXIF thumbnail ----------------------------------------------------------------


@dataclass(frozen=True)
class ExifThumbnail:
    """Where an EXIF segment keeps its JPEG thumbnail: offsets into the segment's bytes."""

    start: int  # first byte of the thumbnail within Segment.raw
    length: int  # bytes reserved for it
    length_field: int  # where the 4-byte length value sits within Segment.raw
    big_endian: bool


def exif_thumbnail(segment: Segment) -> ExifThumbnail | None:
    """The JPEG thumbnail of an EXIF APP1 segment, None if it has none.

    ValueError if there is a thumbnail we cannot rewrite (uncompressed, or pointers that
    lead outside the segment).
    """
    tiff = 10  # Segment.raw: FF E1, length (2), "Exif\0\0" (6), then the TIFF structure
    raw = segment.raw
    order = raw[tiff : tiff + 2]
    if order not in (b"II", b"MM"):
        raise ValueError("the EXIF data has no valid byte order")
    e = ">" if order == b"MM" else "<"

    def u16(at: int) -> int:
        return struct.unpack(e + "H", raw[at : at + 2])[0]

    def u32(at: int) -> int:
        return struct.unpack(e + "I", raw[at : at + 4])[0]

    ifd0 = tiff + u32(tiff + 4)
    if ifd0 + 2 > len(raw):
        raise ValueError("the EXIF directory lies outside the segment")
    next_at = ifd0 + 2 + 12 * u16(ifd0)
    if next_at + 4 > len(raw):
        raise ValueError("the EXIF directory lies outside the segment")
    if u32(next_at) == 0:
        return None  # no IFD1: no thumbnail
    ifd1 = tiff + u32(next_at)
    if ifd1 + 2 > len(raw):
        raise ValueError("the EXIF thumbnail directory lies outside the segment")
    entries = {}
    for at in range(ifd1 + 2, ifd1 + 2 + 12 * u16(ifd1), 12):
        if at + 12 > len(raw):
            raise ValueError("the EXIF thumbnail directory is cut short")
        entries[u16(at)] = at
    if _THUMB_OFFSET not in entries or _THUMB_LENGTH not in entries:
        if entries.get(_COMPRESSION) is not None and u16(entries[_COMPRESSION] + 8) == 1:
            raise ValueError("the EXIF thumbnail is uncompressed")
        return None
    start = tiff + u32(entries[_THUMB_OFFSET] + 8)
    length = u32(entries[_THUMB_LENGTH] + 8)
    if start + length > len(raw) or length < 4:
        raise ValueError("the EXIF thumbnail lies outside the segment")
    return ExifThumbnail(start, length, entries[_THUMB_LENGTH] + 8, e == ">")


def replace_exif_thumbnail(segment: Segment, where: ExifThumbnail, jpeg: bytes) -> Segment:
    """The segment with the thumbnail's bytes replaced in place (at most `where.length`
    bytes; the rest of its room is zeroed) and its length field updated. Every other byte
    of the segment, maker notes included, stays where it was."""
    if len(jpeg) > where.length:
        raise ValueError("the new thumbnail does not fit in the old one's place")
    raw = bytearray(segment.raw)
    raw[where.start : where.start + where.length] = jpeg.ljust(where.length, b"\0")
    struct.pack_into(">I" if where.big_endian else "<I", raw, where.length_field, len(jpeg))
    return Segment(segment.marker, bytes(raw))
