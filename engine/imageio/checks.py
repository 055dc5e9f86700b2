"""Checks on the files a request names, made before any work, each failing with one sentence.

Reading: a path may name something that is no photo at all. A FIFO would make a read wait
forever, a device such as /dev/zero never ends, a sparse file can claim 20 GB, a symbolic
link can point back to itself. `open_regular` refuses all of them from the file's type and
size alone, before a byte is read; `probe` then reads only the first bytes to tell the
format. The header (pixel count) is checked before the body by `engine.imageio.files`.

Writing: `check_output` refuses an unsupported extension, a missing or read-only folder, a
folder or link loop in the target's place, and replacing a file without permission, so a
long removal is never followed by "cannot save".
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from engine.disk import size_text
from engine.errors import ImageFileError
from engine.imageio import meta

# Larger than any file we open: 250 megapixels of 16-bit RGBA, uncompressed, is 2 GB.
MAX_FILE_BYTES = 3_000_000_000
HEAD_BYTES = 512  # enough for every signature meta.sniff_format knows (HEIF's brand list)

SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp",
                        ".heic", ".heif", ".hif", ".avif")
EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF",
}  # fmt: skip


def resolved(path: Path) -> Path:
    """`path` made absolute with its links followed as far as they go. Never raises: a
    link loop (RuntimeError or OSError, depending on the Python version) stays unresolved,
    and `open_regular` or `check_output` then say what is wrong with it."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def same_file(a: Path, b: Path) -> bool:
    """True when both paths name one file (links, hard links, `..` and case included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return resolved(a) == resolved(b)


# --- Reading ---------------------------------------------------------------------------


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_problem(path: Path, exc: OSError) -> str:
    """Why `path` could not be opened, as the end of a sentence."""
    code = exc.errno
    if code == errno.ELOOP:
        return "it is a symbolic link that leads back to itself (a loop); point it at a photo."
    if code == errno.ENOENT:
        if path.is_symlink():
            return f"it is a link to '{os.readlink(path)}', which does not exist."
        return "the file does not exist."
    if code in (errno.EACCES, errno.EPERM):
        if path.is_dir():
            return "it is a folder, not an image file."
        return "permission denied; check that you may read it."
    if code == errno.EISDIR:
        return "it is a folder, not an image file."
    if code == errno.ENXIO:
        return "it is a socket or device, not a regular file; choose the photo file itself."
    return f"{exc.strerror or exc}."


@contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open a regular, non-empty file of at most MAX_FILE_BYTES for reading; any other
    path raises ImageFileError with one sentence. Nothing is read here."""
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageFileError(f"Cannot open '{path}': {_open_problem(path, exc)}") from exc
    try:
        info = os.fstat(fd)
        problem = None
        if stat.S_ISDIR(info.st_mode):
            problem = "it is a folder, not an image file."
        elif not stat.S_ISREG(info.st_mode):
            problem = (f"it is {_file_kind(info.st_mode)}, not a photo file; "
                       "choose the photo file itself.")
        elif info.st_size == 0:
            problem = "the file is empty (0 bytes)."
        elif info.st_size > MAX_FILE_BYTES:
            problem = (f"the file is {size_text(info.st_size)}, larger than any photo Moebius "
                       f"Studio opens (the limit is {size_text(MAX_FILE_BYTES)}).")
        if problem is not None:
            raise ImageFileError(f"Cannot open '{path}': {problem}")
        fp = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fp:
        yield fp


def read_rest(path: Path, fp: BinaryIO) -> bytes:
    """The whole file from its start, after its header was judged (never more than the limit)."""
    try:
        fp.seek(0)
        data = fp.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImageFileError(f"Cannot open '{path}': {exc.strerror or exc}.") from exc
    if len(data) > MAX_FILE_BYTES:  # it grew while we read it
        raise ImageFileError(f"Cannot open '{path}': the file is larger than "
                             f"{size_text(MAX_FILE_BYTES)}.")
    return data


def format_of(path: Path, head: bytes) -> str:
    """The format from the file's first bytes (its extension may lie)."""
    fmt, other = meta.sniff_format(head)
    if fmt is not None:
        return fmt
    if other is not None:
        raise ImageFileError(
            f"Cannot open '{path}': {other} images are not supported. "
            "Convert it to PNG or JPEG first."
        )
    raise ImageFileError(
        f"Cannot open '{path}': it is not an image file Moebius Studio can read "
        "(JPEG, PNG, WebP, TIFF, BMP, HEIC or AVIF)."
    )


def probe(path: str | os.PathLike) -> str:
    """Check that `path` is a readable image file of a format we open, reading only its
    first bytes; returns the format. ImageFileError (one sentence) otherwise."""
    path = Path(path)
    with open_regular(path) as fp:
        try:
            head = fp.read(HEAD_BYTES)
        except OSError as exc:
            raise ImageFileError(f"Cannot open '{path}': {exc.strerror or exc}.") from exc
    return format_of(path, head)


# --- Writing ---------------------------------------------------------------------------


def output_format(path: Path, default: str | None = None) -> str:
    """The format a save to `path` writes: its extension's, or `default` without one."""
    suffix = path.suffix.lower()
    if not suffix and default is not None:
        return default
    if suffix not in EXTENSION_FORMATS:
        shown = f"'{suffix}' files are" if suffix else "a file without an extension is"
        raise ImageFileError(
            f"Cannot save '{path}': {shown} not supported. "
            f"Use one of {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    return EXTENSION_FORMATS[suffix]


def check_output(path: str | os.PathLike, *, overwrite: bool, default_format: str | None = None,
                 inputs: tuple[Path, ...] = ()) -> str:
    """Everything about saving to `path` that can be known before the work: returns the
    format. `inputs` are files of the request; replacing one needs `overwrite` too."""
    path = Path(path)
    fmt = output_format(path, default_format)
    folder = path.parent
    try:
        os.stat(path)
        exists = True
    except (FileNotFoundError, NotADirectoryError):
        exists = False  # (also a link to nowhere: saving replaces the link, nothing is lost)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageFileError(f"Cannot save '{path}': it is a symbolic link that leads "
                                 "back to itself (a loop); remove it or choose another name."
                                 ) from exc
        raise ImageFileError(f"Cannot save '{path}': {exc.strerror or exc}.") from exc
    if not folder.is_dir():
        why = f"'{folder}' is a file, not a folder" if folder.exists() else \
            f"the folder '{folder}' does not exist"
        raise ImageFileError(f"Cannot save '{path}': {why}.")
    if path.is_dir():
        raise ImageFileError(f"Cannot save '{path}': it is a folder.")
    if exists and not path.is_file():
        raise ImageFileError(f"Cannot save '{path}': it is not a regular file.")
    if any(same_file(path, i) for i in inputs) and not overwrite:
        raise ImageFileError(f"Cannot save '{path}': it would replace the input photo; "
                             "pass --overwrite to allow it, or choose another name.")
    if exists and not overwrite:
        raise ImageFileError(f"Cannot save '{path}': the file already exists; pass "
                             "--overwrite to replace it, or choose another name.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageFileError(f"Cannot save '{path}': the folder '{folder}' is read-only "
                             "for you. Save somewhere else.")
    return fmt
