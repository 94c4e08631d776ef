"""quantize_graph: a float Graph plus calibration data -> a full-integer Graph in TFLite/TFLM conventions.

The result runs in the golden interpreter and carries everything a TFLite writer needs: integer dtypes,
per-tensor activation QuantParams, per-channel weight QuantParams (axis, bits 8 or 4), int32/int64 biases
with scale s_in * s_w[c], fixed SOFTMAX/LOGISTIC/TANH output quantization, and explicit QUANTIZE nodes
wherever an int16 tensor meets an int8 kernel (or the reverse). Each layer with weights also stores
the requantization multipliers and shifts its Prepare derives (`attrs["requant"]`), and
`metadata["quantization"]` records the bits, ranges and rounding chosen.

Steps:

1. check the config against the graph (layer names, allowed (w, a) pairs, supported ops);
2. calibrate (or reuse a `Calibration`): activation ranges, histograms, layer input statistics;
3. walk the nodes in order, assigning each output tensor a dtype and QuantParams:
   layers take their activation bits from the config; pools, RESHAPE, PAD and TRANSPOSE keep their
   input's parameters; SOFTMAX/LOGISTIC/TANH run in int8 with fixed output parameters; ADD, MUL and
   CONCATENATION run at the widest input width; a QUANTIZE (requantize) node is inserted where the
   width (or, for CONCATENATION, the parameters) differ;
4. quantize the weights (scale search + GPTQ for 4 bits, round-to-nearest for 8 bits), correct the
   biases for the mean output error of weight rounding, and quantize the biases;
5. add QUANTIZE/DEQUANTIZE at the graph edges when `io="float"`, or requantize int16 outputs to int8.

Usage: `qgraph = quantize_graph(graph, {"input_1": x_calib}, QuantConfig(w_bits=8))`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgepack.errors import QuantizationError
from edgepack.ir.graph import INT_RANGES, Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import WEIGHTED_OPS, Op
from edgepack.ir.reference import prepare_all
from edgepack.quantize import rounding
from edgepack.quantize.calibrate import Calibration, Progress, _noop, calibrate
from edgepack.quantize.scheme import (
    ACT_DTYPE,
    BIAS_BITS,
    BIAS_DTYPE,
    FIXED_OUTPUT_QUANT,
    INT8_ONLY_OPS,
    SAME_QUANT_OPS,
    WEIGHT_QMAX,
    QuantConfig,
    activation_qparams,
    fixed_qparams,
    from_weight_matrix,
    weight_axis,
    weight_matrix,
)

_BITS_OF = {"int8": 8, "int16": 16}


def quantize_weights(graph: Graph, node: Node, cal: Calibration, config: QuantConfig,
                     w_bits: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(integer weights in the original layout, per-channel scales, info) for one layer; cached in `cal`.

    `info` holds the rounding used and the layer output MSE (on calibration data) of round-to-nearest
    and of the rounding chosen.
    """
    rnd = config.rounding(w_bits)
    per_channel = config.per_channel(node.op, w_bits)
    key = (node.name, w_bits, rnd, config.weight_clip_search, per_channel, config.gptq_damp)
    if key in cal.cache:
        return cal.cache[key]
    w_t = graph.tensor(node.inputs[1])
    w = weight_matrix(node.op, w_t.data.astype(np.float64))  # type: ignore[union-attr]
    qmax = WEIGHT_QMAX[w_bits]
    ls = cal.layers[node.name]
    h = ls.xtx
    if node.op is Op.DEPTHWISE_CONV_2D:
        mult = w.shape[0] // h.shape[0]  # type: ignore[union-attr]
        hdiag = np.repeat(np.diagonal(h, axis1=1, axis2=2), mult, axis=0)  # type: ignore[arg-type]
    else:
        hdiag = np.diag(h)  # type: ignore[arg-type]
    search = config.weight_clip_search and w_bits < 8
    if per_channel:
        scales = rounding.channel_scales(w, qmax, search=search, hdiag=hdiag)
    else:
        flat = w.reshape(1, -1)
        s = rounding.channel_scales(flat, qmax, search=search, hdiag=np.tile(hdiag, w.shape[0])[None])
        scales = np.full(w.shape[0], s[0], dtype=np.float32)
    q_rtn = rounding.rtn(w, scales, qmax)
    if rnd == "gptq":
        q = (rounding.gptq_depthwise(w, scales, qmax, h, damp=config.gptq_damp)  # type: ignore[arg-type]
             if node.op is Op.DEPTHWISE_CONV_2D else rounding.gptq(w, scales, qmax, h, damp=config.gptq_damp))
    else:
        q = q_rtn
    s64 = scales.astype(np.float64)[:, None]
    info = {"rounding": rnd, "bits": w_bits,
            "rtn_output_mse": rounding.output_mse(w, q_rtn * s64, h, ls.rows),  # type: ignore[arg-type]
            "output_mse": rounding.output_mse(w, q * s64, h, ls.rows)}  # type: ignore[arg-type]
    result = (from_weight_matrix(node.op, q, w_t.shape).astype(np.int8), scales, info)
    cal.cache[key] = result
    return result


