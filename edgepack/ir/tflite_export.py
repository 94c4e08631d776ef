"""Export a Graph (float, int8, int4-weight or 16x8) to a TFLite flatbuffer that LiteRT and TFLM run.

One function per IR op maps a node to a TFLite builtin with its options. Explicit pads become
SAME or VALID when they equal TFLite's own padding; anything else gets a PAD op in front.
Integer outputs run bit-exactly under tflite-micro against the golden interpreter (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from edgepack.errors import ModelError
from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Activation, Op
from edgepack.ir.tflite_writer import ACTIVATIONS, SAME, VALID, ModelBuilder


class _Exporter:
    """Maps IR tensors to TFLite tensor indices while ops are emitted in graph order."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.m = ModelBuilder()
        self.index: dict[str, int] = {}

    def tensor(self, name: str) -> int:
        if not name:
            return -1
        if name not in self.index:
            self.index[name] = self.add(self.graph.tensor(name))
        return self.index[name]

    def add(self, t: Tensor, name: str | None = None, shape: tuple[int, ...] | None = None) -> int:
        q: QuantParams | None = t.quant
        dtype = "int4" if q is not None and q.bits == 4 else t.dtype
        return self.m.tensor(name or t.name, list(shape or t.shape), dtype, t.data,
                             scale=q.scale if q is not None else None,
                             zero_point=q.zero_point if q is not None else None,
                             axis=q.axis if q is not None and q.axis is not None else 0)

    def const(self, name: str, values: Any) -> int:
        return self.m.const(name, values)


