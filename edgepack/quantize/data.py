"""Calibration and evaluation data from files, and the overlap check between them.

File rules (the CLI's `--calib` and `--eval`):

- `FILE.npz`: one array per graph input, named after the input. A single-input model also takes the
  first *floating-point* array when no array carries the input's name (integer arrays such as labels
  `y` or pre-quantized `x_int8` are skipped: calibration needs real values). Arrays are stacks
  `[N, *input shape]` (or `[N, *input shape without the batch of 1]`).
- `FILE.npy`: the stack for a single-input model.
- `DIR`: every `*.npy` and `*.npz` file in the directory, in sorted name order, each read by the rules
  above and holding one sample (the input's shape) or a stack; the samples are concatenated.
- labels (`--eval` only): the integer array `y` of the same .npz, one label per sample.

Calibration and evaluation samples should not overlap: `overlap(calib, eval)` counts the evaluation
samples whose bytes hash equal to a calibration sample, and the CLI warns (on stderr) when it is not 0.

Usage: `calib = load_samples("calib.npz", graph)`; `x, y = load_labelled("test.npz", graph)`.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from edgepack.errors import InputError
from edgepack.ir.graph import Graph
from edgepack.quantize.calibrate import as_batch
from edgepack.runtime.tensors import TensorInfo, read_input_file


def _infos(graph: Graph) -> list[TensorInfo]:
    return [TensorInfo(n, graph.tensor(n).shape, "float32") for n in graph.inputs]


def _first_float(path: Path) -> str | None:
    """Name of the first floating-point array of an .npz (None if it has none or is not an .npz)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return next((k for k in data.files if data[k].dtype.kind == "f"), None)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from exc


def _read_file(path: Path, graph: Graph) -> dict[str, np.ndarray]:
    """Arrays for every input from one .npy/.npz file (see the module docstring), as [N, ...] float32."""
    infos = _infos(graph)
    arrays = read_input_file(path, infos)
    if len(infos) == 1 and zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as data:
            named = infos[0].name in data.files
        if not named:
            first = _first_float(path)
            if first is None:
                raise InputError(f"{path}: no array named {infos[0].name!r} and no floating-point array",
                                 hint="calibration needs real values: np.savez(f, **{name: x_float})")
            with np.load(path, allow_pickle=False) as data:
                arrays = {infos[0].name: data[first]}
    out = {}
    for t in infos:
        a = np.asarray(arrays[t.name])
        if a.dtype.kind not in "fiu":
            raise InputError(f"{path}: array for input {t.name!r} has dtype {a.dtype}; expected real values")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int(np.count_nonzero(~np.isfinite(a)))
            raise InputError(f"{path}: array for input {t.name!r} holds {bad} NaN or infinite value(s)",
                             hint="calibration data must be finite real values")
        if a.shape == t.shape or (t.shape[:1] == (1,) and a.shape == t.shape[1:]):
            a = a.reshape(1, *t.shape)  # one sample
        out[t.name] = a
    try:
        return as_batch(graph, out)
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}", hint="arrays are stacks [N, *input shape]") from exc


def load_samples(path: str | os.PathLike[str], graph: Graph) -> dict[str, np.ndarray]:
    """Real-valued samples [N, ...] for every input of `graph` from an .npz/.npy file or a directory."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in (".npy", ".npz") and f.is_file())
        if not files:
            raise InputError(f"{p}: directory holds no .npy or .npz files")
        parts = [_read_file(f, graph) for f in files]
        return {name: np.concatenate([part[name] for part in parts]) for name in graph.inputs}
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    return _read_file(p, graph)


def load_labelled(path: str | os.PathLike[str], graph: Graph) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(samples, integer labels `y`) from an .npz file."""
    p = Path(path)
    samples = load_samples(p, graph)
    if not p.is_file() or not zipfile.is_zipfile(p):
        raise InputError(f"{p}: evaluation data must be one .npz file holding the inputs and labels 'y'")
    with np.load(p, allow_pickle=False) as data:
        if "y" not in data.files:
            raise InputError(f"{p}: no labels array 'y' (arrays: {', '.join(data.files)})",
                             hint="save the labels too: np.savez(f, **{input_name: x, 'y': labels})")
        y = np.asarray(data["y"]).reshape(-1)
    n = next(iter(samples.values())).shape[0]
    if y.dtype.kind not in "iu" or y.size != n:
        raise InputError(f"{p}: labels 'y' must be {n} integers (one per sample); got {y.dtype}{list(y.shape)}")
    return samples, y


def _row_hashes(samples: dict[str, np.ndarray]) -> list[bytes]:
    names = sorted(samples)
    n = samples[names[0]].shape[0]
    out = []
    for i in range(n):
        h = hashlib.blake2b(digest_size=16)
        for name in names:
            h.update(np.ascontiguousarray(samples[name][i], dtype=np.float32).tobytes())
        out.append(h.digest())
    return out


def overlap(calib: dict[str, np.ndarray], evaluation: dict[str, np.ndarray]) -> int:
    """How many evaluation samples also appear (byte for byte, as float32) in the calibration samples."""
    seen = set(_row_hashes(calib))
    return sum(h in seen for h in _row_hashes(evaluation))
