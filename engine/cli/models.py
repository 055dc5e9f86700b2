"""`python main.py models ...`: list, download, import, verify or remove model weights."""

from __future__ import annotations

import argparse
import sys

from engine.about import command_line
from engine.errors import Cancelled, MoebiusError
from engine.weights import zoo
from engine.weights.store import ENV_VAR, ModelState, WeightStore


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="list, download, import, verify or remove model weights",
        description="Manage the Moebius weights. Names: "
        + ", ".join([*zoo.VARIANTS, zoo.VAE.id])
        + f" (short forms: {', '.join(zoo.ALIASES)}).",
    )
    p.add_argument(
        "--models-dir",
        metavar="DIR",
        help=f"where weights are stored (default: ${ENV_VAR}, else the per-user data folder)",
    )
    sub = p.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    sub.add_parser("list", help="show every model and whether it is installed")
    d = sub.add_parser("download", help="download, check and install a model (resumes)")
    d.add_argument("name", help=f"model name, e.g. {zoo.DEFAULT_VARIANT}")
    d.add_argument("--force", action="store_true", help="download again even if installed")
    i = sub.add_parser("import", help="install weights you downloaded yourself")
    i.add_argument("name", help="model name (use 'vae' for the autoencoder folder)")
    i.add_argument("path", help="the .bin/.safetensors file, or a folder holding it")
    v = sub.add_parser("verify", help="re-check installed files (all when no name is given)")
    v.add_argument("name", nargs="?")
    r = sub.add_parser("remove", help="delete a model's files")
    r.add_argument("name")
    s = sub.add_parser("suggest", help="which fine-tune suits a photo, and why (faces found)")
    s.add_argument("image", help="the photo to look at")
    return p


def run(args: argparse.Namespace, store: WeightStore | None = None) -> int:
    """Run one `models` command; returns the exit code."""
    store = store or WeightStore(getattr(args, "models_dir", None))
    try:
        return _COMMANDS[args.models_command](store, args)
    except Cancelled:
        print("cancelled; run the same command again to resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except MoebiusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _list(store: WeightStore, args) -> int:
    print(f"Models folder: {store.root}")
    for s in store.list():
        default = "*" if s.id == zoo.DEFAULT_VARIANT else " "
        size = f"{s.entry.size / 1e6:,.0f} MB"
        what = f"{s.entry.name}: {s.entry.description}"
        print(f"{default} {s.id:<12} {s.status:<12} {size:>8}  {what}")
        if s.detail:
            print(f"  {'':<12} {s.detail}")
    print(f"* = default. Download with: {command_line('models download NAME')}")
    return 0


def _download(store: WeightStore, args) -> int:
    from tqdm import tqdm

    name = zoo.resolve(args.name).id
    bar = None  # made on the first report, so a failure before any transfer prints no bar

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(desc=name, total=total or None, unit="B", unit_scale=True,
                       unit_divisor=1024, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        state = store.download(name, progress=progress, force=args.force)
    finally:
        if bar is not None:
            bar.close()
    _report(state)
    return 0 if state.status == "ready" else 1


def _import(store: WeightStore, args) -> int:
    state = store.import_weights(args.name, args.path)
    _report(state)
    return 0 if state.status == "ready" else 1


def _verify(store: WeightStore, args) -> int:
    states = [store.verify(args.name)] if args.name else store.verify_all()
    for s in states:
        _report(s)
    if args.name and states[0].status != "ready":
        return 1
    return 1 if any(s.status == "damaged" for s in states) else 0


def _remove(store: WeightStore, args) -> int:
    name = zoo.resolve(args.name).id
    print(f"removed {name}" if store.remove(name) else f"{name} was not installed")
    return 0


def _suggest(store: WeightStore, args) -> int:
    from engine.imageio.files import load_image
    from engine.removal.suggest import suggest

    found = suggest(load_image(args.image).pixels)
    print(f"{zoo.ALIAS_OF.get(found.variant, found.variant)}  ({found.variant}: {found.name})")
    print(f"why: {found.reason}")
    for face in found.faces:
        print(f"  face at {face.box} ({face.size:.0%} of the short side)")
    return 0


def _report(s: ModelState) -> None:
    where = f" in {s.folder}" if s.status == "ready" else ""
    detail = f" ({s.detail})" if s.detail else ""
    print(f"{s.id}: {s.status}{where}{detail}")


_COMMANDS = {
    "list": _list,
    "download": _download,
    "import": _import,
    "verify": _verify,
    "remove": _remove,
    "suggest": _suggest,
}
