"""Encoding for `engine.imageio.files`: per-format settings, and the atomic file write."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin, TiffImagePlugin

from engine.disk import temp_path
from engine.errors import ImageFileError
from engine.imageio import heif, meta
from engine.imageio.pixels import Rendition
from engine.imageio.sixteen_bit import write_png16, write_tiff16

if TYPE_CHECKING:
    from engine.imageio.loaded import LoadedImage

log = logging.getLogger(__name__)

DEFAULT_JPEG_QUALITY = 95  # for JPEGs saved from other formats
DEFAULT_WEBP_QUALITY = 80  # libwebp's default, for lossy WebP
_LOSSLESS_TIFF = {"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits"}
_RAW_EXIF_TEXT = ("Raw profile type exif", "Raw profile type APP1")
_GREY_MODES = ("1", "L", "LA", "I;16", "LA;16")
_ICC_SPACE = {**dict.fromkeys(_GREY_MODES, "GRAY"), "CMYK": "CMYK"}  # else RGB


def encode(fp: BinaryIO, fmt: str, out: Rendition, image: LoadedImage, quality: int | None) -> None:
    """Write `out` to `fp` as `fmt`, with the metadata of the opened `image`."""
    # An ICC profile only describes pixels of its own colour space (a CMYK profile must
    # not travel with the RGB rendering of a CMYK image).
    space = meta.icc_colour_space(image.icc_profile)
    icc = image.icc_profile if space == _ICC_SPACE.get(out.mode, "RGB") else None
    if image.icc_profile and icc is None:
        log.warning("dropping the %s ICC profile: the file is saved as %s", space, out.mode)
    exif = image.exif
    text = _png_text(image)
    if out.mode.endswith(";16"):
        if fmt == "PNG":
            write_png16(fp, out.array, icc=icc, dpi=image.dpi, text=text, exif=exif)
        else:
            write_tiff16(fp, out.array, icc=icc, dpi=image.dpi, exif=exif)
        return

    params: dict = {}
    if icc and fmt != "BMP":
        params["icc_profile"] = icc
    if image.dpi and fmt not in ("WEBP", "HEIF", "AVIF"):
        params["dpi"] = image.dpi
    if exif and fmt in ("JPEG", "PNG", "WEBP", "HEIF", "AVIF"):
        params["exif"] = exif
    if fmt == "JPEG":
        from_jpeg = image.format == "JPEG"
        estimated = image.jpeg_quality if from_jpeg else None
        params["quality"] = quality or estimated or DEFAULT_JPEG_QUALITY
        subsampling = image.jpeg_subsampling if from_jpeg else 0  # 4:4:4 from lossless
        if out.mode == "RGB" and subsampling is not None:
            params["subsampling"] = subsampling
    elif fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            if isinstance(value, PngImagePlugin.iTXt):
                info.add_itxt(key, value, value.lang or "", value.tkey or "")
            else:
                info.add_text(key, value)
        params["pnginfo"] = info
        if out.transparency is not None:
            params["transparency"] = out.transparency
    elif fmt == "WEBP":
        if quality is None and _source_is_lossless(image):
            params.update(lossless=True, exact=True)  # exact: keep colour under alpha 0
        else:
            params["quality"] = quality or DEFAULT_WEBP_QUALITY
    elif fmt in ("HEIF", "AVIF"):
        # Full-resolution colour (4:4:4): a re-save then loses as little as it can.
        if fmt == "HEIF":
            heif.register_heif()
            params["chroma"] = 444
        else:
            params["subsampling"] = "4:4:4"
        params["quality"] = quality or heif.DEFAULT_QUALITY
    elif fmt == "TIFF":
        compression = image.tiff_compression if image.format == "TIFF" else None
        bilevel = out.mode == "1" and compression in ("group3", "group4", "tiff_ccitt")
        lossless = compression in _LOSSLESS_TIFF or bilevel
        params["compression"] = compression if lossless else "tiff_adobe_deflate"
        tags = meta.exif_for_tiff(exif) if exif else {}
        params["tiffinfo"] = {k: v for k, v in tags.items() if not isinstance(v, dict)}
        # Encoded in memory: libtiff writing to the file itself prints raw lines on stderr
        # and fails with "encoder error -2" on a full disk; our own write says "disk full".
        buffer = io.BytesIO()
        _to_pillow(out).save(buffer, format=fmt, **params)
        _append_tiff_subifds(buffer, {k: v for k, v in tags.items() if isinstance(v, dict)})
        fp.write(buffer.getbuffer())
        return
    _to_pillow(out).save(fp, format=fmt, **params)


def _append_tiff_subifds(fp: BinaryIO, subifds: dict[int, dict]) -> None:
    """Add the EXIF and GPS sub-directories to the TIFF Pillow just wrote to `fp`.

    Pillow writes them only for uncompressed TIFF (libtiff refuses them). The first
    directory is copied to the end with pointers to the new sub-directories added, and the
    header is pointed at the copy; all other data stays where it is.
    """
    if not subifds:
        return
    fp.flush()  # libtiff may have written through its own file descriptor
    fp.seek(0)
    head = fp.read(8)
    e = "<" if head[:2] == b"II" else ">"
    if struct.unpack(e + "H", head[2:4])[0] != 42:
        raise ValueError("unexpected TIFF variant while adding EXIF")
    (first,) = struct.unpack(e + "I", head[4:8])
    fp.seek(first)
    (count,) = struct.unpack(e + "H", fp.read(2))
    entries = {}
    for _ in range(count):
        raw = fp.read(12)
        entries[struct.unpack(e + "H", raw[:2])[0]] = raw
    next_ifd = fp.read(4)
    end = fp.seek(0, os.SEEK_END)
    for tag, values in subifds.items():
        if end % 2:  # TIFF directories start on word boundaries
            end += fp.write(b"\0")
        ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=head[:2])
        for key, value in values.items():
            ifd[key] = value
        entries[tag] = struct.pack(e + "HHII", tag, 4, 1, end)  # 4: LONG offset
        end += fp.write(ifd.tobytes(end))
    if end % 2:
        end += fp.write(b"\0")
    fp.write(struct.pack(e + "H", len(entries)))
    fp.write(b"".join(entries[tag] for tag in sorted(entries)) + next_ifd)
    fp.seek(4)
    fp.write(struct.pack(e + "I", end))


def _png_text(image: LoadedImage) -> dict[str, str]:
    # ImageMagick's hex-encoded EXIF copies would bring back the old orientation.
    drop = _RAW_EXIF_TEXT if image.exif else ()
    return {k: v for k, v in image.text.items() if k not in drop}


def _source_is_lossless(image: LoadedImage) -> bool:
    if image.format == "WEBP":
        return bool(image.webp_lossless)
    if image.format == "TIFF":
        return image.tiff_compression != "jpeg"
    return image.format in ("PNG", "BMP")


def _to_pillow(out: Rendition) -> Image.Image:
    a = np.ascontiguousarray(out.array)
    size = (a.shape[1], a.shape[0])
    if out.mode == "1":
        return Image.frombytes("L", size, a.tobytes()).convert("1", dither=Image.Dither.NONE)
    im = Image.frombytes(out.mode, size, a.tobytes())
    if out.mode == "P":
        im.putpalette(out.palette or b"", "RGB")
    return im


# --- Atomic write ---------------------------------------------------------------------


def atomic_write(path: Path, write: Callable[[BinaryIO], None], overwrite: bool) -> None:
    """Write through a temporary file in the same folder, then rename it over `path`.

    Whatever fails, the temporary file is removed, an existing `path` is untouched, and
    the error is an ImageFileError that says what happened.
    """
    tmp = temp_path(path)  # named so a later run can remove it if we are killed mid-write
    # 0o666 lets the umask decide the permissions, as for any newly created file.
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        raise _save_error(path, exc) from exc
    try:
        with os.fdopen(fd, "w+b") as fp:  # + : the TIFF writer reads back its header
            write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        if path.exists():
            if not overwrite:  # it appeared while we were writing
                raise ImageFileError(f"Cannot save '{path}': the file already exists.")
            shutil.copymode(path, tmp)  # replacing a file keeps its permissions
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove the temporary file %s", tmp)
        if isinstance(exc, OSError):
            raise _save_error(path, exc) from exc
        if isinstance(exc, (ValueError, TypeError, KeyError)):
            raise ImageFileError(f"Cannot save '{path}': {exc}") from exc
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; best effort)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_error(path: Path, exc: OSError) -> ImageFileError:
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        reason = "the disk is full. Free some space or save somewhere else."
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied. Save to a folder you can write to."
    elif code == errno.EROFS:
        reason = "the disk is read-only. Save somewhere else."
    elif code == errno.ENOENT and not path.parent.is_dir():
        reason = f"the folder '{path.parent}' does not exist."
    else:
        reason = f"{exc.strerror or exc}."
    return ImageFileError(f"Cannot save '{path}': {reason}")
