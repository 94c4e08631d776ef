"""Tiny ONNX models built in code, for importer tests (and anyone else who needs an .onnx in a test).

Usage: `model = onnx_models.cnn()`; `onnx_models.make_model(nodes, {"x": [1, 3, 8, 8]}, ["y"], weights)`.
Weights are seeded, so every call returns the same model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, Sequence[int | str]], outputs: Sequence[str],
               initializers: dict[str, np.ndarray] | None = None, opset: int = 17,
               name: str = "test") -> onnx.ModelProto:
    """A float32 model: `inputs` maps names to shapes (a str dim is symbolic), output shapes are inferred."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


class Weights(dict):
    """Seeded random float32 initializers: `w.rand("conv_w", 8, 3, 3, 3)` stores and returns the name."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def rand(self, name: str, *shape: int, scale: float = 0.5, positive: bool = False) -> str:
        value = self.rng.standard_normal(shape).astype(np.float32) * scale
        self[name] = np.abs(value) + 0.5 if positive else value
        return name

    def const(self, name: str, value: np.ndarray | Sequence[float | int], dtype: type = np.float32) -> str:
        self[name] = np.asarray(value, dtype=dtype)
        return name


def _bn(w: Weights, x: str, y: str, c: int, prefix: str) -> onnx.NodeProto:
    names = [w.rand(f"{prefix}_s", c, positive=True), w.rand(f"{prefix}_b", c),
             w.rand(f"{prefix}_m", c), w.rand(f"{prefix}_v", c, positive=True)]
    return helper.make_node("BatchNormalization", [x, *names], [y], epsilon=1e-3)


def cnn() -> onnx.ModelProto:
    """NCHW Conv + BN + Relu + MaxPool + Flatten + Gemm + Softmax."""
    w = Weights(1)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c1_w", 8, 3, 3, 3), w.rand("c1_b", 8)], ["c1"], pads=[1, 1, 1, 1]),
        _bn(w, "c1", "bn1", 8, "bn1"),
        helper.make_node("Relu", ["bn1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f"]),
        helper.make_node("Gemm", ["f", w.rand("fc_w", 10, 8 * 6 * 5, scale=0.1), w.rand("fc_b", 10)], ["fc"],
                         transB=1),
        helper.make_node("Softmax", ["fc"], ["probs"]),
    ]
    return make_model(nodes, {"x": [1, 3, 12, 10]}, ["probs"], w, name="cnn")


def depthwise() -> onnx.ModelProto:
    """Depthwise conv (depth multiplier 2, SAME_UPPER, stride 2) + Clip(0, 6), then a 1x1 conv, NCHW output."""
    w = Weights(2)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("dw_w", 8, 1, 3, 3)], ["dw"], group=4, strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Clip", ["dw", w.const("lo", 0.0), w.const("hi", 6.0)], ["dw6"]),
        helper.make_node("Conv", ["dw6", w.rand("pw_w", 6, 8, 1, 1), w.rand("pw_b", 6)], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 4, 9, 7]}, ["y"], w, name="depthwise")


def mlp() -> onnx.ModelProto:
    """MatMul + Add + Relu, MatMul + Add, with a symbolic batch dimension."""
    w = Weights(3)
    nodes = [
        helper.make_node("MatMul", ["x", w.rand("w1", 20, 16)], ["h"]),
        helper.make_node("Add", ["h", w.rand("b1", 16)], ["hb"]),
        helper.make_node("Relu", ["hb"], ["hr"]),
        helper.make_node("MatMul", ["hr", w.rand("w2", 16, 5)], ["o"]),
        helper.make_node("Add", ["o", w.rand("b2", 5)], ["y"]),
    ]
    return make_model(nodes, {"x": ["batch", 20]}, ["y"], w, name="mlp")


def global_pool() -> onnx.ModelProto:
    """Conv + Relu + GlobalAveragePool + Flatten; also outputs the pooled NCHW tensor."""
    w = Weights(4)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c_w", 6, 2, 3, 3), w.rand("c_b", 6)], ["c"], strides=[2, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 2, 11, 8]}, ["y", "gap"], w, name="global_pool")


def concat() -> onnx.ModelProto:
    """Two conv branches concatenated on channels, a Concat with a constant, then a conv."""
    w = Weights(5)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("a_w", 3, 2, 1, 1)], ["a"]),
        helper.make_node("Conv", ["x", w.rand("b_w", 5, 2, 3, 3)], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["ab"], axis=1),
        helper.make_node("Conv", ["ab", w.rand("c_w", 4, 8, 3, 3)], ["c"], dilations=[2, 1]),
        helper.make_node("Concat", ["c", w.rand("k", 1, 4, 3, 4)], ["y"], axis=-2),
    ]
    return make_model(nodes, {"x": [1, 2, 6, 6]}, ["y"], w, name="concat")


def pad_pool() -> onnx.ModelProto:
    """Pad + Conv + AveragePool (padding excluded from the count) + Sub/Div by constants."""
    w = Weights(6)
    nodes = [
        helper.make_node("Pad", ["x", w.const("pads", [0, 0, 1, 2, 0, 0, 2, 1], np.int64)], ["xp"]),
        helper.make_node("Conv", ["xp", w.rand("c_w", 4, 3, 3, 3)], ["c"]),
        helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Sub", ["p", w.rand("mu", 1, 4, 1, 1)], ["s"]),
        helper.make_node("Div", ["s", w.rand("sd", 4, 1, 1, positive=True)], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 3, 8, 9]}, ["y"], w, name="pad_pool")


def sigmoid_tanh() -> onnx.ModelProto:
    """Conv + Sigmoid + Mul by a [1,C,1,1] constant + Tanh, NCHW graph output."""
    w = Weights(7)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c_w", 5, 3, 3, 3, scale=1.0)], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["s", w.rand("g", 1, 5, 1, 1, scale=2.0)], ["m"]),
        helper.make_node("Tanh", ["m"], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 3, 7, 6]}, ["y"], w, name="sigmoid_tanh")


def clip() -> onnx.ModelProto:
    """Conv + Clip(-1, 1) (fused RELU_N1_TO_1) + Clip(-0.5, 0.75) (CLIP) on 2-D data after Flatten."""
    w = Weights(8)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c_w", 3, 2, 2, 2, scale=1.5)], ["c"]),
        helper.make_node("Clip", ["c", w.const("m1", -1.0), w.const("p1", 1.0)], ["c1"]),
        helper.make_node("Flatten", ["c1"], ["f"]),
        helper.make_node("Clip", ["f", w.const("m2", -0.5), w.const("p2", 0.75)], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 2, 5, 5]}, ["y"], w, name="clip")


def nhwc_io() -> onnx.ModelProto:
    """A tf2onnx-style NHWC model: Transpose in, Conv + BN (unfusable: two consumers) + Add, Transpose out."""
    w = Weights(9)
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["xt", w.rand("c_w", 4, 3, 3, 3), w.rand("c_b", 4)], ["c"], pads=[1, 1, 1, 1]),
        _bn(w, "c", "bn", 4, "bn"),
        helper.make_node("Add", ["bn", "c"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["r"]),
        helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1]),
    ]
    return make_model(nodes, {"x": [1, 6, 5, 3]}, ["y"], w, name="nhwc_io")


def reduce_mean() -> onnx.ModelProto:
    """Conv + ReduceMean over H, W (opset 18 axes input, keepdims 0) + Identity + Unsqueeze + Squeeze."""
    w = Weights(10)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c_w", 4, 2, 3, 3)], ["c"]),
        helper.make_node("ReduceMean", ["c", w.const("axes", [-1, 2], np.int64)], ["m"], keepdims=0),
        helper.make_node("Identity", ["m"], ["mi"]),
        helper.make_node("Unsqueeze", ["mi", w.const("ax0", [0], np.int64)], ["u"]),
        helper.make_node("Squeeze", ["u", w.const("ax1", [0], np.int64)], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 2, 6, 5]}, ["y"], w, opset=18, name="reduce_mean")


def shape_reshape() -> onnx.ModelProto:
    """PyTorch-style flatten: Reshape to Concat(Shape(x)[0:1], [-1]), folded to a constant at import."""
    w = Weights(11)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c_w", 3, 2, 3, 3)], ["c"]),
        helper.make_node("Shape", ["c"], ["s"], start=0, end=1),
        helper.make_node("Concat", ["s", w.const("minus1", [-1], np.int64)], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["r"]),
        helper.make_node("MatMul", ["r", w.rand("fc", 3 * 4 * 4, 7)], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 2, 6, 6]}, ["y"], w, name="shape_reshape")


def unsupported() -> onnx.ModelProto:
    """Two Resize nodes, one Erf and a grouped conv: four problems for UnsupportedOpsError."""
    w = Weights(12)
    nodes = [
        helper.make_node("Conv", ["x", w.rand("g_w", 4, 2, 3, 3)], ["g"], group=2, pads=[1, 1, 1, 1], name="gconv"),
        helper.make_node("Resize", ["g", "", w.const("sc", [1, 1, 2, 2])], ["r1"], mode="nearest", name="up1"),
        helper.make_node("Erf", ["r1"], ["e"], name="erf"),
        helper.make_node("Resize", ["e", "", w.const("sc2", [1, 1, 0.5, 0.5])], ["r2"], mode="nearest", name="dn"),
        helper.make_node("Relu", ["r2"], ["y"]),
    ]
    return make_model(nodes, {"x": [1, 4, 8, 8]}, ["y"], w, name="unsupported")


ALL_FLOAT = {f.__name__: f for f in (cnn, depthwise, mlp, global_pool, concat, pad_pool, sigmoid_tanh, clip,
                                     nhwc_io, reduce_mean, shape_reshape)}


def gemm_bn_3d() -> onnx.ModelProto:
    """Gemm (alpha, beta, transB=0) + BN folded + Relu6 clip, and a MatMul on 3-D data + Softmax, a Transpose
    that swaps H and W of NCHW data, and Softmax over the last axis of a 4-D tensor."""
    w = Weights(13)
    nodes = [
        helper.make_node("Gemm", ["x", w.rand("g_w", 6, 4), w.rand("g_b", 1, 4)], ["g"], alpha=0.5, beta=2.0),
        _bn(w, "g", "gb", 4, "gbn"),
        helper.make_node("Clip", ["gb", w.const("zero", 0.0), w.const("six", 6.0)], ["y1"]),
        helper.make_node("MatMul", ["seq", w.rand("m_w", 3, 5)], ["m"]),
        helper.make_node("Softmax", ["m"], ["y2"], axis=2),
        helper.make_node("Conv", ["img", w.rand("c_w", 3, 2, 1, 1)], ["c"]),
        helper.make_node("Transpose", ["c"], ["ct"], perm=[0, 1, 3, 2]),
        helper.make_node("MaxPool", ["ct"], ["cp"], kernel_shape=[2, 2], strides=[1, 1], auto_pad="SAME_LOWER"),
        helper.make_node("Softmax", ["cp"], ["y3"]),
    ]
    return make_model(nodes, {"x": [1, 6], "seq": [1, 7, 3], "img": [1, 2, 5, 4]}, ["y1", "y2", "y3"], w,
                      name="gemm_bn_3d")


ALL_FLOAT["gemm_bn_3d"] = gemm_bn_3d
