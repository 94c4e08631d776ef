"""The quantization scheme: TFLite/TFLM integer conventions, the per-layer bit-width choices, and the config.

Conventions (what TFLite's converter produces and TFLM's kernels expect):

- int8 activations: asymmetric per tensor, real = scale * (q - zero_point), q in [-128, 127]; the range
  always contains 0 so that real zero (padding, ReLU) is exact.
- int16 activations (16x8 layers): symmetric per tensor, zero_point 0, q in [-32767, 32767].
- weights: symmetric per output channel, zero_point 0; int8 in [-127, 127], int4 in [-7, 7] (stored as
  int8 values with `QuantParams.bits = 4`). Axis 0 for CONV_2D (OHWI) and FULLY_CONNECTED ([O, I]),
  axis 3 for DEPTHWISE_CONV_2D (1HW(C*M)).
- biases: int32 (int64 for 16x8 layers), scale input_scale * weight_scale[c], zero_point 0, axis 0.
- fixed output quantization: SOFTMAX and LOGISTIC 1/256 with zero point -128, TANH 1/128 with zero point 0.

A layer (a node with weights) gets a (weight bits, activation bits) pair; `QuantConfig.allowed` lists the
pairs the target can execute and the quantizer refuses anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edgepack.errors import QuantizationError
from edgepack.ir.graph import Graph, Node, QuantParams
from edgepack.ir.ops import WEIGHTED_OPS, Op

Bits = tuple[int, int]  # (weight bits, activation bits)

W8A8: Bits = (8, 8)
W4A8: Bits = (4, 8)
W8A16: Bits = (8, 16)
# What each target family can execute (issue 4): MCU (TFLM + CMSIS-NN) and LiteRT run w8a8, w4a8 and 16x8.
ALLOWED_MCU: frozenset[Bits] = frozenset({W8A8, W4A8, W8A16})
ALLOWED_LITERT: frozenset[Bits] = ALLOWED_MCU
ALLOWED_EDGETPU: frozenset[Bits] = frozenset({W8A8})

WEIGHT_QMAX = {8: 127, 4: 7}  # symmetric, -qmax..qmax (TFLite never uses -128 for weights)
ACT_RANGE = {8: (-128, 127), 16: (-32767, 32767)}
ACT_DTYPE = {8: "int8", 16: "int16"}
BIAS_DTYPE = {8: "int32", 16: "int64"}
BIAS_BITS = {8: 32, 16: 64}

# Ops whose integer output must carry fixed quantization (scale, zero point), as in TFLite.
FIXED_OUTPUT_QUANT: dict[Op, tuple[float, int]] = {
    Op.SOFTMAX: (1 / 256, -128),
    Op.LOGISTIC: (1 / 256, -128),
    Op.TANH: (1 / 128, 0),
}
# Ops whose output shares its input's quantization (TFLM requires it for pools; the others move data).
SAME_QUANT_OPS = frozenset({Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D, Op.RESHAPE, Op.PAD, Op.TRANSPOSE})
# Ops that the golden interpreter runs in int8 only.
INT8_ONLY_OPS = frozenset({Op.SOFTMAX, Op.LOGISTIC, Op.TANH})
# Every op the quantizer knows how to handle in a float graph.
SUPPORTED_OPS = frozenset(WEIGHTED_OPS | SAME_QUANT_OPS | INT8_ONLY_OPS |
                          {Op.ADD, Op.MUL, Op.CONCATENATION, Op.MEAN, Op.RELU, Op.RELU6, Op.CLIP})

RangeMethod = Literal["auto", "minmax", "percentile", "mse"]
Rounding = Literal["auto", "rtn", "gptq"]


@dataclass
class QuantConfig:
    """How to quantize a float graph.

    Usage: `QuantConfig(layer_bits={"conv_3": (4, 8)}, allowed=ALLOWED_MCU)`.

    - `w_bits`, `a_bits`: the default (weight, activation) bits of every layer with weights.
    - `layer_bits`: per-layer overrides, node name -> (w_bits, a_bits).
    - `allowed`: the (w, a) pairs the target executes; any other pair raises QuantizationError.
    - `io`: "int8" keeps integer graph inputs/outputs; "float" adds QUANTIZE/DEQUANTIZE at the edges.
    - `range_method`: activation ranges from "minmax", "percentile", "mse" or "auto" (the lowest MSE per tensor).
    - `percentile`: upper percentile for the "percentile" method (the lower one is 100 - percentile).
    - `weight_rounding`: "rtn", "gptq" or "auto" (GPTQ for 4-bit weights, round-to-nearest for 8-bit).
    - `weight_clip_search`: choose each channel's 4-bit scale by an MSE grid search instead of max |w|.
    - `bias_correction`: shift biases to cancel the mean output error of weight quantization.
    - `per_channel_fc`: per-channel FULLY_CONNECTED weights (per tensor when False, as older TFLite does).
      4-bit FULLY_CONNECTED weights are always per tensor: TFLM and LiteRT refuse per-channel int4 FC
      (`fully_connected_common.cc`: "only Int8/Int16 are supported for per channel quantization").
    - `gptq_damp`: GPTQ's Hessian dampening, as a fraction of the mean diagonal.
    """

    w_bits: int = 8
    a_bits: int = 8
    layer_bits: dict[str, Bits] = field(default_factory=dict)
    allowed: frozenset[Bits] = ALLOWED_MCU
    io: Literal["int8", "float"] = "int8"
    range_method: RangeMethod = "auto"
    percentile: float = 99.99
    weight_rounding: Rounding = "auto"
    weight_clip_search: bool = True
    bias_correction: bool = True
    per_channel_fc: bool = True
    gptq_damp: float = 0.01

    def bits(self, node: Node) -> Bits:
        """The (w_bits, a_bits) pair of a layer with weights."""
        return tuple(self.layer_bits.get(node.name, (self.w_bits, self.a_bits)))  # type: ignore[return-value]

    def per_channel(self, op: Op, w_bits: int) -> bool:
        """Whether a layer's weights get one scale per output channel (see `per_channel_fc`)."""
        return op is not Op.FULLY_CONNECTED or (self.per_channel_fc and w_bits == 8)

    def rounding(self, w_bits: int) -> str:
        """The weight rounding used at `w_bits`."""
        if self.weight_rounding == "auto":
            return "gptq" if w_bits < 8 else "rtn"
        return self.weight_rounding

    def check(self, graph: Graph) -> None:
        """Raise QuantizationError listing every problem: unknown layers, disallowed pairs, unsupported ops."""
        problems: list[str] = []
        if self.io not in ("int8", "float"):
            problems.append(f"io must be 'int8' or 'float', got {self.io!r}")
        if self.range_method not in ("auto", "minmax", "percentile", "mse"):
            problems.append(f"unknown range_method {self.range_method!r}")
        if self.weight_rounding not in ("auto", "rtn", "gptq"):
            problems.append(f"unknown weight_rounding {self.weight_rounding!r}")
        layers = {n.name: n for n in graph.nodes if n.op in WEIGHTED_OPS}
        for name in self.layer_bits:
            if name not in layers:
                problems.append(f"layer_bits names {name!r}, which is not a layer with weights")
        for node in layers.values():
            pair = self.bits(node)
            if pair not in self.allowed:
                problems.append(f"layer {node.name!r}: w{pair[0]}a{pair[1]} is not executable by the target "
                                f"(allowed: {', '.join(f'w{w}a{a}' for w, a in sorted(self.allowed))})")
            elif pair[0] not in WEIGHT_QMAX or pair[1] not in ACT_RANGE:
                problems.append(f"layer {node.name!r}: w{pair[0]}a{pair[1]} is not implemented "
                                "(weights 8 or 4 bits, activations 8 or 16 bits)")
        unsupported: dict[str, list[str]] = {}
        for node in graph.nodes:
            if node.op not in SUPPORTED_OPS:
                unsupported.setdefault(node.op.value, []).append(node.name)
        for op, names in unsupported.items():
            problems.append(f"{op} x{len(names)} (first: {names[0]}) cannot be quantized")
        if graph.is_quantized:
            problems.append("the graph is already quantized")
        if problems:
            raise QuantizationError(f"graph {graph.name!r}: cannot quantize: " + "; ".join(problems),
                                    hint="choose pairs from config.allowed and layer names from the graph's nodes")


