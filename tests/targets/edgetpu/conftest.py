"""Fixtures for the Edge TPU tests: the `Chain` model builder, and a stand-in `edgetpu_compiler` on PATH.

`standin_compiler` is a test fixture, not Coral's compiler: a small Python script that records its
arguments, copies MODEL.tflite to OUTDIR/MODEL_edgetpu.tflite and prints a log in the format of Coral's
compiler 16 (as published in google-coral/edgetpu issues #427, #572), so that the invocation and the
log parsing can be tested where the real compiler cannot be installed.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from edgetpu_helpers import STANDIN_SCRIPT, Chain  # noqa: E402


@pytest.fixture
def chain() -> type[Chain]:
    """The Chain class (tests build their own models)."""
    return Chain


@pytest.fixture
def standin_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the stand-in `edgetpu_compiler` first on PATH; returns the file its invocations are logged to."""
    bindir = tmp_path / "standin-bin"
    bindir.mkdir()
    script = bindir / "edgetpu_compiler"
    script.write_text(STANDIN_SCRIPT.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    argv_log = tmp_path / "standin-argv.txt"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("EDGETPU_STANDIN_ARGV", str(argv_log))
    return argv_log


@pytest.fixture
def no_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure no edgetpu_compiler is found (PATH without it)."""
    import shutil

    if shutil.which("edgetpu_compiler"):
        monkeypatch.setenv("PATH", "/usr/bin:/bin")
