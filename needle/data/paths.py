"""Where data files are found: ``--data-dir``, else ``$NEEDLE_DATA``, else ``../shared/data``
next to the project (never the current directory)."""

from __future__ import annotations

import os

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data_root(explicit: str | None = None) -> str:
    """The data folder: ``explicit`` if given, else ``$NEEDLE_DATA``, else the project's
    ``../shared/data``."""
    default = os.path.normpath(os.path.join(PROJECT_ROOT, os.pardir, "shared", "data"))
    return explicit or os.environ.get("NEEDLE_DATA") or default
