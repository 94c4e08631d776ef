"""Golden inputs for a bundle: from the user's data file, or seeded random values of the right dtype."""

from __future__ import annotations

import os

import numpy as np

from edgepack.errors import InputError
from edgepack.ir.graph import INT_RANGES, Graph
from edgepack.runtime.tensors import TensorInfo, read_input_file

DEFAULT_COUNT = 16


def load_samples(path: str | os.PathLike[str], infos: list[TensorInfo]) -> dict[str, np.ndarray]:
    """Stacked samples for every input from an .npz/.npy file, coerced to the inputs' dtypes.

    Each array is [N, *shape] (or [N, *shape[1:]] when the model's batch is 1). Real values for an
    integer input are quantized with its parameters.
    """
    return coerce_samples(read_input_file(path, infos), infos, str(path))


def coerce_samples(arrays: dict[str, np.ndarray], infos: list[TensorInfo], source: str = "golden inputs"
                   ) -> dict[str, np.ndarray]:
    """Stacks [N, *shape] for every input, in the inputs' dtypes (real values quantized for integer inputs)."""
    out = {}
    for t in infos:
        a = np.asarray(arrays[t.name])
        if a.shape[1:] != t.shape and t.shape[:1] == (1,) and a.shape[1:] == t.shape[1:]:
            a = a.reshape(len(a), *t.shape)
        if a.shape[1:] != t.shape:
            raise InputError(f"{source}: array {t.name!r} has shape {list(a.shape)}; expected a stack "
                             f"[N, {', '.join(map(str, t.shape))}]")
        out[t.name] = t.coerce(a)[0]
    return out


def random_samples(graph: Graph, count: int = DEFAULT_COUNT, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random inputs: uniform over the integer range, or standard normal floats."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in graph.inputs:
        t = graph.tensor(name)
        shape = (count, *t.shape)
        if t.dtype in INT_RANGES:
            lo, hi = INT_RANGES[t.dtype]
            out[name] = rng.integers(lo, hi + 1, size=shape).astype(t.dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def take(samples: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` samples of each input."""
    return {k: v[:count] for k, v in samples.items()}
