"""Moebius Studio from a checkout: `python main.py [PHOTO]` opens the app,
`python main.py remove|batch|models ...` runs the command line (see app/main.py)."""

from __future__ import annotations

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
