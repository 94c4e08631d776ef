"""Run float and quantized graphs on float data, and compare their outputs.

`run_real(graph, data)` runs either kind of graph on real-valued inputs and returns real-valued outputs:
integer inputs are quantized as TFLM's QUANTIZE does, integer outputs are dequantized. The quality
measures compare a quantized model's outputs with the float model's:

- `noise`: relative noise power E||y_q - y||^2 / E||y||^2 (additive when layer errors are independent);
- `sqnr_db`: -10 log10(noise);
- `kl`: mean KL(float || quantized) when the outputs are probability rows (softmax heads);
- `top1_agreement`, and `accuracy` when labels are given.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgepack.ir.graph import Graph
from edgepack.ir.reference import Interpreter
from edgepack.quantize.calibrate import as_batch
from edgepack.quantize.scheme import dequantize, quantize_values


def run_real(graph: Graph, data: Mapping[str, np.ndarray], *, chunk: int = 250) -> dict[str, np.ndarray]:
    """Outputs (dequantized for integer graphs) of `graph` on real-valued `data` ([N, ...] arrays)."""
    batch = as_batch(graph, data)
    interp = Interpreter(graph)
    feeds = {}
    for name, arr in batch.items():
        t = graph.tensor(name)
        feeds[name] = arr if t.dtype == "float32" else quantize_values(arr, t.quant, t.dtype)  # type: ignore[arg-type]
    n = next(iter(feeds.values())).shape[0]
    parts: dict[str, list[np.ndarray]] = {o: [] for o in graph.outputs}
    for start in range(0, n, chunk):
        out = interp.run({k: v[start:start + chunk] for k, v in feeds.items()})
        for name, v in out.items():
            t = graph.tensor(name)
            parts[name].append(v if t.dtype == "float32" else dequantize(v, t.quant).astype(np.float32))  # type: ignore[arg-type]
    return {k: np.concatenate(v) for k, v in parts.items()}


def quality(reference: np.ndarray, test: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """Compare one output of the quantized model with the float model's (see the module docstring)."""
    ref = reference.reshape(reference.shape[0], -1).astype(np.float64)
    got = test.reshape(test.shape[0], -1).astype(np.float64)
    noise = float(((got - ref) ** 2).sum() / max((ref**2).sum(), 1e-30))
    res = {"noise": noise, "sqnr_db": float(-10 * np.log10(max(noise, 1e-30))),
           "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean())}
    if np.all(ref >= 0) and np.allclose(ref.sum(1), 1.0, atol=1e-3):
        eps = 1e-6
        p, q = ref + eps, np.clip(got, 0, None) + eps
        p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
        res["kl"] = float((p * np.log(p / q)).sum(1).mean())
    if labels is not None:
        res["accuracy"] = accuracy(test, labels)
    return res


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of [N, classes] outputs against integer labels."""
    return float((outputs.reshape(outputs.shape[0], -1).argmax(1) == np.asarray(labels).reshape(-1)).mean())
