"""Puts this directory on sys.path so the Linux tests (and device_tests/test_rpi.py) share `linux_helpers`."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