def layers(graph: Graph) -> list[Node]:
    """The nodes with weights, in graph order."""
    return [n for n in graph.nodes if n.op in WEIGHTED_OPS]


def activation_qparams(lo: float, hi: float, bits: int) -> QuantParams:
    """Per-tensor activation quantization for a real range: asymmetric int8 or symmetric int16 (zp 0).

    As TFLite's ChooseQuantizationParams: the range is widened to contain 0 and the zero point is
    rounded (nudged) into the integer range, so real 0 is exactly representable.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if bits == 16:
        bound = max(-lo, hi)
        scale = np.float32(bound / 32767.0) if bound > 0 else np.float32(1 / 32767.0)
        return QuantParams(np.array([scale]), np.array([0]), None, 16)
    qmin, qmax = ACT_RANGE[8]
    if hi - lo <= 0:
        hi = 1.0
    scale = (hi - lo) / (qmax - qmin)
    zp = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
    return QuantParams(np.array([np.float32(scale)]), np.array([zp]), None, 8)


def fixed_qparams(op: Op) -> QuantParams:
    """The fixed int8 output quantization of SOFTMAX, LOGISTIC and TANH."""
    scale, zp = FIXED_OUTPUT_QUANT[op]
    return QuantParams(np.array([np.float32(scale)]), np.array([zp]), None, 8)


def weight_axis(op: Op) -> int:
    """The output-channel axis of a weight tensor: 3 for DEPTHWISE_CONV_2D (1HW(C*M)), else 0."""
    return 3 if op is Op.DEPTHWISE_CONV_2D else 0


def weight_matrix(op: Op, w: np.ndarray) -> np.ndarray:
    """Weights as [output channels, inputs per channel] (the layout rounding works on)."""
    if op is Op.DEPTHWISE_CONV_2D:
        return w.reshape(-1, w.shape[3]).T
    return w.reshape(w.shape[0], -1)


def from_weight_matrix(op: Op, m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of `weight_matrix`."""
    if op is Op.DEPTHWISE_CONV_2D:
        return m.T.reshape(shape)
    return m.reshape(shape)


def dequantize(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """real = scale * (q - zero_point), broadcasting per-channel parameters along `axis`."""
    scale = params.scale.astype(np.float64)
    zp = params.zero_point
    if params.per_channel:
        shape = [1] * q.ndim
        shape[params.axis] = -1  # type: ignore[index]
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return scale * (q.astype(np.float64) - zp)


def quantize_values(x: np.ndarray, params: QuantParams, dtype: str) -> np.ndarray:
    """Per-tensor quantization of real values as TFLM's QUANTIZE does (float32 divide, round half away)."""
    from edgepack.ir.graph import INT_RANGES
    from edgepack.ir.reference.fixedpoint import round_half_away_array

    lo, hi = INT_RANGES[dtype]
    q = round_half_away_array(np.asarray(x, np.float32) / np.float32(params.scale[0])).astype(np.int64)
    return np.clip(q + int(params.zero_point[0]), lo, hi).astype(dtype)
