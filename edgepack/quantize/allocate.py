"""Bit-width allocation under a budget, and the Pareto front of size versus quality.

The solver is a multiple-choice knapsack solved exactly by dynamic programming, under the assumption
that layer sensitivities add up (output noise powers of independent errors do):

1. every layer gets the pairs the target allows, each with a cost (weight + bias bytes) and a value
   (its measured sensitivity delta, `sensitivity.py`); pairs whose own input + output activation bytes
   exceed `max_ram_bytes` are dropped (the largest live pair is the RAM proxy);
2. the DP over layers and cost (bytes in units of `total / resolution`, rounded up so that a solution
   within a budget in units is within it in bytes) gives, for every budget, the least total delta;
3. the budgets where that optimum improves are the predicted Pareto front, thinned to `max_points`
   evenly spread points plus the predicted optimum at the weight budget; uniform w8a8 and uniform
   w4a8 are always added as points;
4. the front is verified: each point is quantized and measured on the calibration data, and the
   point chosen under a weight budget is the best *measured* point within it, so a wrong additivity
   guess costs only optimality, never the budget;
5. with `max_accuracy_drop` and eval data, the smallest point whose measured accuracy drop on the
   eval data stays within the limit is chosen (binary search along the front, which assumes accuracy
   grows with size, then the chosen point is evaluated).

Where it can miss the optimum: the additivity assumption (interactions between layers), the rounding of
costs to DP units, and the monotonicity assumed by the accuracy search.

Usage: `alloc = allocate(graph, calib, Budget(max_weight_bytes=14_000), calibration=cal)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.errors import QuantizationError
from edgepack.ir.graph import Graph, Node
from edgepack.quantize.calibrate import Calibration, Progress, _noop, calibrate
from edgepack.quantize.evaluate import accuracy, quality, run_real
from edgepack.quantize.quantizer import quantize_graph, weight_bytes
from edgepack.quantize.scheme import (
    BIAS_BITS,
    W4A8,
    W8A8,
    Bits,
    QuantConfig,
    layers,
)
from edgepack.quantize.sensitivity import Sensitivity, measure_sensitivity, reference_outputs


@dataclass
class Budget:
    """Limits for the allocation; None means unlimited. Bytes, and the accuracy drop as a fraction (0.005)."""

    max_weight_bytes: int | None = None
    max_ram_bytes: int | None = None
    max_accuracy_drop: float | None = None


@dataclass
class Point:
    """One allocation: per-layer bits, its costs, the predicted delta and what was measured."""

    layer_bits: dict[str, Bits]
    weight_bytes: int
    ram_bytes: int
    predicted: float
    label: str = "mixed"
    measured: dict[str, float] = field(default_factory=dict)
    dominated: bool = False  # after measurement, another point is no larger and has at least its calib SQNR

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"label": self.label, "weight_bytes": self.weight_bytes, "ram_bytes": self.ram_bytes,
                "predicted_delta": self.predicted, "measured": self.measured, "dominated": self.dominated,
                "layer_bits": {k: f"w{w}a{a}" for k, (w, a) in self.layer_bits.items()}}


@dataclass
class Allocation:
    """The chosen point, the verified front and the sensitivities behind them."""

    chosen: Point
    front: list[Point]
    sensitivity: Sensitivity
    budget: Budget
    float_accuracy: float | None = None

    def config(self, base: QuantConfig) -> QuantConfig:
        """`base` with the chosen per-layer bits."""
        return QuantConfig(**{**base.__dict__, "layer_bits": dict(self.chosen.layer_bits)})


def layer_cost(graph: Graph, node: Node, bits: Bits) -> tuple[int, int]:
    """(weight + bias bytes, input + output activation bytes) of one layer at `bits`."""
    w = graph.tensor(node.inputs[1])
    out = graph.tensor(node.outputs[0])
    channels = w.shape[3] if node.op.value == "DEPTHWISE_CONV_2D" else w.shape[0]
    wbytes = (w.size * bits[0] + 7) // 8 + channels * BIAS_BITS[bits[1]] // 8
    ram = (graph.tensor(node.inputs[0]).size + out.size) * bits[1] // 8
    return wbytes, ram


def ram_bytes(qgraph: Graph) -> int:
    """RAM proxy of a quantized graph: the largest (inputs + output) activation bytes of any node."""
    best = 0
    for node in qgraph.nodes:
        names = [n for n in node.inputs if n and not qgraph.tensor(n).is_const] + node.outputs
        best = max(best, sum(qgraph.tensor(n).nbytes for n in names))
    return best


def _choices(graph: Graph, config: QuantConfig, max_ram: int | None) -> list[list[tuple[Bits, int]]]:
    out = []
    for node in layers(graph):
        opts = []
        for bits in sorted(config.allowed):
            wb, ram = layer_cost(graph, node, bits)
            if max_ram is None or ram <= max_ram:
                opts.append((bits, wb))
        if not opts:
            raise QuantizationError(f"layer {node.name!r}: no allowed bit-widths fit max RAM {max_ram} bytes",
                                    hint="raise --max-ram-kb")
        out.append(opts)
    return out


def solve_front(graph: Graph, sens: Sensitivity, config: QuantConfig, *, max_ram: int | None = None,
                resolution: int = 4000) -> list[Point]:
    """The predicted Pareto front (weight bytes vs total delta) by multiple-choice knapsack DP."""
    nodes = layers(graph)
    choices = _choices(graph, config, max_ram)
    total = sum(max(wb for _, wb in opts) for opts in choices)
    unit = max(1, math.ceil(total / resolution))
    cap = sum(math.ceil(max(wb for _, wb in opts) / unit) for opts in choices)
    dp = np.full(cap + 1, np.inf)
    dp[0] = 0.0
    picks = []
    for node, opts in zip(nodes, choices, strict=True):
        new = np.full(cap + 1, np.inf)
        pick = np.full(cap + 1, -1, dtype=np.int64)
        for i, (bits, wb) in enumerate(opts):
            c = math.ceil(wb / unit)
            cand = np.full(cap + 1, np.inf)
            cand[c:] = dp[: cap + 1 - c] + sens.delta(node.name, bits)
            better = cand < new
            new[better], pick[better] = cand[better], i
        dp = new
        picks.append(pick)
    points: list[Point] = []
    best = np.inf
    for c in range(cap + 1):
        if dp[c] < best - 1e-12:
            best = dp[c]
            layer_bits: dict[str, Bits] = {}
            cc = c
            for node, opts, pick in zip(reversed(nodes), reversed(choices), reversed(picks), strict=True):
                bits, wb = opts[int(pick[cc])]
                layer_bits[node.name] = bits
                cc -= math.ceil(wb / unit)
            layer_bits = {n.name: layer_bits[n.name] for n in nodes}
            points.append(_point(graph, layer_bits, sens))
    return points


def _point(graph: Graph, layer_bits: dict[str, Bits], sens: Sensitivity, label: str = "mixed") -> Point:
    nodes = layers(graph)
    costs = [layer_cost(graph, n, layer_bits[n.name]) for n in nodes]
    return Point(dict(layer_bits), sum(c[0] for c in costs), max(c[1] for c in costs),
                 float(sum(sens.delta(n.name, layer_bits[n.name]) for n in nodes)), label)


def _thin(points: list[Point], keep: int) -> list[Point]:
    """At most `keep` points spread evenly over the size axis (the ends are kept)."""
    if len(points) <= keep:
        return points
    idx = sorted({round(i * (len(points) - 1) / (keep - 1)) for i in range(keep)})
    return [points[i] for i in idx]


def is_dominated(p: Point, points: list[Point], key: str) -> bool:
    """Whether another of `points` beats `p`: no more weight bytes and no worse measured `key`, strictly better
    in one of them."""
    return any(q is not p and q.weight_bytes <= p.weight_bytes and q.measured[key] >= p.measured[key]
               and (q.weight_bytes < p.weight_bytes or q.measured[key] > p.measured[key]) for q in points)


def allocate(graph: Graph, calib: Mapping[str, np.ndarray], budget: Budget | None = None,
             config: QuantConfig | None = None, *, calibration: Calibration | None = None,
             sensitivity: Sensitivity | None = None, eval_data: Mapping[str, np.ndarray] | None = None,
             eval_labels: np.ndarray | None = None, max_points: int = 12,
             progress: Progress | None = None) -> Allocation:
    """Choose per-layer bits under `budget`; returns the chosen point and the verified Pareto front."""
    budget = budget or Budget()
    config = config or QuantConfig()
    progress = progress or _noop
    if budget.max_accuracy_drop is not None and (eval_data is None or eval_labels is None):
        raise QuantizationError("max_accuracy_drop needs eval data with labels", hint="pass --eval FILE.npz with 'y'")
    calibration = calibration or calibrate(graph, calib, progress=progress)
    sens = sensitivity or measure_sensitivity(graph, calib, config, calibration=calibration, progress=progress)
    nodes = layers(graph)
    full = solve_front(graph, sens, config, max_ram=budget.max_ram_bytes)
    front = _thin(full, max_points)
    if budget.max_weight_bytes is not None:  # thinning must not drop the predicted optimum at the budget
        within = [p for p in full if p.weight_bytes <= budget.max_weight_bytes]
        if within and within[-1] not in front:
            front.append(within[-1])
    for bits, label in ((W8A8, "uniform int8"), (W4A8, "uniform int4")):
        if bits in config.allowed:
            uniform = {n.name: bits for n in nodes}
            same = [p for p in front if p.layer_bits == uniform]
            if same:
                same[0].label = label
            else:
                front.append(_point(graph, uniform, sens, label))
    front.sort(key=lambda p: (p.weight_bytes, p.predicted))
    ref = reference_outputs(graph, calib)
    graphs: dict[int, Graph] = {}

    def build(p: Point) -> Graph:
        if id(p) not in graphs:
            cfg = QuantConfig(**{**config.__dict__, "layer_bits": dict(p.layer_bits)})
            graphs[id(p)] = quantize_graph(graph, None, cfg, calibration=calibration)
        return graphs[id(p)]

    for i, p in enumerate(front):
        q = build(p)
        p.weight_bytes, p.ram_bytes = weight_bytes(q), ram_bytes(q)
        p.measured.update({f"calib_{k}": v for k, v in quality(ref, run_real(q, calib)[graph.outputs[0]]).items()})
        progress("verify front", i + 1, len(front))
        graphs.pop(id(p))
    for p in front:  # by the measure the budgeted choice uses
        p.dominated = is_dominated(p, front, "calib_sqnr_db")
    feasible = [p for p in front if (budget.max_weight_bytes is None or p.weight_bytes <= budget.max_weight_bytes)
                and (budget.max_ram_bytes is None or p.ram_bytes <= budget.max_ram_bytes)]
    if not feasible:
        smallest = min(front, key=lambda p: p.weight_bytes)
        raise QuantizationError(f"no allocation fits the budget (smallest: {smallest.weight_bytes} weight bytes, "
                                f"{smallest.ram_bytes} RAM bytes)", hint="raise --max-weights-kb or --max-ram-kb")
    float_acc = None
    if eval_data is not None and eval_labels is not None:
        float_acc = accuracy(reference_outputs(graph, eval_data), eval_labels)

    def eval_acc(p: Point) -> float:
        if "eval_accuracy" not in p.measured:
            out = run_real(build(p), eval_data)[graph.outputs[0]]  # type: ignore[arg-type]
            p.measured["eval_accuracy"] = accuracy(out, eval_labels)  # type: ignore[arg-type]
            graphs.pop(id(p))
        return p.measured["eval_accuracy"]

    if budget.max_accuracy_drop is not None:
        cands = sorted(feasible, key=lambda p: p.weight_bytes)
        lo, hi = 0, len(cands) - 1
        found: Point | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            if float_acc - eval_acc(cands[mid]) <= budget.max_accuracy_drop:  # type: ignore[operator]
                found, hi = cands[mid], mid - 1
            else:
                lo = mid + 1
        if found is None:
            best = max(cands, key=eval_acc)
            raise QuantizationError(f"no allocation keeps the accuracy drop within {budget.max_accuracy_drop:.2%} "
                                    f"(float {float_acc:.2%}, best point {best.measured['eval_accuracy']:.2%})",
                                    hint="allow a larger --max-accuracy-drop or wider bit-widths")
        chosen = found
    elif budget.max_weight_bytes is not None or budget.max_ram_bytes is not None:
        chosen = max(feasible, key=lambda p: p.measured["calib_sqnr_db"])
    else:
        base = {n.name: (config.w_bits, config.a_bits) for n in nodes}
        chosen = next((p for p in front if p.layer_bits == base), None) or _point(graph, base, sens, "uniform")
    if eval_data is not None and eval_labels is not None:
        eval_acc(chosen)
        for p in front:
            if p.label.startswith("uniform"):
                eval_acc(p)
    return Allocation(chosen, front, sens, budget, float_acc)