def _padding(ex: _Exporter, node: Node, kernel: tuple[int, int], dilations: tuple[int, int]) -> tuple[int, int]:
    """(TFLite padding enum, input index): SAME/VALID when they match the node's pads, else a PAD op in front."""
    x = ex.graph.tensor(node.inputs[0])
    out = ex.graph.tensor(node.outputs[0])
    strides = node.attrs.get("strides", [1, 1])
    pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
    same = []
    for i in range(2):
        eff = (kernel[i] - 1) * dilations[i] + 1
        o = math.ceil(x.shape[1 + i] / strides[i])
        total = max((o - 1) * strides[i] + eff - x.shape[1 + i], 0)
        same.append((total // 2, total - total // 2, o))
    if pads == [same[0][0], same[1][0], same[0][1], same[1][1]] and out.shape[1:3] == (same[0][2], same[1][2]):
        return SAME, ex.tensor(node.inputs[0])
    valid_hw = tuple((x.shape[1 + i] - ((kernel[i] - 1) * dilations[i] + 1)) // strides[i] + 1 for i in range(2))
    if pads == [0, 0, 0, 0] and out.shape[1:3] == valid_hw:
        return VALID, ex.tensor(node.inputs[0])
    if node.op not in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D):
        # A PAD in front would change a pool's result (padding counts / can win), so there is no equivalent.
        raise ModelError(f"node {node.name!r}: {node.op.value} with pads {pads} is neither SAME nor VALID padding, "
                         "which TFLite pools require")
    top, left, bottom, right = pads
    padded_shape = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
    padded = ex.add(x, name=f"{node.name}/pad", shape=padded_shape)
    paddings = ex.const(f"{node.name}/paddings", [[0, 0], [top, bottom], [left, right], [0, 0]])
    ex.m.op("PAD", [ex.tensor(node.inputs[0]), paddings], [padded])
    return VALID, padded


def _act(node: Node) -> int:
    return ACTIVATIONS[Activation(node.attrs.get("activation", "NONE")).value]


def _ins(ex: _Exporter, node: Node) -> list[int]:
    return [ex.tensor(n) for n in node.inputs]


def CONV_2D(ex: _Exporter, node: Node) -> None:
    w = ex.graph.tensor(node.inputs[1])
    dil = tuple(node.attrs.get("dilations", [1, 1]))
    padding, x = _padding(ex, node, (w.shape[1], w.shape[2]), dil)
    sh, sw = node.attrs.get("strides", [1, 1])
    ex.m.op("CONV_2D", [x, *_ins(ex, node)[1:]], [ex.tensor(node.outputs[0])], "Conv2DOptions", Padding=padding,
            StrideH=sh, StrideW=sw, DilationHFactor=dil[0], DilationWFactor=dil[1],
            FusedActivationFunction=_act(node))


def DEPTHWISE_CONV_2D(ex: _Exporter, node: Node) -> None:
    w = ex.graph.tensor(node.inputs[1])
    dil = tuple(node.attrs.get("dilations", [1, 1]))
    padding, x = _padding(ex, node, (w.shape[1], w.shape[2]), dil)
    sh, sw = node.attrs.get("strides", [1, 1])
    ex.m.op("DEPTHWISE_CONV_2D", [x, *_ins(ex, node)[1:]], [ex.tensor(node.outputs[0])], "DepthwiseConv2DOptions",
            Padding=padding, StrideH=sh, StrideW=sw, DepthMultiplier=int(node.attrs.get("depth_multiplier", 1)),
            DilationHFactor=dil[0], DilationWFactor=dil[1], FusedActivationFunction=_act(node))


def FULLY_CONNECTED(ex: _Exporter, node: Node) -> None:
    keep = len(ex.graph.tensor(node.outputs[0]).shape) > 2
    ex.m.op("FULLY_CONNECTED", _ins(ex, node), [ex.tensor(node.outputs[0])], "FullyConnectedOptions",
            FusedActivationFunction=_act(node), KeepNumDims=keep)


def _binary(name: str, options: str) -> Callable[[_Exporter, Node], None]:
    def convert(ex: _Exporter, node: Node) -> None:
        ex.m.op(name, _ins(ex, node), [ex.tensor(node.outputs[0])], options, FusedActivationFunction=_act(node))
    return convert


def _pool(name: str) -> Callable[[_Exporter, Node], None]:
    def convert(ex: _Exporter, node: Node) -> None:
        kh, kw = node.attrs["kernel"]
        padding, x = _padding(ex, node, (kh, kw), (1, 1))
        sh, sw = node.attrs.get("strides", [1, 1])
        ex.m.op(name, [x], [ex.tensor(node.outputs[0])], "Pool2DOptions", Padding=padding, StrideH=sh, StrideW=sw,
                FilterHeight=kh, FilterWidth=kw, FusedActivationFunction=_act(node))
    return convert


def MEAN(ex: _Exporter, node: Node) -> None:
    axes = ex.const(f"{node.name}/axes", [int(a) for a in node.attrs["axes"]])
    ex.m.op("MEAN", [ex.tensor(node.inputs[0]), axes], [ex.tensor(node.outputs[0])], "ReducerOptions",
            KeepDims=bool(node.attrs.get("keepdims", True)))


def RESHAPE(ex: _Exporter, node: Node) -> None:
    shape = ex.const(f"{node.name}/shape", list(ex.graph.tensor(node.outputs[0]).shape))
    ex.m.op("RESHAPE", [ex.tensor(node.inputs[0]), shape], [ex.tensor(node.outputs[0])])


def CONCATENATION(ex: _Exporter, node: Node) -> None:
    ex.m.op("CONCATENATION", _ins(ex, node), [ex.tensor(node.outputs[0])], "ConcatenationOptions",
            Axis=int(node.attrs["axis"]), FusedActivationFunction=_act(node))


def PAD(ex: _Exporter, node: Node) -> None:
    paddings = ex.const(f"{node.name}/paddings", node.attrs["pads"])
    ex.m.op("PAD", [ex.tensor(node.inputs[0]), paddings], [ex.tensor(node.outputs[0])])


def TRANSPOSE(ex: _Exporter, node: Node) -> None:
    perm = ex.const(f"{node.name}/perm", node.attrs["perm"])
    ex.m.op("TRANSPOSE", [ex.tensor(node.inputs[0]), perm], [ex.tensor(node.outputs[0])])


def SOFTMAX(ex: _Exporter, node: Node) -> None:
    ex.m.op("SOFTMAX", _ins(ex, node), [ex.tensor(node.outputs[0])], "SoftmaxOptions",
            Beta=float(node.attrs.get("beta", 1.0)))


def CLIP(ex: _Exporter, node: Node) -> None:
    if (float(node.attrs.get("min")), float(node.attrs.get("max"))) != (-1.0, 1.0):
        raise ModelError(f"node {node.name!r}: CLIP({node.attrs.get('min')}, {node.attrs.get('max')}) has no TFLite "
                         "builtin (only RELU, RELU6 and RELU_N1_TO_1)")
    ex.m.op("RELU_N1_TO_1", _ins(ex, node), [ex.tensor(node.outputs[0])])


def _plain(name: str) -> Callable[[_Exporter, Node], None]:
    def convert(ex: _Exporter, node: Node) -> None:
        ex.m.op(name, _ins(ex, node), [ex.tensor(node.outputs[0])])
    return convert


CONVERTERS: dict[Op, Callable[[_Exporter, Node], None]] = {
    Op.CONV_2D: CONV_2D,
    Op.DEPTHWISE_CONV_2D: DEPTHWISE_CONV_2D,
    Op.FULLY_CONNECTED: FULLY_CONNECTED,
    Op.ADD: _binary("ADD", "AddOptions"),
    Op.MUL: _binary("MUL", "MulOptions"),
    Op.AVERAGE_POOL_2D: _pool("AVERAGE_POOL_2D"),
    Op.MAX_POOL_2D: _pool("MAX_POOL_2D"),
    Op.MEAN: MEAN,
    Op.RESHAPE: RESHAPE,
    Op.CONCATENATION: CONCATENATION,
    Op.PAD: PAD,
    Op.TRANSPOSE: TRANSPOSE,
    Op.SOFTMAX: SOFTMAX,
    Op.RELU: _plain("RELU"),
    Op.RELU6: _plain("RELU6"),
    Op.CLIP: CLIP,
    Op.LOGISTIC: _plain("LOGISTIC"),
    Op.TANH: _plain("TANH"),
    Op.QUANTIZE: _plain("QUANTIZE"),
    Op.DEQUANTIZE: _plain("DEQUANTIZE"),
}


def to_tflite(graph: Graph) -> bytes:
    """The graph as a .tflite flatbuffer (schema v3, one subgraph).

    Usage: ``Path("m.tflite").write_bytes(to_tflite(graph))``
    """
    graph.validate()
    ex = _Exporter(graph)
    for name in graph.inputs:
        ex.tensor(name)
    for node in graph.nodes:
        CONVERTERS[node.op](ex, node)
    for name in graph.outputs:
        ex.tensor(name)
    return ex.m.to_bytes([ex.index[n] for n in graph.inputs], [ex.index[n] for n in graph.outputs],
                         description=f"edgepack {graph.name}")
