"""Puts tests/ on sys.path so that test modules can share helpers (e.g. `import onnx_models`)."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
