"""Command line: `python main.py [-v] remove|batch|models ...`.

The `cli` package prints (it is the command line); the rest of the engine logs. Heavy
modules (torch, diffusers) load only once a command needs them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.about import APP_ID, command_line
from engine.cli import batch, models, remove
from engine.errors import MoebiusError

COMMANDS = ("remove", "batch", "models")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(APP_ID)
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "(source)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=command_line(""),
                                     description="Object removal with Moebius.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--version", action="version", version=f"{APP_ID} {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    remove.add_parser(sub)
    batch.add_parser(sub)
    models.add_parser(sub)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "remove":
            return remove.run(args)
        if args.command == "batch":
            return batch.run(args)
        return models.run(args)
    except MoebiusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130
