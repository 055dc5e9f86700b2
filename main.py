"""Moebius Studio entry point.

python main.py                 open the app
python main.py remove ...      remove objects from one photo (command line)
python main.py batch ...       clean a whole folder
python main.py models ...      list, download, import, verify or remove model weights
"""

from __future__ import annotations

import sys

CLI_COMMANDS = {"remove", "batch", "models", "-h", "--help", "--version"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLI_COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from app.main import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