class _Builder:
    """Builds the integer graph node by node; `cur` maps each float tensor to its current integer tensor."""

    def __init__(self, graph: Graph, cal: Calibration, config: QuantConfig) -> None:
        self.g, self.cal, self.cfg = graph, cal, config
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.cur: dict[str, str] = {}
        self.requantized: dict[tuple[str, str, float, int], str] = {}
        self.ranges: dict[str, dict[str, Any]] = {}
        self.weights: dict[str, dict[str, Any]] = {}

    # --- activations -------------------------------------------------------------------------------
    def act_params(self, fname: str, bits: int) -> QuantParams:
        """QuantParams of float tensor `fname` at `bits`, from its calibrated range."""
        method, lo, hi = self.cal.tensors[fname].range(self.cfg.range_method, bits, self.cfg.percentile)
        self.ranges.setdefault(fname, {})[f"a{bits}"] = {"method": method, "min": lo, "max": hi}
        return activation_qparams(lo, hi, bits)

    def add_tensor(self, name: str, like: str, dtype: str, quant: QuantParams) -> str:
        self.tensors[name] = Tensor(name, self.g.tensor(like).shape, dtype, quant)
        return name

    def out_name(self, fname: str, dtype: str) -> str:
        """Graph outputs keep their name unless an edge conversion will produce it."""
        if fname in self.g.outputs and (self.cfg.io == "float" or dtype != "int8"):
            return f"{fname}/{dtype}"
        return fname

    def need(self, fname: str, bits: int, params: QuantParams | None = None) -> str:
        """The integer tensor holding `fname` at `bits` (and `params` if given), requantizing if needed."""
        src = self.cur[fname]
        t = self.tensors[src]
        if _BITS_OF[t.dtype] == bits and (params is None or _same(t.quant, params)):  # type: ignore[arg-type]
            return src
        params = params or self.act_params(fname, bits)
        key = (src, ACT_DTYPE[bits], float(params.scale[0]), int(params.zero_point[0]))
        if key not in self.requantized:
            name = f"{src}/requant_{ACT_DTYPE[bits]}"
            while name in self.tensors:
                name += "_"
            self.add_tensor(name, fname, ACT_DTYPE[bits], params)
            self.nodes.append(Node(Op.QUANTIZE, name, [src], [name]))
            self.requantized[key] = name
        return self.requantized[key]

    # --- per-op rules ------------------------------------------------------------------------------
    def inputs(self) -> None:
        for name in self.g.inputs:
            consumers = [n for n in self.g.nodes if name in n.inputs]
            bits = 16 if consumers and all(n.op in WEIGHTED_OPS and self.cfg.bits(n)[1] == 16
                                           for n in consumers) and self.cfg.io == "float" else 8
            params = self.act_params(name, bits)
            if self.cfg.io == "float":
                self.tensors[name] = Tensor(name, self.g.tensor(name).shape, "float32")
                qname = self.add_tensor(f"{name}/{ACT_DTYPE[bits]}", name, ACT_DTYPE[bits], params)
                self.nodes.append(Node(Op.QUANTIZE, f"{name}/quantize", [name], [qname]))
                self.cur[name] = qname
            else:
                self.cur[name] = self.add_tensor(name, name, "int8", params)

    def node(self, node: Node) -> None:
        fout = node.outputs[0]
        if node.op in WEIGHTED_OPS:
            self.layer(node)
            return
        ins = [n for n in node.inputs if n]
        if node.op in SAME_QUANT_OPS:
            x = self.cur[ins[0]]
            xt = self.tensors[x]
            new_ins = [x]
            dtype, params = xt.dtype, QuantParams(xt.quant.scale.copy(), xt.quant.zero_point.copy(),  # type: ignore[union-attr]
                                                  None, xt.quant.bits)  # type: ignore[union-attr]
        elif node.op in INT8_ONLY_OPS:
            new_ins = [self.need(ins[0], 8)]
            dtype, params = "int8", fixed_qparams(node.op)
        elif node.op in (Op.ADD, Op.MUL, Op.CONCATENATION):
            for name in ins:
                if self.g.tensor(name).is_const:
                    self.const_activation(name)
            bits = max(_BITS_OF[self.tensors[self.cur[n]].dtype] for n in ins)
            dtype, params = ACT_DTYPE[bits], self.act_params(fout, bits)
            shared = params if node.op is Op.CONCATENATION else None
            new_ins = [self.need(n, bits, shared) for n in ins]
        else:  # MEAN, RELU, RELU6, CLIP: own output range at the input's width
            x = self.cur[ins[0]]
            bits = _BITS_OF[self.tensors[x].dtype]
            new_ins, dtype, params = [x], ACT_DTYPE[bits], self.act_params(fout, bits)
        out = self.add_tensor(self.out_name(fout, dtype), fout, dtype, params)
        self.nodes.append(Node(node.op, node.name, new_ins, [out], dict(node.attrs)))
        self.cur[fout] = out

    def const_activation(self, name: str) -> None:
        """Quantize a constant operand of ADD/MUL/CONCATENATION per tensor (int8, min/max)."""
        t = self.g.tensor(name)
        data = t.data.astype(np.float64)  # type: ignore[union-attr]
        p = activation_qparams(float(data.min()), float(data.max()), 8)
        q = np.clip(np.round(data / float(p.scale[0])) + int(p.zero_point[0]), -128, 127).astype(np.int8)
        self.tensors[name] = Tensor(name, t.shape, "int8", p, q)
        self.cur[name] = name

    def layer(self, node: Node) -> None:
        w_bits, a_bits = self.cfg.bits(node)
        fin, fout = node.inputs[0], node.outputs[0]
        x = self.need(fin, a_bits)
        s_in = np.float32(self.tensors[x].quant.scale[0])  # type: ignore[union-attr]
        qw, scales, info = quantize_weights(self.g, node, self.cal, self.cfg, w_bits)
        w_t = self.g.tensor(node.inputs[1])
        per_channel = self.cfg.per_channel(node.op, w_bits)
        w_name = w_t.name if w_t.name not in self.tensors else f"{w_t.name}/{node.name}"
        w_params = (QuantParams(scales, np.zeros(scales.size, np.int64), weight_axis(node.op), w_bits)
                    if per_channel else QuantParams(scales[:1], np.zeros(1, np.int64), None, w_bits))
        self.tensors[w_name] = Tensor(w_name, w_t.shape, "int8", w_params, qw)
        new_ins = [x, w_name]
        bias = self.bias(node, qw, scales, s_in, a_bits, per_channel)
        if bias is not None:
            new_ins.append(bias)
        out = self.add_tensor(self.out_name(fout, ACT_DTYPE[a_bits]), fout, ACT_DTYPE[a_bits],
                              self.act_params(fout, a_bits))
        self.nodes.append(Node(node.op, node.name, new_ins, [out], dict(node.attrs)))
        self.cur[fout] = out
        self.weights[node.name] = {**info, "a_bits": a_bits}

    def bias(self, node: Node, qw: np.ndarray, scales: np.ndarray, s_in: np.float32, a_bits: int,
             per_channel: bool = True) -> str | None:
        """Quantized (and, if configured, corrected) bias tensor name, or None when the layer has none.

        A per-tensor weight gets a per-tensor bias scale: LiteRT reads a bias's single `scale` and checks
        it against s_in * s_w (kernel_util.cc GetQuantizedConvolutionMultipler).
        """
        b_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        channels = scales.size
        b = (self.g.tensor(b_name).data.astype(np.float64).reshape(-1) if b_name  # type: ignore[union-attr]
             else np.zeros(channels))
        if self.cfg.bias_correction:
            w = weight_matrix(node.op, self.g.tensor(node.inputs[1]).data.astype(np.float64))  # type: ignore[union-attr]
            err = weight_matrix(node.op, qw.astype(np.float64)) * scales.astype(np.float64)[:, None] - w
            mean = self.cal.layers[node.name].mean
            if mean.ndim == 2:  # depthwise: output channel o reads input channel o // M
                mean = np.repeat(mean, channels // mean.shape[0], axis=0)
                b = b - (err * mean).sum(axis=1)
            else:
                b = b - err @ mean
        elif b_name is None:
            return None
        b_scale = (s_in * scales.astype(np.float32)).astype(np.float32)
        lo, hi = INT_RANGES["int32"] if a_bits == 8 else (-(2**63), 2**63 - 1)
        qb = np.clip(np.round(b / b_scale.astype(np.float64)), lo, hi).astype(BIAS_DTYPE[a_bits])
        name = b_name or f"{node.name}/bias"
        if name in self.tensors:
            name = f"{name}/{node.name}"
        params = (QuantParams(b_scale, np.zeros(channels, np.int64), 0, BIAS_BITS[a_bits]) if per_channel
                  else QuantParams(b_scale[:1], np.zeros(1, np.int64), None, BIAS_BITS[a_bits]))
        self.tensors[name] = Tensor(name, (channels,), BIAS_DTYPE[a_bits], params, qb)
        return name

    def outputs(self) -> None:
        for fname in self.g.outputs:
            src = self.cur[fname]
            if src == fname:
                continue
            if self.cfg.io == "float":
                self.tensors[fname] = Tensor(fname, self.g.tensor(fname).shape, "float32")
                self.nodes.append(Node(Op.DEQUANTIZE, f"{fname}/dequantize", [src], [fname]))
            else:
                producer = next((n for n in self.g.nodes if fname in n.outputs), None)
                params = (fixed_qparams(producer.op) if producer is not None and producer.op in FIXED_OUTPUT_QUANT
                          else self.act_params(fname, 8))
                self.add_tensor(fname, fname, "int8", params)
                self.nodes.append(Node(Op.QUANTIZE, f"{fname}/quantize", [src], [fname]))


def _same(a: QuantParams | None, b: QuantParams) -> bool:
    return (a is not None and np.float32(a.scale[0]) == np.float32(b.scale[0])
            and int(a.zero_point[0]) == int(b.zero_point[0]))


def quantize_graph(graph: Graph, calib: Mapping[str, np.ndarray] | None, config: QuantConfig | None = None, *,
                   calibration: Calibration | None = None, progress: Progress | None = None) -> Graph:
    """Quantize a float graph to a full-integer graph the golden interpreter (and TFLM) executes.

    `calib` maps input names to [N, ...] float arrays (it may be None when `calibration` is given, to
    reuse one calibration across many configs). Raises QuantizationError for disallowed bit pairs,
    unknown layer names or ops the quantizer cannot handle.
    """
    config = config or QuantConfig()
    config.check(graph)
    progress = progress or _noop
    if calibration is None:
        if calib is None:
            raise QuantizationError("quantize_graph needs calibration data or a Calibration")
        calibration = calibrate(graph, calib, progress=progress)
    b = _Builder(graph, calibration, config)
    b.inputs()
    for i, node in enumerate(graph.nodes):
        b.node(node)
        progress("quantize", i + 1, len(graph.nodes))
    b.outputs()
    live = {n for nd in b.nodes for n in nd.inputs} | set(b.tensors) - {n for n, t in b.tensors.items() if t.is_const}
    tensors = {n: t for n, t in b.tensors.items() if n in live}
    qgraph = Graph(graph.name, tensors, b.nodes, list(graph.inputs), list(graph.outputs), dict(graph.metadata))
    qgraph.metadata["quantization"] = {
        "io": config.io,
        "layer_bits": {n.name: list(config.bits(n)) for n in graph.nodes if n.op in WEIGHTED_OPS},
        "bias_correction": config.bias_correction,
        "range_method": config.range_method,
        "calibration_samples": calibration.samples,
        "ranges": b.ranges,
        "weights": b.weights,
    }
    qgraph.validate()
    _attach_requant(qgraph)
    return qgraph


def _attach_requant(qgraph: Graph) -> None:
    """Store each layer's output multipliers/shifts (derived once, by the golden Prepare) on its node."""
    contexts, problems = prepare_all(qgraph)
    if problems:
        name, op, reason = problems[0]
        raise QuantizationError(f"quantized graph {qgraph.name!r}: node {name!r} ({op}) cannot run: {reason}",
                                hint="this is a quantizer bug; please report it with the model")
    for ctx in contexts:
        if ctx.node.op in WEIGHTED_OPS:
            ctx.node.attrs["requant"] = {"multiplier": [int(m) for m in ctx.data["multiplier"]],
                                         "shift": [int(s) for s in ctx.data["shift"]]}


def weight_bytes(qgraph: Graph, *, include_bias: bool = True) -> int:
    """Storage bytes of the layers' weights (4-bit values count half a byte) and, optionally, biases."""
    total = 0
    for node in qgraph.nodes:
        if node.op in WEIGHTED_OPS:
            total += qgraph.tensor(node.inputs[1]).nbytes
            if include_bias and len(node.inputs) > 2 and node.inputs[2]:
                total += qgraph.tensor(node.inputs[2]).nbytes
    return total
