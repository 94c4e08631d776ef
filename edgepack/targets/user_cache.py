"""edgepack's per-user cache directory, where emulated boards are built once (the Pi userland, FPGA
simulators): `$XDG_CACHE_HOME/edgepack`, default ~/.cache/edgepack."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """edgepack's cache directory (`$XDG_CACHE_HOME/edgepack`, default ~/.cache/edgepack)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgepack"
