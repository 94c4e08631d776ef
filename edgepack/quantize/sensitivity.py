"""Per-layer sensitivity: how much the model's output degrades when only one layer is narrowed.

For each layer with weights and each (w, a) pair the target allows besides the base pair (usually
w8a8), the quantizer builds the base model with just that layer changed, runs it in the golden
integer interpreter on the calibration data, and compares the first graph output with the float
model's (`evaluate.quality`). The sensitivity of a choice is the change of the chosen metric against
the uniform base model:

- `noise` (default): relative output noise power E||y_q - y||^2 / E||y||^2. Independent layer errors
  add in power, which is the additivity the allocator's knapsack assumes;
- `kl`: KL(float || quantized) of softmax outputs.

Narrowing weights (w4) gives positive deltas; widening activations (a16) usually gives negative ones.

Usage: `sens = measure_sensitivity(graph, calib, calibration=cal)`; `sens.delta("conv_3", (4, 8))`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.errors import QuantizationError
from edgepack.ir.graph import Graph
from edgepack.quantize.calibrate import Calibration, Progress, _noop, calibrate
from edgepack.quantize.evaluate import quality, run_real
from edgepack.quantize.quantizer import quantize_graph
from edgepack.quantize.scheme import Bits, QuantConfig, layers


@dataclass
class LayerSensitivity:
    """One layer: its op and size, and the measured quality for each alternative (w, a) pair."""

    name: str
    op: str
    weights: int
    quality: dict[Bits, dict[str, float]] = field(default_factory=dict)
    delta: dict[Bits, float] = field(default_factory=dict)


@dataclass
class Sensitivity:
    """Sensitivities of every layer relative to the uniform `base` pair, measured on calibration data."""

    base: Bits
    metric: str
    base_quality: dict[str, float]
    layers: dict[str, LayerSensitivity]

    def delta(self, layer: str, bits: Bits) -> float:
        """Metric change when only `layer` uses `bits` (0 for the base pair)."""
        return 0.0 if tuple(bits) == self.base else self.layers[layer].delta[tuple(bits)]  # type: ignore[index]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: pairs are written as 'w4a8'."""
        return {"base": _pair(self.base), "metric": self.metric, "base_quality": self.base_quality,
                "layers": [{"name": s.name, "op": s.op, "weights": s.weights,
                            "delta": {_pair(b): d for b, d in s.delta.items()},
                            "quality": {_pair(b): q for b, q in s.quality.items()}} for s in self.layers.values()]}


def _pair(bits: Bits) -> str:
    return f"w{bits[0]}a{bits[1]}"


def reference_outputs(graph: Graph, data: Mapping[str, np.ndarray]) -> np.ndarray:
    """The float model's first output on `data`."""
    return run_real(graph, data)[graph.outputs[0]]


def measure_sensitivity(graph: Graph, calib: Mapping[str, np.ndarray], config: QuantConfig | None = None, *,
                        calibration: Calibration | None = None, metric: str = "noise",
                        progress: Progress | None = None) -> Sensitivity:
    """Measure each layer's sensitivity to each allowed (w, a) pair on `calib` (see the module docstring)."""
    config = config or QuantConfig()
    progress = progress or _noop
    if metric not in ("noise", "kl"):
        raise QuantizationError(f"unknown sensitivity metric {metric!r}; use 'noise' or 'kl'")
    calibration = calibration or calibrate(graph, calib, progress=progress)
    base: Bits = (config.w_bits, config.a_bits)
    ref = reference_outputs(graph, calib)

    def measure(layer_bits: dict[str, Bits]) -> dict[str, float]:
        cfg = QuantConfig(**{**config.__dict__, "layer_bits": layer_bits})
        q = quantize_graph(graph, None, cfg, calibration=calibration)
        return quality(ref, run_real(q, calib)[graph.outputs[0]])

    base_q = measure({})
    if metric not in base_q:
        raise QuantizationError(f"metric {metric!r} needs probability outputs; use 'noise'")
    result: dict[str, LayerSensitivity] = {}
    alternatives = sorted(b for b in config.allowed if b != base)
    todo = len(layers(graph)) * len(alternatives)
    done = 0
    for node in layers(graph):
        ls = LayerSensitivity(node.name, node.op.value, graph.tensor(node.inputs[1]).size)
        for bits in alternatives:
            q = measure({node.name: bits})
            ls.quality[bits] = q
            ls.delta[bits] = q[metric] - base_q[metric]
            done += 1
            progress("sensitivity", done, todo)
        result[node.name] = ls
    return Sensitivity(base, metric, base_q, result)
