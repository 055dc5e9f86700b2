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
log = logging.getLogger(__name__)


class Parser(argparse.ArgumentParser):
    """argparse with one line per mistake: the usage block is for --help, not for errors.
    (Sub-command parsers are made with the same class.)"""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Plain(logging.Formatter):
    """Warnings as the command line's own lines: "warning: The mask ... was turned"."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(APP_ID)
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "(source)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=command_line(""), description="Object removal with Moebius.")
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s")
                         if args.verbose else _Plain())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        handlers=[handler])
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
    except Exception as exc:  # a bug of ours: still one line, the traceback with -v
        if args.verbose:
            log.exception("unexpected error")
        hint = "" if args.verbose else "; run with -v for details"
        print(f"error: unexpected {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return 1
