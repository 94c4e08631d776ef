"""Derived quantization data (TFLM's Prepare phase): computed once per node, read by every backend.

The C code generator reads the same values, so requantization parameters are defined here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.graph import INT_RANGES, Graph, Node, Tensor
from edgepack.ir.ops import Activation
from edgepack.ir.reference.fixedpoint import round_half_away_array

FLOAT_ACTIVATION_RANGES = {
    Activation.NONE: (-np.inf, np.inf),
    Activation.RELU: (0.0, np.inf),
    Activation.RELU6: (0.0, 6.0),
    Activation.RELU_N1_TO_1: (-1.0, 1.0),
}


@dataclass
class NodeContext:
    """A node with its resolved tensors and the op data its Prepare step derived."""

    node: Node
    ins: list[Tensor | None]
    out: Tensor
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def quantized(self) -> bool:
        """True when the node's output is an integer tensor."""
        return self.out.dtype != "float32"

    def attr(self, name: str, default: Any = None) -> Any:
        """The node attribute `name`, or `default`."""
        return self.node.attrs.get(name, default)

    def require_quant(self, tensor: Tensor | None) -> Any:
        """The tensor's QuantParams; ModelError if an integer tensor lacks them."""
        if tensor is None or tensor.quant is None:
            raise ModelError(f"node {self.node.name!r} ({self.node.op.value}): integer tensor "
                             f"{getattr(tensor, 'name', '?')!r} has no quantization parameters")
        return tensor.quant


def context(graph: Graph, node: Node) -> NodeContext:
    """Resolve a node's tensors."""
    ins = [graph.tensor(n) if n else None for n in node.inputs]
    return NodeContext(node, ins, graph.tensor(node.outputs[0]))


def activation_range(ctx: NodeContext, activation: str | None = None) -> tuple[Any, Any]:
    """Clamp bounds of the output: TFLM's CalculateActivationRangeQuantized, or float bounds."""
    act = Activation(activation or ctx.attr("activation", "NONE"))
    lo, hi = FLOAT_ACTIVATION_RANGES[act]
    if not ctx.quantized:
        return np.float32(lo), np.float32(hi)
    qmin, qmax = INT_RANGES[ctx.out.dtype]
    if act is Activation.NONE:
        return qmin, qmax
    q = ctx.require_quant(ctx.out)
    scale, zp = np.float32(q.scale[0]), int(q.zero_point[0])

    def quantize(f: float) -> int:
        # TFLM divides in float32 and rounds with roundf.
        return zp + int(round_half_away_array(np.float32(f) / scale))

    act_min = max(qmin, quantize(lo)) if np.isfinite(lo) else qmin
    act_max = min(qmax, quantize(hi)) if np.isfinite(hi) else qmax
    return act_min, act_max


def scalar_quant(ctx: NodeContext, tensor: Tensor | None) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized tensor."""
    q = ctx.require_quant(tensor)
    if q.scale.size != 1:
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op.value}): tensor {tensor.name!r} must be "  # type: ignore[union-attr]
                         "quantized per tensor")
    return float(q.scale[0]), int(q.zero_point[0])
