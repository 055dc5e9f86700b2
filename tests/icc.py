"""A real Display P3 ICC profile (the colour space of iPhone photos), built here so that
tests carry no binary from elsewhere: an ICC v2 matrix/TRC display profile with Apple's
published P3 primaries (D50-adapted) and white point, and a gamma-2.2 tone curve."""

from __future__ import annotations

import struct

P3_DESCRIPTION = "Display P3 (test)"
_WHITE_D50 = (0.9642, 1.0, 0.8249)
_P3_COLORANTS = {"rXYZ": (0.5151, 0.2412, -0.0011), "gXYZ": (0.2920, 0.6922, 0.0419),
                 "bXYZ": (0.1571, 0.0666, 0.7841)}


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(values) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    body = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_
    body += b"\0" * 8 + b"\0" * 3 + b"\0" * 67  # no Unicode, no ScriptCode
    return body


def display_p3() -> bytes:
    curve = b"curv\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">H", round(2.2 * 256))
    tags = [("desc", _desc(P3_DESCRIPTION)), ("wtpt", _xyz(_WHITE_D50)),
            *((name, _xyz(v)) for name, v in _P3_COLORANTS.items()),
            ("rTRC", curve), ("gTRC", curve), ("bTRC", curve),
            ("cprt", b"text\0\0\0\0" + b"no copyright, test data\0")]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = struct.pack(">I", len(tags)), b""
    for name, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += name.encode() + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = 128 + table_size + len(data)
    header = struct.pack(">I", size) + b"none" + bytes([2, 0x40, 0, 0]) + b"mntrRGB XYZ "
    header += struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 4
    header += b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0)  # flags, device, attributes
    header += b"".join(_s15(v) for v in _WHITE_D50) + b"none"
    header += b"\0" * (128 - len(header))
    return header + table + data
