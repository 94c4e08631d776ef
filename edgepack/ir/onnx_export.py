"""Export a Graph (quantized or float) to an ONNX model in QDQ form that onnxruntime runs.

Every integer activation tensor of the IR stays an integer tensor in ONNX; each op reads its inputs
through `DequantizeLinear`, computes in float, and writes its output through `QuantizeLinear` with the
IR tensor's scale and zero point. onnxruntime's graph optimizer fuses the int8 patterns
`DQ -> Conv/Gemm/Add/... -> Q` into integer kernels (QLinearConv, QGemm, QLinearAdd, ...).

Conventions:

- opset 21 (the first with INT4 tensors and int16 QuantizeLinear/DequantizeLinear), IR version 10;
- layout: the IR is NHWC and ONNX Conv/pools are NCHW, so each CONV_2D, DEPTHWISE_CONV_2D and pool is
  wrapped in `Transpose` nodes that act on the *integer* tensors (exact), keeping the model's inputs and
  outputs NHWC like the .tflite export and the bundle's golden data;
- weights: `DequantizeLinear` of the int8 (or INT4) initializer with per-channel scales along `axis`
  (Conv: axis 0 of OIHW; depthwise: Conv with group = C, weights [C*M, 1, kh, kw], axis 0; Gemm with
  transB=1: axis 0 of [O, I]);
- biases: `DequantizeLinear` of the int32 initializer with scale s_in * s_w[c], zero point 0, axis 0.
  16x8 layers have int64 biases, which DequantizeLinear does not take: they are stored dequantized
  (float32), which only matters in the float fallback ORT uses for int16 anyway;
- fused activations become Relu / Clip between the op and its QuantizeLinear (ORT removes a Relu
  that the output's zero point already implies).

onnxruntime runs int8 QDQ layers as integer kernels, whose rounding differs from TFLM's fixed-point
requantization by about 1 LSB; INT4 weights and int16 activations run as float compute after
dequantization (onnxruntime has no integer kernels for them). Tests state the measured tolerance.

Usage: ``Path("m.onnx").write_bytes(to_onnx(qgraph))``
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgepack.errors import EdgepackError, ModelError
from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Activation, Op

OPSET = 21
IR_VERSION = 10
_ONNX_INT = {"int8": "INT8", "uint8": "UINT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
             "float32": "FLOAT"}
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise EdgepackError("exporting ONNX needs the onnx package",
                            hint="install it with: pip install 'edgepack[onnx]'") from exc
    return onnx


class _Exporter:
    """Collects ONNX nodes and initializers; maps IR tensors to ONNX value names."""

    def __init__(self, graph: Graph) -> None:
        self.onnx = _onnx()
        self.g = graph
        self.nodes: list = []
        self.inits: list = []
        self.names: set[str] = set()
        self.dq_cache: dict[str, str] = {}

    # --- naming and constants ----------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.names or name in self.g.tensors:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs, name=self.fresh(f"{outputs[0]}/{op}"),
                                                     **attrs))

    def init(self, base: str, values: np.ndarray, dtype: str | None = None, bits: int | None = None) -> str:
        """An initializer; `bits=4` stores the int8 values as an ONNX INT4 tensor."""
        name = self.fresh(base)
        values = np.asarray(values)
        if bits == 4:
            tp = self.onnx.TensorProto.INT4
            tensor = self.onnx.helper.make_tensor(name, tp, list(values.shape), values.astype(np.int8).reshape(-1))
        else:
            arr = values.astype(dtype) if dtype else values
            tensor = self.onnx.numpy_helper.from_array(arr, name)
        self.inits.append(tensor)
        return name

    def quant_inputs(self, base: str, q: QuantParams, dtype: str, *, per_channel: bool = False) -> list[str]:
        """(scale, zero point) initializer names; scalars for per-tensor parameters."""
        if per_channel:
            scale, zp = q.scale.astype(np.float32), q.zero_point
        else:
            scale, zp = np.float32(q.scale[0]), np.array(q.zero_point[0])
        return [self.init(f"{base}/scale", np.asarray(scale, np.float32)),
                self.init(f"{base}/zero_point", np.asarray(zp), dtype, q.bits if q.bits == 4 else None)]

    # --- integer <-> float -------------------------------------------------------------------------
    def dq(self, value: str, t: Tensor) -> str:
        """Float version of ONNX value `value` that holds IR tensor `t` (DequantizeLinear if integer)."""
        if t.dtype == "float32":
            return value
        if value in self.dq_cache:
            return self.dq_cache[value]
        out = self.fresh(f"{value}/dq")
        self.node("DequantizeLinear", [value, *self.quant_inputs(value, t.quant, t.dtype)], [out])  # type: ignore[arg-type]
        self.dq_cache[value] = out
        return out

    def q(self, value: str, t: Tensor, out: str) -> None:
        """Write float `value` to `out` as IR tensor `t` (QuantizeLinear if integer, Identity if float)."""
        if t.dtype == "float32":
            self.node("Identity", [value], [out])
            return
        self.node("QuantizeLinear", [value, *self.quant_inputs(out, t.quant, t.dtype)], [out])  # type: ignore[arg-type]

    def float_in(self, name: str) -> str:
        """Float value of IR activation `name`."""
        return self.dq(name, self.g.tensor(name))

    def transpose(self, value: str, perm: list[int], base: str) -> str:
        out = self.fresh(base)
        self.node("Transpose", [value], [out], perm=perm)
        return out

    def activation(self, node: Node, value: str) -> str:
        act = Activation(node.attrs.get("activation", "NONE"))
        if act is Activation.NONE:
            return value
        out = self.fresh(f"{node.name}/{act.value.lower()}")
        if act is Activation.RELU:
            self.node("Relu", [value], [out])
        else:
            lo, hi = (0.0, 6.0) if act is Activation.RELU6 else (-1.0, 1.0)
            self.node("Clip", [value, self.init(f"{out}/min", np.float32(lo)), self.init(f"{out}/max", np.float32(hi))],
                      [out])
        return out

    def weight(self, name: str, data: np.ndarray, q: QuantParams | None, axis: int) -> str:
        """Float weights: DequantizeLinear of the integer initializer (per channel along `axis`)."""
        if q is None:
            return self.init(name, data.astype(np.float32))
        qw = self.init(f"{name}/q", data, "int8", q.bits if q.bits == 4 else None)
        zp_dtype = "int8"
        per_channel = q.scale.size > 1
        scale = self.init(f"{name}/scale", q.scale.astype(np.float32) if per_channel else np.float32(q.scale[0]))
        zp_vals = np.zeros(q.scale.size if per_channel else (), np.int8)
        zp = self.init(f"{name}/zero_point", zp_vals, zp_dtype, q.bits if q.bits == 4 else None)
        out = self.fresh(f"{name}/dq")
        attrs = {"axis": axis} if per_channel else {}
        self.node("DequantizeLinear", [qw, scale, zp], [out], **attrs)
        return out

    def bias(self, node: Node) -> list[str]:
        if len(node.inputs) < 3 or not node.inputs[2]:
            return []
        t = self.g.tensor(node.inputs[2])
        if t.quant is None:
            return [self.init(t.name, t.data.astype(np.float32))]  # type: ignore[union-attr]
        if t.dtype == "int64":  # 16x8 bias: DequantizeLinear takes no int64 (see the module docstring)
            real = t.data.astype(np.float64) * t.quant.scale.astype(np.float64)  # type: ignore[union-attr]
            return [self.init(t.name, real.astype(np.float32))]
        qb = self.init(f"{t.name}/q", t.data, "int32")  # type: ignore[arg-type]
        per_channel = t.quant.scale.size > 1
        scale = self.init(f"{t.name}/scale", t.quant.scale.astype(np.float32) if per_channel
                          else np.float32(t.quant.scale[0]))
        zp = self.init(f"{t.name}/zero_point", np.zeros(t.quant.scale.size if per_channel else (), np.int32))
        out = self.fresh(f"{t.name}/dq")
        self.node("DequantizeLinear", [qb, scale, zp], [out], **({"axis": 0} if per_channel else {}))
        return [out]


def _conv_attrs(node: Node, kernel: tuple[int, int]) -> dict:
    return {"strides": list(node.attrs.get("strides", [1, 1])), "dilations": list(node.attrs.get("dilations", [1, 1])),
            "pads": list(node.attrs.get("pads", [0, 0, 0, 0])), "kernel_shape": list(kernel)}


def _nchw_op(ex: _Exporter, node: Node, build: Callable[[str], str]) -> None:
    """Transpose the integer input to NCHW, DQ, `build` the float op, Q, transpose the result back to NHWC."""
    x = node.inputs[0]
    xt, yt = ex.g.tensor(x), ex.g.tensor(node.outputs[0])
    x_nchw = ex.transpose(x, _NHWC_TO_NCHW, f"{x}/nchw")
    y_float = ex.activation(node, build(ex.dq(x_nchw, xt)))
    y_nchw = ex.fresh(f"{node.outputs[0]}/nchw")
    ex.q(y_float, yt, y_nchw)
    ex.node("Transpose", [y_nchw], [node.outputs[0]], perm=_NCHW_TO_NHWC)


def CONV_2D(ex: _Exporter, node: Node) -> None:
    w = ex.g.tensor(node.inputs[1])
    oihw = np.transpose(w.data, (0, 3, 1, 2))  # type: ignore[arg-type]
    wf = ex.weight(w.name, oihw, w.quant, 0)
    bias = ex.bias(node)

    def build(xf: str) -> str:
        out = ex.fresh(f"{node.name}/conv")
        ex.node("Conv", [xf, wf, *bias], [out], group=1, **_conv_attrs(node, (w.shape[1], w.shape[2])))
        return out
    _nchw_op(ex, node, build)


def DEPTHWISE_CONV_2D(ex: _Exporter, node: Node) -> None:
    w = ex.g.tensor(node.inputs[1])
    channels = ex.g.tensor(node.inputs[0]).shape[3]
    o1hw = np.transpose(w.data, (3, 0, 1, 2))  # type: ignore[arg-type]  # 1HW(C*M) -> (C*M)1HW
    wf = ex.weight(w.name, o1hw, w.quant, 0)
    bias = ex.bias(node)

    def build(xf: str) -> str:
        out = ex.fresh(f"{node.name}/conv")
        ex.node("Conv", [xf, wf, *bias], [out], group=channels, **_conv_attrs(node, (w.shape[1], w.shape[2])))
        return out
    _nchw_op(ex, node, build)


def FULLY_CONNECTED(ex: _Exporter, node: Node) -> None:
    x, w, y = ex.g.tensor(node.inputs[0]), ex.g.tensor(node.inputs[1]), ex.g.tensor(node.outputs[0])
    flat = ex.fresh(f"{x.name}/flat")
    ex.node("Reshape", [x.name, ex.init(f"{flat}/shape", np.array([-1, w.shape[1]], np.int64))], [flat])
    wf = ex.weight(w.name, w.data, w.quant, 0)  # type: ignore[arg-type]
    out = ex.fresh(f"{node.name}/gemm")
    ex.node("Gemm", [ex.dq(flat, x), wf, *ex.bias(node)], [out], transB=1)
    out = ex.activation(node, out)
    if len(y.shape) == 2:
        ex.q(out, y, y.name)
        return
    y2 = ex.fresh(f"{y.name}/2d")
    ex.q(out, y, y2)
    ex.node("Reshape", [y2, ex.init(f"{y.name}/shape", np.array(y.shape, np.int64))], [y.name])


def _elementwise(op: str) -> Callable[[_Exporter, Node], None]:
    def convert(ex: _Exporter, node: Node) -> None:
        ins = []
        for name in node.inputs:
            t = ex.g.tensor(name)
            if t.is_const:
                ins.append(ex.dq(ex.init(name, t.data, t.dtype), t))  # type: ignore[arg-type]
            else:
                ins.append(ex.float_in(name))
        out = ex.fresh(f"{node.name}/{op.lower()}")
        ex.node(op, ins, [out], **({"axis": int(node.attrs["axis"])} if op == "Concat" else {}))
        ex.q(ex.activation(node, out), ex.g.tensor(node.outputs[0]), node.outputs[0])
    return convert


def _pool(op: str) -> Callable[[_Exporter, Node], None]:
    def convert(ex: _Exporter, node: Node) -> None:
        attrs = {"kernel_shape": list(node.attrs["kernel"]), "strides": list(node.attrs.get("strides", [1, 1])),
                 "pads": list(node.attrs.get("pads", [0, 0, 0, 0]))}
        if op == "AveragePool":
            attrs["count_include_pad"] = 0  # TFLite excludes padding from the count

        def build(xf: str) -> str:
            out = ex.fresh(f"{node.name}/pool")
            ex.node(op, [xf], [out], **attrs)
            return out
        _nchw_op(ex, node, build)
    return convert


def _unary(build: Callable[[_Exporter, Node, str], str]) -> Callable[[_Exporter, Node], None]:
    def convert(ex: _Exporter, node: Node) -> None:
        out = build(ex, node, ex.float_in(node.inputs[0]))
        ex.q(ex.activation(node, out), ex.g.tensor(node.outputs[0]), node.outputs[0])
    return convert


def _simple(op: str) -> Callable[[_Exporter, Node, str], str]:
    def build(ex: _Exporter, node: Node, xf: str) -> str:
        out = ex.fresh(f"{node.name}/{op.lower()}")
        ex.node(op, [xf], [out])
        return out
    return build


def _clip(lo: float | None, hi: float | None) -> Callable[[_Exporter, Node, str], str]:
    def build(ex: _Exporter, node: Node, xf: str) -> str:
        a = float(node.attrs.get("min", lo)) if lo is None else lo
        b = float(node.attrs.get("max", hi)) if hi is None else hi
        out = ex.fresh(f"{node.name}/clip")
        ex.node("Clip", [xf, ex.init(f"{out}/min", np.float32(a)), ex.init(f"{out}/max", np.float32(b))], [out])
        return out
    return build


def _softmax(ex: _Exporter, node: Node, xf: str) -> str:
    beta = float(node.attrs.get("beta", 1.0))
    if beta != 1.0:
        scaled = ex.fresh(f"{node.name}/beta")
        ex.node("Mul", [xf, ex.init(f"{scaled}/value", np.float32(beta))], [scaled])
        xf = scaled
    out = ex.fresh(f"{node.name}/softmax")
    ex.node("Softmax", [xf], [out], axis=-1)
    return out


def _mean(ex: _Exporter, node: Node, xf: str) -> str:
    out = ex.fresh(f"{node.name}/mean")
    axes = ex.init(f"{out}/axes", np.array([int(a) for a in node.attrs["axes"]], np.int64))
    ex.node("ReduceMean", [xf, axes], [out], keepdims=int(bool(node.attrs.get("keepdims", True))))
    return out


def _same_params(ex: _Exporter, node: Node) -> bool:
    a, b = ex.g.tensor(node.inputs[0]), ex.g.tensor(node.outputs[0])
    return a.dtype == b.dtype and (a.quant is None) == (b.quant is None) and (
        a.quant is None or (np.array_equal(a.quant.scale, b.quant.scale)  # type: ignore[union-attr]
                            and np.array_equal(a.quant.zero_point, b.quant.zero_point)))  # type: ignore[union-attr]


def _movement(build: Callable[[_Exporter, Node, str, str], None]) -> Callable[[_Exporter, Node], None]:
    """Data movement runs on the integer tensor itself when input and output share their parameters."""
    def convert(ex: _Exporter, node: Node) -> None:
        if _same_params(ex, node):
            build(ex, node, node.inputs[0], node.outputs[0])
            return
        moved = ex.fresh(f"{node.name}/moved")
        build(ex, node, ex.float_in(node.inputs[0]), moved)
        ex.q(moved, ex.g.tensor(node.outputs[0]), node.outputs[0])
    return convert


def _reshape(ex: _Exporter, node: Node, x: str, out: str) -> None:
    shape = ex.init(f"{node.name}/shape", np.array(ex.g.tensor(node.outputs[0]).shape, np.int64))
    ex.node("Reshape", [x, shape], [out])


def _transpose(ex: _Exporter, node: Node, x: str, out: str) -> None:
    ex.node("Transpose", [x], [out], perm=[int(p) for p in node.attrs["perm"]])


def _pad(ex: _Exporter, node: Node, x: str, out: str) -> None:
    pads = np.array(node.attrs["pads"], np.int64)  # [[before, after], ...] -> ONNX [befores..., afters...]
    t = ex.g.tensor(node.inputs[0]) if x == node.inputs[0] else None
    zero = np.array(t.quant.zero_point[0] if t is not None and t.quant is not None else 0,  # real 0
                    t.dtype if t is not None else "float32")
    ex.node("Pad", [x, ex.init(f"{node.name}/pads", np.concatenate([pads[:, 0], pads[:, 1]])),
                    ex.init(f"{node.name}/value", zero)], [out], mode="constant")


def QUANTIZE(ex: _Exporter, node: Node) -> None:
    ex.q(ex.float_in(node.inputs[0]), ex.g.tensor(node.outputs[0]), node.outputs[0])


def DEQUANTIZE(ex: _Exporter, node: Node) -> None:
    ex.node("Identity", [ex.float_in(node.inputs[0])], [node.outputs[0]])


CONVERTERS: dict[Op, Callable[[_Exporter, Node], None]] = {
    Op.CONV_2D: CONV_2D,
    Op.DEPTHWISE_CONV_2D: DEPTHWISE_CONV_2D,
    Op.FULLY_CONNECTED: FULLY_CONNECTED,
    Op.ADD: _elementwise("Add"),
    Op.MUL: _elementwise("Mul"),
    Op.CONCATENATION: _elementwise("Concat"),
    Op.AVERAGE_POOL_2D: _pool("AveragePool"),
    Op.MAX_POOL_2D: _pool("MaxPool"),
    Op.MEAN: _unary(_mean),
    Op.RESHAPE: _movement(_reshape),
    Op.TRANSPOSE: _movement(_transpose),
    Op.PAD: _movement(_pad),
    Op.SOFTMAX: _unary(_softmax),
    Op.RELU: _unary(_simple("Relu")),
    Op.RELU6: _unary(_clip(0.0, 6.0)),
    Op.CLIP: _unary(_clip(None, None)),
    Op.LOGISTIC: _unary(_simple("Sigmoid")),
    Op.TANH: _unary(_simple("Tanh")),
    Op.QUANTIZE: QUANTIZE,
    Op.DEQUANTIZE: DEQUANTIZE,
}


def check_exportable(graph: Graph) -> None:
    """Raise ModelError listing every tensor or op onnxruntime cannot run in QDQ form."""
    problems = []
    for node in graph.nodes:
        if node.op not in CONVERTERS:
            problems.append(f"node {node.name!r}: op {node.op.value} has no ONNX converter")
    for t in graph.tensors.values():
        if t.dtype not in _ONNX_INT:
            problems.append(f"tensor {t.name!r}: dtype {t.dtype} has no ONNX equivalent here")
        elif t.quant is not None and not t.is_const and t.quant.per_channel:
            problems.append(f"tensor {t.name!r}: per-channel activation quantization (QuantizeLinear in ORT "
                            "takes per-tensor activations only)")
        elif t.quant is not None and t.is_const and t.quant.bits not in (4, 8, 16, 32, 64):
            problems.append(f"tensor {t.name!r}: {t.quant.bits}-bit weights (ONNX has INT4, INT8 and INT16 only)")
    if problems:
        raise ModelError(f"graph {graph.name!r} cannot be exported to ONNX: " + "; ".join(problems),
                         hint="export to .tflite instead, or quantize with bits onnxruntime runs "
                              "(w8a8, w4a8, w8a16)")


def to_onnx_model(graph: Graph):
    """The graph as an `onnx.ModelProto` (opset 21, QDQ form); see the module docstring."""
    onnx = _onnx()
    graph.validate()
    check_exportable(graph)
    ex = _Exporter(graph)
    ex.names.update(graph.tensors)
    for node in graph.nodes:
        CONVERTERS[node.op](ex, node)

    def info(name: str):
        t = graph.tensor(name)
        return onnx.helper.make_tensor_value_info(name, getattr(onnx.TensorProto, _ONNX_INT[t.dtype]), list(t.shape))

    g = onnx.helper.make_graph(ex.nodes, graph.name, [info(n) for n in graph.inputs], [info(n) for n in graph.outputs],
                               ex.inits)
    model = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="edgepack", ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def to_onnx(graph: Graph) -> bytes:
    """The graph as serialized ONNX bytes.

    Usage: ``Path("m.onnx").write_bytes(to_onnx(qgraph))``
    """
    return to_onnx_model(graph).SerializeToString()
