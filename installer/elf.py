"""Read and tidy the dynamic section of Linux shared libraries (64-bit little-endian ELF).

The build uses it for two things PyInstaller does not do:

* `needed(path)`: the libraries a binary asks the loader for (DT_NEEDED), so the recipe
  can drop what nothing in the bundle needs (the GTK stack a Qt theme plugin drags in)
  and refuse to drop what something still needs (the CUDA trim list).
* `drop_foreign_search_paths(path)`: remove RPATH/RUNPATH entries that point outside
  the bundle (the build machine's Python prefix, `/root/.pyenv/.../lib`), keeping the
  `$ORIGIN`-relative ones the libraries use to find each other inside the bundle.

Only the dynamic section is touched: an entry is removed by moving the ones after it up
one slot (the table always ends in DT_NULL entries), a mixed search path is rewritten in
place, shorter, inside its own string. Nothing else in the file moves. Small enough to
own rather than depend on patchelf, which rewrites far more of the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29
DYN = struct.Struct("<qQ")  # Elf64_Dyn: d_tag, d_val


@dataclass
class Dynamic:
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)  # DT_RPATH, then DT_RUNPATH entries
    runpath: list[str] = field(default_factory=list)


def is_elf(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def _layout(data: bytes | bytearray):
    """(dynamic section offset, entry count, file offset of .dynstr) or None."""
    if data[:4] != ELF_MAGIC or data[4] != 2 or data[5] != 1:  # ELF64, little-endian
        return None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz // DYN.size)
    if dynamic is None:
        return None
    strtab = next((val for tag, val in _entries(data, *dynamic) if tag == DT_STRTAB), None)
    if strtab is None:
        return None
    for vaddr, offset, size in loads:  # the string table's address -> its file offset
        if vaddr <= strtab < vaddr + size:
            return dynamic[0], dynamic[1], offset + strtab - vaddr
    return None


def _entries(data, offset: int, count: int):
    for i in range(count):
        tag, val = DYN.unpack_from(data, offset + i * DYN.size)
        if tag == DT_NULL:
            return
        yield tag, val


def _string(data, at: int) -> str:
    end = data.index(b"\0", at)
    return bytes(data[at:end]).decode("utf-8", "replace")


def read_dynamic(path: str | Path) -> Dynamic:
    """DT_NEEDED names and search paths of an ELF file (empty for anything else)."""
    data = Path(path).read_bytes()
    found = Dynamic()
    layout = _layout(data)
    if layout is None:
        return found
    offset, count, strtab = layout
    for tag, val in _entries(data, offset, count):
        if tag == DT_NEEDED:
            found.needed.append(_string(data, strtab + val))
        elif tag in (DT_RPATH, DT_RUNPATH):
            paths = [p for p in _string(data, strtab + val).split(":") if p]
            (found.rpath if tag == DT_RPATH else found.runpath).extend(paths)
    return found


def needed(path: str | Path) -> list[str]:
    return read_dynamic(path).needed if is_elf(path) else []


def is_bundle_relative(entry: str) -> bool:
    return entry.startswith(("$ORIGIN", "${ORIGIN}"))


def drop_foreign_search_paths(path: str | Path) -> list[str]:
    """Remove RPATH/RUNPATH entries that are not `$ORIGIN`-relative; returns them."""
    if not is_elf(path):
        return []
    data = bytearray(Path(path).read_bytes())
    layout = _layout(data)
    if layout is None:
        return []
    offset, count, strtab = layout
    removed: list[str] = []
    i = 0
    while i < count:
        tag, val = DYN.unpack_from(data, offset + i * DYN.size)
        if tag == DT_NULL:
            break
        if tag in (DT_RPATH, DT_RUNPATH):
            entries = _string(data, strtab + val).split(":")
            keep = [e for e in entries if is_bundle_relative(e)]
            removed += [e for e in entries if e and not is_bundle_relative(e)]
            if not keep:  # the whole entry goes: the ones after it move up a slot
                start, end = offset + (i + 1) * DYN.size, offset + count * DYN.size
                data[start - DYN.size:end - DYN.size] = data[start:end]
                DYN.pack_into(data, end - DYN.size, DT_NULL, 0)
                continue
            if len(keep) < len(entries):
                old = _string(data, strtab + val).encode()
                new = ":".join(keep).encode()
                data[strtab + val:strtab + val + len(old)] = new.ljust(len(old), b"\0")
        i += 1
    if removed:
        Path(path).write_bytes(bytes(data))
    return removed
