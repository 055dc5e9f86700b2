"""Loading Moebius checkpoints: the authors' `.bin` unchanged, or `.safetensors`.

Loading is safe (never unpickles arbitrary objects), strict (every key and shape must
match the network), and fast on the second run: a verified `.bin` gets a safetensors
copy beside it, which later loads memory-map instead of unpickling.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import CheckpointError
from engine.net.config import MoebiusConfig

if TYPE_CHECKING:
    import torch

    from engine.net.model import RemovalModel

log = logging.getLogger(__name__)

SAFETENSORS_CACHE_NAME = "model.cache.safetensors"  # written beside a verified .bin


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file without running any code from it. Every failure is a
    CheckpointError of one sentence that names the file and says what to do."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weight file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); download it again.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _read_safetensors(path)
        except (ValueError, KeyError, TypeError, struct.error):  # safetensors decides
            pass
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            log.info("safetensors could not read %s: %s", path, exc)
            raise CheckpointError(f"{path} is damaged or incomplete (not a readable "
                                  "safetensors file); download it again.") from exc
    if is_cut_short(path):
        raise CheckpointError(f"{path} is incomplete: the file ends early, as after an "
                              "interrupted download or copy; download it again.")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        log.info("torch.load refused %s: %s", path, exc)
        if not _refused_by_weights_only(exc, path):  # garbage, not a code-carrying pickle
            raise CheckpointError(f"{path} is damaged or not a PyTorch weight file; download "
                                  "it again.") from exc
        raise CheckpointError(
            f"refused to load {path}: it contains Python objects other than tensors, "
            "which could run code on this computer. Only plain weight files are accepted; "
            "download the file again from the official source."
        ) from exc
    except Exception as exc:  # torch raises many kinds for bytes that are not a checkpoint
        log.info("torch.load could not read %s: %r", path, exc)
        if isinstance(exc, EOFError) or "EOF" in str(exc):  # a legacy pickle cut short
            raise CheckpointError(f"{path} is incomplete: the file ends early, as after an "
                                  "interrupted download or copy; download it again.") from exc
        raise CheckpointError(f"{path} is damaged or not a PyTorch weight file; download it "
                              "again.") from exc
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors; it is not a "
                              "Moebius weight file.")
    return dict(sd)


def is_cut_short(path: Path) -> bool:
    """True for a zip (how torch.save writes) whose end is missing: it starts like a zip
    but its central directory, written last, is not there."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head == b"PK\x03\x04" and not zipfile.is_zipfile(path)


_SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16",
                       "F64": "float64", "I64": "int64", "I32": "int32"}


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file tensor by tensor into memory of our own.

    safetensors' loader memory-maps the file, so every page read stays resident while any
    tensor of the file lives, even after the network replaced it (folded layers, half
    precision): about 0.4 GB counted twice in fp32, the whole checkpoint in bf16. Plain
    reads give tensors that free their memory when they go.
    """
    import json

    import torch

    out: dict[str, torch.Tensor] = {}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        base = 8 + size
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=getattr(torch, _SAFETENSORS_DTYPES[info["dtype"]]))
            out[name] = t
            if t.numel() == 0 and end == start:
                continue
            raw = t.view(-1).view(torch.uint8).numpy()
            if raw.nbytes != end - start:
                raise ValueError(f"{name}: {end - start} bytes for {info['shape']}")
            f.seek(base + start)
            if f.readinto(raw.data) != raw.nbytes:
                raise CheckpointError(f"{path} is incomplete: the file ends early, as after an "
                                      "interrupted download or copy; download it again.")
    return out


def _refused_by_weights_only(exc: Exception, path: Path) -> bool:
    """True when the file asks to import something other than tensor plumbing (code),
    rather than being unreadable bytes. torch names the import when it sees it; for old
    pickles with opcodes it does not parse, look at the imports ourselves."""
    if "GLOBAL" in str(exc):
        return True
    return bool(_foreign_imports(path))


SAFE_MODULES = ("torch", "collections", "_codecs", "numpy")


def _foreign_imports(path: Path) -> list[str]:
    """Modules a raw pickle file would import, other than those a state dict needs."""
    import pickletools

    if _is_zip(path):
        return []
    found: list[str] = []
    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for op, arg, _ in pickletools.genops(f):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).split(" ")[0])
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(strings[-2])
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # noqa: BLE001 - unparseable tail: judge by what was read
        pass
    return [m for m in found if m.split(".")[0] not in SAFE_MODULES]


def _is_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def check_state_dict(
    sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Raise a CheckpointError listing missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [
        f"{k}: file {tuple(sd[k].shape)}, model {tuple(expected[k])}"
        for k in expected
        if k in sd and tuple(sd[k].shape) != tuple(expected[k])
    ]
    if not (missing or unexpected or misshaped):
        return
    parts = [f"{source} does not match the Moebius network:"]
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("keys with the wrong shape", misshaped),
    ):
        if items:
            shown = "\n    ".join(items[:12])
            more = f"\n    ... and {len(items) - 12} more" if len(items) > 12 else ""
            parts.append(f"  {len(items)} {title}:\n    {shown}{more}")
    raise CheckpointError(
        "\n".join(parts), missing=missing, unexpected=unexpected, misshaped=misshaped
    )


@functools.lru_cache(maxsize=4)
def expected_shapes(cfg: MoebiusConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the network for `cfg`, in state-dict order, without allocating it.
    (Cached: building even a weightless full-size network takes about a second.)"""
    import torch

    from engine.net.model import RemovalModel

    with torch.device("meta"):
        model = RemovalModel(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


KNOWN_CONFIGS = {"full": MoebiusConfig.full, "tiny": MoebiusConfig.tiny}


def infer_config(sd: Mapping[str, torch.Tensor]) -> MoebiusConfig:
    """Pick the known configuration whose ID table and input conv match the file."""
    probe = ("embedding_layer.weight", "diff_model.conv_in.conv_pw.weight")
    for make in KNOWN_CONFIGS.values():
        cfg = make()
        shapes = expected_shapes(cfg)
        if all(k in sd and tuple(sd[k].shape) == shapes[k] for k in probe):
            return cfg
    return MoebiusConfig.full()  # the error message will then list what differs


def load_model(
    path: str | Path,
    cfg: MoebiusConfig | None = None,
    cache: bool = True,
) -> RemovalModel:
    """Build the network from a weight file, strictly. Returns an fp32 CPU model in eval mode."""
    import torch

    from engine.net.model import RemovalModel

    path = Path(path)
    cached = path.with_name(SAFETENSORS_CACHE_NAME)
    sd = None
    if path.suffix == ".bin" and cache and _cache_is_fresh(cached, path):
        try:
            sd = read_state_dict(cached)
        except CheckpointError:
            log.warning("ignoring unreadable cache %s", cached)
    from_cache = sd is not None
    if sd is None:
        sd = read_state_dict(path)
    cfg = cfg or infer_config(sd)
    check_state_dict(sd, expected_shapes(cfg), str(path))
    with torch.device("meta"):
        model = RemovalModel(cfg)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=True)
    if path.suffix == ".bin" and cache and not from_cache:
        _write_cache(sd, cached, path)
    return model.eval()


def _cache_is_fresh(cached: Path, source: Path) -> bool:
    try:
        return cached.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        return False


_cache_warned: set[Path] = set()  # folders whose cache write failed: say so once


def _write_cache(sd: Mapping[str, torch.Tensor], cached: Path, source: Path) -> None:
    """Best effort: a cache that cannot be written (read-only folder, full disk) only costs
    speed, so nothing it raises (OSError, safetensors' own errors, ...) fails the load."""
    from engine.disk import remove_stale_temps, temp_path

    remove_stale_temps(cached.parent)  # a cache write killed half-way
    tmp = temp_path(cached)
    try:
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in sd.items()}, str(tmp), metadata={"source": source.name}
        )
        os.replace(tmp, cached)
        log.info("cached %s as %s", source.name, cached.name)
    except Exception as exc:  # noqa: BLE001 - see above
        if cached.parent not in _cache_warned:
            _cache_warned.add(cached.parent)
            log.warning("could not write the weight cache %s (%s); loading will stay a few "
                        "seconds slower", cached, exc)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def save_bin(model_or_sd, path: str | Path) -> None:
    """Write a checkpoint exactly as the authors distribute it (`torch.save(state_dict)`)."""
    import torch

    sd = model_or_sd.state_dict() if hasattr(model_or_sd, "state_dict") else model_or_sd
    torch.save(dict(sd), path)
