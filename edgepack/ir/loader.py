"""Pick the importer for a model file by its format, and describe a model's ops without failing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgepack.errors import ModelError
from edgepack.ir.graph import Graph

FORMATS = {".tflite": "tflite", ".onnx": "onnx"}


def model_format(path: str | os.PathLike[str]) -> str:
    """'tflite' or 'onnx' from the file name; ModelError for anything else or a missing file."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file")
    if not p.is_file():
        raise ModelError(f"{p}: not a regular file")
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ModelError(f"{p}: unknown model format {p.suffix!r}; edgepack reads {', '.join(FORMATS)} files",
                         hint="export Keras/TF models to .tflite and PyTorch models to .onnx first")
    return fmt


def read_model_file(path: str | os.PathLike[str], limit: int, kind: str) -> bytes:
    """The file's bytes, refusing unreadable files and files over `limit` bytes with a ModelError."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ModelError(f"{p}: cannot read the model ({exc.strerror})") from None
    if size > limit:
        raise ModelError(f"{p}: {size:,} bytes is over the {limit:,}-byte limit for {kind} models")
    return p.read_bytes()


def load_model(path: str | os.PathLike[str]) -> Graph:
    """Import a .tflite or .onnx file into a Graph."""
    if model_format(path) == "tflite":
        from edgepack.ir.tflite import from_tflite

        return from_tflite(path)
    from edgepack.ir.onnx import from_onnx

    return from_onnx(path)


def list_model_ops(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every op type in the model with its count and whether edgepack supports it (never raises for ops)."""
    if model_format(path) == "tflite":
        from edgepack.ir.tflite import list_ops

        return list_ops(path)
    from edgepack.ir.onnx import list_ops as onnx_list_ops

    return onnx_list_ops(path)
