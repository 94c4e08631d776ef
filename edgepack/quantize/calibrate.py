"""Calibration: run the float graph on calibration data and collect what quantization needs.

Two passes of the golden float interpreter over the data, in chunks:

1. min/max of every activation tensor;
2. a fixed-bin histogram of every activation tensor over [min, max] (for percentile and MSE ranges),
   and, per layer with weights, statistics of its im2col input rows X (one row per output pixel):
   the row count, the row sum (for bias correction) and X^T X (the Hessian GPTQ needs; per input
   channel for depthwise convolutions).

Ranges come from the histogram:

- `minmax`: the observed extremes;
- `percentile`: the `p` and `100 - p` percentiles;
- `mse`: a grid search over clipping thresholds minimizing the quantization MSE of the observed values
  (values spread uniformly within each histogram bin; the grid includes the min/max and percentile ranges).

`auto` picks, per tensor, whichever range has the lowest MSE.

Usage: `cal = calibrate(graph, {"input_1": x})`, then `cal.tensors[name].range("mse", 8)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.errors import InputError
from edgepack.ir.graph import Graph
from edgepack.ir.ops import Op
from edgepack.ir.reference import Interpreter
from edgepack.ir.reference.linear import extract_patches
from edgepack.quantize.scheme import ACT_RANGE, activation_qparams, layers

Progress = Callable[[str, int, int], None]  # (step, done, total)

HIST_BINS = 2048
# Clipping ratios of the MSE search: fine near the full range, geometric down to 2 %.
_GRID = np.concatenate([np.geomspace(0.02, 0.2, 12, endpoint=False), np.linspace(0.2, 1.0, 33)])


def _noop(step: str, done: int, total: int) -> None:
    return None


@dataclass
class TensorStats:
    """Observed values of one activation tensor: extremes and a histogram over [min, max]."""

    name: str
    min: float = np.inf
    max: float = -np.inf
    hist: np.ndarray | None = None  # float64 counts, HIST_BINS bins over [min, max]
    count: int = 0
    _ranges: dict[tuple[str, int, float], tuple[str, float, float]] = field(default_factory=dict, repr=False)

    def _centres(self) -> np.ndarray:
        edges = np.linspace(self.min, self.max, HIST_BINS + 1)
        return 0.5 * (edges[:-1] + edges[1:])

    def quantization_mse(self, lo: float, hi: float, bits: int) -> float:
        """Mean squared error of quantizing the observed values to `bits` with range [lo, hi]."""
        if self.hist is None or self.max <= self.min:
            return 0.0
        return float(_range_mse(self._centres(), self.hist, np.array([[lo, hi]]), bits)[0])

    def percentile_range(self, p: float) -> tuple[float, float]:
        """The (100 - p, p) percentiles of the observed values (bin resolution)."""
        if self.hist is None or self.max <= self.min:
            return self.min, self.max
        cdf = np.cumsum(self.hist) / self.hist.sum()
        edges = np.linspace(self.min, self.max, HIST_BINS + 1)
        lo_i = int(np.searchsorted(cdf, (100 - p) / 100, side="left"))
        hi_i = int(np.searchsorted(cdf, p / 100, side="left"))
        return float(edges[lo_i]), float(edges[min(hi_i + 1, HIST_BINS)])

    def mse_range(self, bits: int, extra: list[tuple[float, float]] | None = None) -> tuple[float, float]:
        """The clipping range with the lowest quantization MSE on a grid of ratios of [min, max]."""
        if self.hist is None or self.max <= self.min:
            return self.min, self.max
        lo0, hi0 = min(self.min, 0.0), max(self.max, 0.0)
        los = _GRID * lo0 if lo0 < 0 else np.zeros(1)
        his = _GRID * hi0 if hi0 > 0 else np.zeros(1)
        cands = np.stack(np.meshgrid(los, his, indexing="ij"), -1).reshape(-1, 2)
        if extra:
            cands = np.concatenate([cands, np.array(extra, dtype=np.float64)])
        errors = _range_mse(self._centres(), self.hist, cands, bits)
        best = cands[int(np.argmin(errors))]
        return float(best[0]), float(best[1])

    def range(self, method: str, bits: int, percentile: float = 99.99) -> tuple[str, float, float]:
        """(method used, lo, hi) for `method` in minmax/percentile/mse/auto; 16-bit always uses min/max."""
        key = (method, bits, percentile)
        if key not in self._ranges:
            self._ranges[key] = self._range(method, bits, percentile)
        return self._ranges[key]

    def _range(self, method: str, bits: int, percentile: float) -> tuple[str, float, float]:
        if bits == 16 or method == "minmax":
            return "minmax", self.min, self.max
        if method == "percentile":
            return ("percentile", *self.percentile_range(percentile))
        if method == "mse":
            return ("mse", *self.mse_range(bits))
        cands = {"minmax": (self.min, self.max), "percentile": self.percentile_range(percentile)}
        cands["mse"] = self.mse_range(bits, list(cands.values()))
        errs = {k: self.quantization_mse(lo, hi, bits) for k, (lo, hi) in cands.items()}
        best = min(errs, key=lambda k: (errs[k], k != "minmax"))
        return (best, *cands[best])


def _sawtooth_integral(x: np.ndarray, s: float) -> np.ndarray:
    """Integral from 0 to x of (t - s * round(t / s))^2 dt: the rounding error energy on the grid s*Z."""
    u = x / s + 0.5
    n = np.floor(u)
    r = u - n
    return s**3 * (n / 12 + ((r - 0.5) ** 3 + 0.125) / 3)


def _range_mse(centres: np.ndarray, counts: np.ndarray, ranges: np.ndarray, bits: int) -> np.ndarray:
    """Quantization MSE of histogram `counts` at `centres` for each [lo, hi] row of `ranges`.

    Values are taken as spread uniformly within each bin: in-range bins contribute the exact mean
    rounding error over the bin (closed form of the sawtooth), clipped bins (c - bound)^2.
    """
    qmin, qmax = ACT_RANGE[bits]
    keep = counts > 0
    width = (centres[1] - centres[0]) if centres.size > 1 else 0.0
    c, h = centres[keep], counts[keep]
    out = np.empty(len(ranges))
    for i, (lo, hi) in enumerate(ranges):
        p = activation_qparams(lo, hi, bits)
        s, z = float(p.scale[0]), int(p.zero_point[0])
        q_lo, q_hi = (qmin - z) * s, (qmax - z) * s
        inside = (c >= q_lo) & (c <= q_hi)
        err = np.empty_like(c)
        if width > 0:
            a, b = c[inside] - width / 2, c[inside] + width / 2
            err[inside] = (_sawtooth_integral(b, s) - _sawtooth_integral(a, s)) / width
        else:
            err[inside] = (c[inside] - s * np.round(c[inside] / s)) ** 2
        err[~inside] = (c[~inside] - np.clip(c[~inside], q_lo, q_hi)) ** 2
        out[i] = float(np.dot(h, err) / h.sum())
    return out


@dataclass
class LayerStats:
    """Statistics of a layer's im2col input rows X: count, sum and X^T X.

    For DEPTHWISE_CONV_2D, `row_sum` is [C, K] and `xtx` is [C, K, K] (one block per input channel);
    otherwise `row_sum` is [K] and `xtx` is [K, K], K = inputs per output channel.
    """

    name: str
    rows: int = 0
    row_sum: np.ndarray | None = None
    xtx: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        """The mean input row (per channel for depthwise)."""
        return self.row_sum / max(self.rows, 1)  # type: ignore[operator]

    @property
    def hessian(self) -> np.ndarray:
        """E[x x^T], the per-row second moment (GPTQ's H up to a factor)."""
        return self.xtx / max(self.rows, 1)  # type: ignore[operator]


@dataclass
class Calibration:
    """Everything calibration measured; reusable across many `quantize_graph` calls."""

    graph_name: str
    samples: int
    tensors: dict[str, TensorStats]
    layers: dict[str, LayerStats]
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # quantized weights by (layer, bits, rounding)


def as_batch(graph: Graph, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map `data` onto the graph inputs as [N, ...] float32 batches.

    Arrays may be named after the inputs, or (single-input graphs) be the only/first array. A leading
    sample axis in front of the full input shape ([N, 1, H, W, C] for a [1, H, W, C] input) is folded.
    """
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(graph.inputs):
        if name in data:
            arr = np.asarray(data[name])
        elif len(graph.inputs) == 1 and data:
            arr = np.asarray(next(iter(data.values())))
        else:
            raise InputError(f"calibration data has no array for input {name!r} (arrays: {sorted(data)})")
        shape = graph.tensor(name).shape
        if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
            arr = arr.reshape(-1, *shape[1:])
        if arr.shape[1:] != shape[1:]:
            raise InputError(f"calibration input {name!r}: expected [N, {', '.join(map(str, shape[1:]))}], "
                             f"got {list(arr.shape)}")
        out[name] = arr.astype(np.float32)
        if i and out[name].shape[0] != out[graph.inputs[0]].shape[0]:
            raise InputError("calibration inputs have different sample counts")
    return out


def tap_all(graph: Graph) -> Graph:
    """A copy of the graph whose outputs are every node output (the interpreter returns only outputs)."""
    outs = list(dict.fromkeys([o for n in graph.nodes for o in n.outputs] + list(graph.outputs)))
    return Graph(graph.name, graph.tensors, graph.nodes, list(graph.inputs), outs, dict(graph.metadata))


def layer_rows(graph: Graph, node_name: str, x: np.ndarray) -> np.ndarray:
    """The im2col input rows of a layer: [R, K], or [R, K, C] for depthwise (K = kh*kw)."""
    node = next(n for n in graph.nodes if n.name == node_name)
    w = graph.tensor(node.inputs[1])
    out = graph.tensor(node.outputs[0])
    if node.op is Op.FULLY_CONNECTED:
        return x.reshape(-1, w.shape[1]).astype(np.float64)
    geo = {"kernel": (w.shape[1], w.shape[2]), "strides": tuple(node.attrs.get("strides", [1, 1])),
           "dilations": tuple(node.attrs.get("dilations", [1, 1])), "pads": list(node.attrs.get("pads", [0] * 4)),
           "out_hw": (out.shape[1], out.shape[2])}
    p = extract_patches(x.astype(np.float64), pad_value=0.0, **geo)  # [N, OH, OW, KH, KW, C]
    if node.op is Op.DEPTHWISE_CONV_2D:
        return p.reshape(-1, p.shape[3] * p.shape[4], p.shape[5])
    return p.reshape(-1, p.shape[3] * p.shape[4] * p.shape[5])


def _accumulate_layer(stats: LayerStats, rows: np.ndarray) -> None:
    if rows.ndim == 3:  # depthwise: [R, K, C]
        s = rows.sum(axis=0).T
        xtx = np.einsum("rkc,rlc->ckl", rows, rows, optimize=True)
    else:
        s = rows.sum(axis=0)
        xtx = rows.T @ rows
    stats.rows += rows.shape[0]
    stats.row_sum = s if stats.row_sum is None else stats.row_sum + s
    stats.xtx = xtx if stats.xtx is None else stats.xtx + xtx


def run_chunks(graph: Graph, batch: dict[str, np.ndarray], chunk: int, step: str, progress: Progress):
    """Yield (chunk outputs of every tensor) for consecutive chunks of the batch."""
    interp = Interpreter(tap_all(graph))
    n = next(iter(batch.values())).shape[0]
    for start in range(0, n, chunk):
        vals = interp.run({k: v[start:start + chunk] for k, v in batch.items()})
        vals.update({k: v[start:start + chunk] for k, v in batch.items()})
        yield vals
        progress(step, min(start + chunk, n), n)


def calibrate(graph: Graph, data: Mapping[str, np.ndarray], *, chunk: int = 50,
              progress: Progress | None = None) -> Calibration:
    """Run the float `graph` on `data` and collect tensor ranges, histograms and layer input statistics."""
    progress = progress or _noop
    batch = as_batch(graph, data)
    n = next(iter(batch.values())).shape[0]
    if n == 0:
        raise InputError("calibration data is empty")
    names = list(graph.inputs) + [o for nd in graph.nodes for o in nd.outputs]
    tstats = {name: TensorStats(name) for name in names}
    for vals in run_chunks(graph, batch, chunk, "calibrate: ranges", progress):
        for name, st in tstats.items():
            v = vals[name]
            st.min, st.max = min(st.min, float(v.min())), max(st.max, float(v.max()))
            st.count += v.size
    lstats = {nd.name: LayerStats(nd.name) for nd in layers(graph)}
    layer_inputs = {nd.name: nd.inputs[0] for nd in layers(graph)}
    for vals in run_chunks(graph, batch, chunk, "calibrate: histograms", progress):
        for name, st in tstats.items():
            if st.max > st.min:
                h, _ = np.histogram(vals[name], bins=HIST_BINS, range=(st.min, st.max))
                st.hist = h.astype(np.float64) if st.hist is None else st.hist + h
        for lname, ls in lstats.items():
            _accumulate_layer(ls, layer_rows(graph, lname, vals[layer_inputs[lname]]))
    return Calibration(graph.name, n, tstats, lstats)
