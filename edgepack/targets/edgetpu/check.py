"""Edge TPU compatibility analysis from Coral's documented model requirements, on the .tflite itself.

The analysis reads the flatbuffer the Edge TPU compiler would read (the model edgepack exports, or any
.tflite given to `analyze_file`) and applies the rules of https://coral.ai/docs/edgetpu/models-intro/:

1. `quantized`: tensor parameters are quantized (8-bit fixed point, int8 or uint8); int32 biases are the
   quantized form of biases. Float, int16 or int4 tensors do not map.
2. `static-size`: tensor sizes are constant at compile time. A dynamic batch (-1 in the shape signature
   with shape 1) is reported once for the graph: edgepack's export always writes batch 1.
3. `const-params`: model parameters (weights, bias tensors) are constant at compile time.
4. `rank`: tensors are 1-, 2- or 3-dimensional; beyond 3 dimensions only the 3 innermost may exceed 1.
   Applied to activation tensors (a CONV_2D filter [O, H, W, I] is a parameter, not a tensor of the data
   path, and Coral's own models have them).
5. `supported-ops`: only the operations in Coral's table map, each with its listed limitations
   (`OP_LIMITS`; compiler 16 / runtime 14 column).
6. `partition`: the compiler maps ops in execution order until the first op it cannot map; that op and
   every op after it run on the CPU, even supported ones.
7. `parameter-cache`: about 8 MB of on-chip SRAM caches parameters; what does not fit is streamed from
   host memory on every inference (https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching).

This is an estimate of what `edgetpu_compiler` decides: the compiler can still refuse an op for
limitations Coral does not document ("Operation is otherwise supported, but not mapped due to some
unspecified limitation", e.g. very large RESHAPE or RESIZE tensors); when the compiler is present its
log is the authority (`compiler.py`).

Usage: ``analysis = analyze_file("kws.tflite"); print(analysis.summary())``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.targets.edgetpu.boards import PARAMETER_CACHE_BYTES

MODELS_INTRO = "https://coral.ai/docs/edgetpu/models-intro/"
COMPILER_DOC = "https://coral.ai/docs/edgetpu/compiler/"

RULES: dict[str, tuple[str, str]] = {
    "quantized": ("tensor parameters are quantized (8-bit fixed-point numbers; int8 or uint8)",
                  MODELS_INTRO + "#model-requirements"),
    "static-size": ("tensor sizes are constant at compile-time (no dynamic sizes)",
                    MODELS_INTRO + "#model-requirements"),
    "const-params": ("model parameters (such as bias tensors) are constant at compile-time",
                     MODELS_INTRO + "#model-requirements"),
    "rank": ("tensors are either 1-, 2-, or 3-dimensional; if a tensor has more than 3 dimensions, only the 3 "
             "innermost dimensions may have a size greater than 1", MODELS_INTRO + "#model-requirements"),
    "supported-ops": ("the model uses only the operations supported by the Edge TPU",
                      MODELS_INTRO + "#supported-operations"),
    "partition": ("the compiler cannot partition the model more than once: at the first unsupported operation the "
                  "graph is split, and that operation and everything after it execute on the CPU",
                  MODELS_INTRO + "#compiling"),
    "parameter-cache": ("the Edge TPU has roughly 8 MB of SRAM to cache parameter data; parameters that do not fit "
                        "are fetched from external memory on every inference",
                        COMPILER_DOC + "#parameter-data-caching"),
}

# Coral's supported-operations table (TFLite builtin name -> its "known limitations" text, '' for none).
OP_LIMITS: dict[str, str] = {
    "ADD": "", "AVERAGE_POOL_2D": "No fused activation function.",
    "CONCATENATION": "No fused activation function. If any input is a compile-time constant tensor, there must be "
                     "only 2 inputs, and this constant tensor must be all zeroes (effectively, a zero-padding op).",
    "CONV_2D": "Must use the same dilation in x and y dimensions.",
    "DEPTHWISE_CONV_2D": "Must use the same dilation in x and y dimensions.",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "Only the default format is supported for fully-connected weights. Output tensor is "
                       "one-dimensional.",
    "L2_NORMALIZATION": "", "LOGISTIC": "", "UNIDIRECTIONAL_SEQUENCE_LSTM": "Unidirectional LSTM only.",
    "MAXIMUM": "", "MAX_POOL_2D": "No fused activation function.",
    "MEAN": "No reduction in batch dimension. If a z-reduction, the z-dimension must be multiple of 4.",
    "MINIMUM": "", "MUL": "", "PACK": "No packing in batch dimension.", "PAD": "No padding in batch dimension.",
    "PRELU": "Alpha must be 1-dimensional (only the innermost dimension can be >1 size).",
    "QUANTIZE": "", "REDUCE_MAX": "Cannot operate on the batch dimension.",
    "REDUCE_MIN": "Cannot operate on the batch dimension.", "RELU": "", "RELU6": "", "RELU_N1_TO_1": "",
    "RESHAPE": "Certain reshapes might not be mapped for large tensor sizes.",
    "RESIZE_BILINEAR": "Input/output is a 3-dimensional tensor. Depending on input/output size, this operation may "
                       "not be mapped to the Edge TPU to avoid loss in precision.",
    "RESIZE_NEAREST_NEIGHBOR": "Input/output is a 3-dimensional tensor. Depending on input/output size, this "
                               "operation may not be mapped to the Edge TPU to avoid loss in precision.",
    "RSQRT": "", "SLICE": "", "SOFTMAX": "Supports only 1-D input tensor with a max of 16,000 elements.",
    "SPACE_TO_DEPTH": "", "SPLIT": "No splitting in batch dimension.", "SQUARED_DIFFERENCE": "", "SQUEEZE": "",
    "STRIDED_SLICE": "Supported only when all strides are equal to 1 (that is, effectively a Stride op), and with "
                     "ellipsis-axis-mask == 0, and new-axis-max == 0.",
    "SUB": "", "SUM": "Cannot operate on the batch dimension.", "TANH": "", "TRANSPOSE": "", "TRANSPOSE_CONV": "",
}
SOFTMAX_MAX_ELEMENTS = 16_000

# What to do about an op the Edge TPU does not run (shown when it is the first one).
REPLACEMENTS: dict[str, str] = {
    "DEQUANTIZE": "keep the graph integer: use int8 or uint8 model I/O (io_dtype) so no DEQUANTIZE sits inside "
                  "the graph, or move it after the last Edge TPU op",
    "HARD_SWISH": "replace HARD_SWISH with RELU6 (or x * RELU6(x + 3) / 6 from ADD, MUL and RELU6, which map)",
    "GELU": "replace GELU with RELU, or with x * LOGISTIC(1.702 x) (MUL and LOGISTIC map)",
    "ELU": "replace ELU with RELU", "LEAKY_RELU": "replace LEAKY_RELU with PRELU (alpha 1-D) or RELU",
    "EXP": "avoid EXP inside the graph; a SOFTMAX or LOGISTIC may express what it computes",
    "DIV": "multiply by the constant reciprocal (MUL) instead of DIV",
    "LOG_SOFTMAX": "use SOFTMAX (1-D) and take the log on the CPU after the model",
    "GATHER": "replace GATHER with SLICE / STRIDED_SLICE (stride 1) where the indices are constant",
    "TRANSPOSE": "", "CAST": "remove CAST: keep every tensor int8/uint8",
    "ARG_MAX": "compute ARG_MAX on the CPU after the model (remove it from the graph)",
    "BATCH_MATMUL": "express the product as FULLY_CONNECTED with constant weights",
    "PADV2": "use PAD (pads with the zero point) instead of PADV2",
    "SHAPE": "export with a static batch size (batch_size=1): an open batch adds SHAPE/STRIDED_SLICE/PACK ops",
}


@dataclass
class OpVerdict:
    """Where one TFLite operator would run and why."""

    index: int  # execution order in subgraph 0
    op: str  # builtin name (or CUSTOM:code)
    name: str  # its first output tensor's name
    supported: bool  # meets every documented rule on its own
    placement: str  # "edgetpu" or "cpu"
    reasons: list[str] = field(default_factory=list)  # each names the rule it breaks
    macs: int = 0
    param_bytes: int = 0  # bytes of its constant inputs (weights, biases)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"index": self.index, "op": self.op, "name": self.name, "supported": self.supported,
                "placement": self.placement, "reasons": self.reasons, "macs": self.macs,
                "param_bytes": self.param_bytes}


@dataclass
class Finding:
    """A graph-level finding (not tied to one op); `fatal` ones make the model unusable for the target."""

    rule: str
    message: str
    fatal: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"rule": self.rule, "message": self.message, "fatal": self.fatal, "doc": RULES[self.rule][1]}


@dataclass
class Analysis:
    """Per-op verdicts, the partition point, MACs and parameter bytes on the Edge TPU, suggestions."""

    ops: list[OpVerdict]
    findings: list[Finding]
    first_cpu_op: int | None  # index of the first op the compiler cannot map (None: all map)
    suggestions: list[str]
    assumed_int8: bool = False  # dtype rule skipped: a float graph analysed as if quantized
    cache_bytes: int = PARAMETER_CACHE_BYTES

    @property
    def total_macs(self) -> int:
        """MACs of the whole model."""
        return sum(v.macs for v in self.ops)

    @property
    def edgetpu_macs(self) -> int:
        """MACs of the ops mapped to the Edge TPU."""
        return sum(v.macs for v in self.ops if v.placement == "edgetpu")

    @property
    def mac_fraction(self) -> float:
        """Fraction of the model's MACs on the Edge TPU (1.0 for a model without MACs that maps fully)."""
        if self.total_macs == 0:
            return 1.0 if self.first_cpu_op is None else 0.0
        return self.edgetpu_macs / self.total_macs

    @property
    def edgetpu_param_bytes(self) -> int:
        """Parameter bytes of the mapped ops (what the on-chip cache must hold)."""
        return sum(v.param_bytes for v in self.ops if v.placement == "edgetpu")

    @property
    def edgetpu_ops(self) -> int:
        """Number of ops mapped to the Edge TPU."""
        return sum(v.placement == "edgetpu" for v in self.ops)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the bundle's reports/edgetpu.json `analysis`)."""
        first = self.ops[self.first_cpu_op] if self.first_cpu_op is not None else None
        return {
            "rules": {k: {"text": t, "doc": u} for k, (t, u) in RULES.items()},
            "assumed_int8": self.assumed_int8,
            "ops": [v.to_dict() for v in self.ops],
            "findings": [f.to_dict() for f in self.findings],
            "edgetpu_ops": self.edgetpu_ops, "cpu_ops": len(self.ops) - self.edgetpu_ops,
            "first_cpu_op": None if first is None else {"index": first.index, "op": first.op, "name": first.name},
            "total_macs": self.total_macs, "edgetpu_macs": self.edgetpu_macs,
            "mac_fraction": round(self.mac_fraction, 6),
            "edgetpu_param_bytes": self.edgetpu_param_bytes, "parameter_cache_bytes": self.cache_bytes,
            "parameters_fit_cache": self.edgetpu_param_bytes <= self.cache_bytes,
            "suggestions": self.suggestions,
        }

    def summary(self) -> str:
        """A few lines for people: ops and MACs on the Edge TPU, the first CPU op, the cache, suggestions."""
        assumed = ", assuming int8 quantization" if self.assumed_int8 else ""
        lines = [f"Edge TPU (estimate from Coral's documented rules{assumed}): "
                 f"{self.edgetpu_ops} of {len(self.ops)} ops, {self.edgetpu_macs:,} of {self.total_macs:,} MACs "
                 f"({self.mac_fraction:.1%}) on the Edge TPU"]
        if self.first_cpu_op is not None:
            v = self.ops[self.first_cpu_op]
            lines.append(f"first op on the CPU: #{v.index} {v.op} {v.name!r}: {'; '.join(v.reasons)}")
        lines.append(f"parameters on the Edge TPU: {self.edgetpu_param_bytes:,} bytes of the "
                     f"~{self.cache_bytes / 2**20:.0f} MiB on-chip cache"
                     + ("" if self.edgetpu_param_bytes <= self.cache_bytes else " (the rest is streamed: slower)"))
        lines += [f"finding: {f.message}" for f in self.findings]
        lines += [f"suggestion: {s}" for s in self.suggestions]
        return "\n".join(lines)


def rule_text(rule: str) -> str:
    """'rule: <documented text> (<link>)', appended to every reason."""
    text, url = RULES[rule]
    return f"rule: {text} ({url})"


# ---- reading the flatbuffer ----

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
           9: "int8", 10: "float64", 17: "int4"}
_ACT_NONE = 0
_ACT_NAMES = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def _read(buf: bytes) -> Any:
    """Subgraph 0 as plain records (edgepack's TFLite reader); ModelError for a file that is not a model."""
    try:
        import tflite
    except ImportError:
        raise ModelError("reading .tflite files needs the 'tflite' package",
                         hint="install it with: pip install tflite") from None
    from edgepack.ir.tflite import _read_model  # the importer's eager reader; no IR conversion

    if len(buf) < 8 or not tflite.Model.ModelBufferHasIdentifier(buf, 0):
        raise ModelError("not a valid TFLite flatbuffer (no 'TFL3' file identifier)")
    try:
        return _read_model(tflite, buf)
    except (ValueError, IndexError, TypeError, KeyError, OverflowError) as exc:
        raise ModelError(f"not a valid TFLite flatbuffer (truncated or corrupt: {exc})") from None


class _Model:
    """Helpers over the parsed model: constant data, shapes, dtypes."""

    def __init__(self, model: Any) -> None:
        self.m = model

    def t(self, i: int) -> Any:
        return self.m.tensors[i]

    def dtype(self, i: int) -> str:
        return _DTYPES.get(self.t(i).type, f"type {self.t(i).type}")

    def is_const(self, i: int) -> bool:
        b = self.t(i).buffer
        return 0 < b < len(self.m.buffers) and self.m.buffers[b].nbytes > 0

    def nbytes(self, i: int) -> int:
        return self.m.buffers[self.t(i).buffer].nbytes if self.is_const(i) else 0

    def ints(self, i: int) -> list[int] | None:
        """The values of a constant int32/int64 tensor (axes, paddings, strides), or None."""
        if not self.is_const(i) or self.dtype(i) not in ("int32", "int64"):
            return None
        dt = "<i4" if self.dtype(i) == "int32" else "<i8"
        return [int(v) for v in np.frombuffer(self.m.buffers[self.t(i).buffer], dtype=dt)]

    def values(self, i: int) -> np.ndarray | None:
        if not self.is_const(i):
            return None
        dt = {"int8": "i1", "uint8": "u1", "int32": "<i4", "int16": "<i2", "float32": "<f4", "int64": "<i8"}.get(
            self.dtype(i))
        return None if dt is None else np.frombuffer(self.m.buffers[self.t(i).buffer], dtype=dt)

    def shape(self, i: int) -> list[int]:
        return list(self.t(i).shape)


def _effective_rank(shape: list[int]) -> int:
    """Dimensions that are not 1 (a [1, 12] tensor is 1-D for the Edge TPU)."""
    return sum(d != 1 for d in shape)


def _macs(m: _Model, op: Any) -> int:
    ins = op.inputs
    out = math.prod(m.shape(op.outputs[0])) if op.outputs else 0
    if op.code == "CONV_2D" and len(ins) > 1 and ins[1] >= 0:
        return out * math.prod(m.shape(ins[1])[1:])
    if op.code == "DEPTHWISE_CONV_2D" and len(ins) > 1 and ins[1] >= 0:
        w = m.shape(ins[1])
        return out * w[1] * w[2]
    if op.code == "FULLY_CONNECTED" and len(ins) > 1 and ins[1] >= 0:
        return out * m.shape(ins[1])[-1]
    if op.code == "TRANSPOSE_CONV" and len(ins) > 2:
        w = m.shape(ins[1])  # [O, H, W, I]; every input element meets H*W*O weights
        return math.prod(m.shape(ins[2])) * w[0] * w[1] * w[2]
    return 0


def _axes(m: _Model, op: Any, rank: int) -> list[int] | None:
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        return None
    values = m.ints(op.inputs[1])
    return None if values is None else [a % rank if rank else a for a in values]


def _limit(op: str, detail: str) -> str:
    return f"{op} limitation: {detail} (Coral: \"{OP_LIMITS[op]}\"; {rule_text('supported-ops')})"


def _op_limits(m: _Model, op: Any) -> list[str]:
    """Reasons `op` breaks the limitation Coral lists for it (empty when it meets them)."""
    code, opts, out = op.code, op.options, op.outputs[0]
    x = op.inputs[0] if op.inputs else -1
    problems = []
    act = opts.get("FusedActivationFunction", _ACT_NONE)
    if code in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION") and act != _ACT_NONE:
        problems.append(_limit(code, f"fused activation {_ACT_NAMES.get(act, act)}"))
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        dh, dw = opts.get("DilationHFactor", 1), opts.get("DilationWFactor", 1)
        if dh != dw:
            problems.append(_limit(code, f"dilation {dh} (y) differs from {dw} (x)"))
    if code == "FULLY_CONNECTED":
        if opts.get("WeightsFormat", 0) != 0:
            problems.append(_limit(code, f"weights format {opts['WeightsFormat']} is not the default"))
        if _effective_rank(m.shape(out)) > 1:
            problems.append(_limit(code, f"output shape {m.shape(out)} is not one-dimensional"))
    if code in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN") and x >= 0:
        rank = len(m.shape(x))
        axes = _axes(m, op, rank)
        if axes is None:
            problems.append(_limit(code, "the reduction axes are not a constant"))
        elif 0 in axes and rank > 1:
            problems.append(_limit(code, f"axes {axes} reduce the batch dimension"))
        elif code == "MEAN" and rank - 1 in axes and rank >= 3 and m.shape(x)[-1] % 4:
            problems.append(_limit(code, f"z-reduction over {m.shape(x)[-1]} channels, not a multiple of 4"))
    if code == "PAD" and len(op.inputs) > 1:
        pads = m.ints(op.inputs[1])
        if pads is None:
            problems.append(_limit(code, "the paddings are not a constant"))
        elif len(m.shape(x)) > 1 and pads[:2] != [0, 0]:
            problems.append(_limit(code, f"pads the batch dimension by {pads[:2]}"))
    if code in ("PACK", "SPLIT"):
        axis = opts.get("Axis", 0) if code == "PACK" else (m.ints(op.inputs[0]) or [None])[0]
        if axis == 0:
            problems.append(_limit(code, "axis 0 is the batch dimension"))
    if code == "SOFTMAX" and x >= 0:
        shape = m.shape(x)
        if _effective_rank(shape) > 1:
            problems.append(_limit(code, f"input shape {shape} is not 1-D"))
        if math.prod(shape) > SOFTMAX_MAX_ELEMENTS:
            problems.append(_limit(code, f"{math.prod(shape):,} elements (max {SOFTMAX_MAX_ELEMENTS:,})"))
    if code == "STRIDED_SLICE" and len(op.inputs) > 3:
        strides = m.ints(op.inputs[3])
        if strides is None or any(s != 1 for s in strides):
            problems.append(_limit(code, f"strides {strides} are not all 1"))
        if opts.get("EllipsisMask", 0) or opts.get("NewAxisMask", 0):
            problems.append(_limit(code, "ellipsis or new-axis mask is set"))
    if code == "CONCATENATION":
        consts = [i for i in op.inputs if i >= 0 and m.is_const(i)]
        if consts:
            values, zp = m.values(consts[0]), m.t(consts[0]).zero_point
            zero = int(zp[0]) if zp is not None else 0  # real zero is the zero point
            if len(op.inputs) != 2 or len(consts) != 1 or values is None or np.any(values != zero):
                problems.append(_limit(code, "a constant input that is not the only other input or not all zeros"))
    if code == "PRELU" and len(op.inputs) > 1 and _effective_rank(m.shape(op.inputs[1])) > 1:
        problems.append(_limit(code, f"alpha shape {m.shape(op.inputs[1])}"))
    return problems


_WEIGHTED = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2), "TRANSPOSE_CONV": (1, 3)}
# Inputs that are constant operands (shapes, axes, paddings), not data: exempt from the dtype and rank rules.
_OPERAND_INPUTS = {"RESHAPE": {1}, "MEAN": {1}, "SUM": {1}, "REDUCE_MAX": {1}, "REDUCE_MIN": {1}, "PAD": {1},
                   "TRANSPOSE": {1}, "EXPAND_DIMS": {1}, "SPLIT": {0}, "SLICE": {1, 2}, "STRIDED_SLICE": {1, 2, 3},
                   "RESIZE_BILINEAR": {1}, "RESIZE_NEAREST_NEIGHBOR": {1}, "TRANSPOSE_CONV": {0}}


def _short(name: str) -> str:
    """TFLite tensor names can be long ';'-joined lists; reasons show the first 48 characters."""
    return name if len(name) <= 48 else name[:45] + "..."


def _tensor_rules(m: _Model, op: Any, assume_int8: bool, batch_fixed: set[int]) -> list[str]:
    """Reasons from the general model requirements (dtype, static size, constant parameters, rank), one per rule."""
    found: dict[str, list[str]] = {}
    weighted = _WEIGHTED.get(op.code)
    operands = _OPERAND_INPUTS.get(op.code, set())
    for pos, i in enumerate(op.inputs):
        if i < 0 or pos in operands:
            continue
        name, dtype = _short(m.t(i).name), m.dtype(i)
        is_bias = weighted is not None and pos == weighted[1]
        is_weight = weighted is not None and pos == weighted[0]
        what = "bias" if is_bias else "weights" if is_weight else "input"
        if (is_weight or is_bias) and not m.is_const(i):
            found.setdefault("const-params", []).append(f"{what} {name!r} is not a constant")
        if not assume_int8 and dtype not in (("int32",) if is_bias else ("int8", "uint8")):
            found.setdefault("quantized", []).append(f"{what} {name!r} is {dtype}")
        if not m.is_const(i):
            _shape_rules(m, i, batch_fixed, found)
    for i in op.outputs:
        if not assume_int8 and m.dtype(i) not in ("int8", "uint8"):
            found.setdefault("quantized", []).append(f"output {_short(m.t(i).name)!r} is {m.dtype(i)}")
        _shape_rules(m, i, batch_fixed, found)
    return [f"{', '.join(dict.fromkeys(details))}; {rule_text(rule)}" for rule, details in found.items()]


def _shape_rules(m: _Model, i: int, batch_fixed: set[int], found: dict[str, list[str]]) -> None:
    t = m.t(i)
    sig = t.signature or t.shape
    dynamic = [k for k, d in enumerate(sig) if d < 0]
    if dynamic and not (dynamic == [0] and i in batch_fixed):
        found.setdefault("static-size", []).append(f"tensor {_short(t.name)!r} has dynamic size {list(sig)}")
    shape = list(t.shape)
    if len(shape) > 3 and any(d > 1 for d in shape[:-3]):
        found.setdefault("rank", []).append(f"tensor {_short(t.name)!r} has shape {shape}")


def _param_bytes(m: _Model, op: Any, assume_int8: bool) -> int:
    """Bytes of the op's constant inputs; for a float model analysed as int8, int8 weights and int32 biases."""
    total = 0
    weighted = _WEIGHTED.get(op.code)
    for pos, i in enumerate(op.inputs):
        if i < 0 or not m.is_const(i):
            continue
        if assume_int8 and m.dtype(i) == "float32":
            bias = weighted is not None and pos == weighted[1]
            total += math.prod(m.shape(i)) * (4 if bias else 1)
        else:
            total += m.nbytes(i)
    return total


def analyze_model(model: Any, assume_int8: bool = False) -> Analysis:
    """The analysis of a parsed model (`edgepack.ir.tflite._read_model` records); see the module docstring."""
    m = _Model(model)
    findings: list[Finding] = []
    # A dynamic batch alone (signature -1, shape 1) is what converters write by default; edgepack's export
    # writes the static batch, so it is one graph-level finding rather than a reason on every op.
    batch_fixed = {i for i, t in enumerate(model.tensors)
                   if t.signature and t.signature[0] < 0 and all(d >= 0 for d in t.signature[1:])
                   and t.shape and t.shape[0] == 1}
    if batch_fixed:
        findings.append(Finding("static-size", f"{len(batch_fixed)} tensor(s) have a dynamic batch dimension "
                                "(shape signature -1); edgepack's export writes batch 1, the compiler needs it static"))
    verdicts: list[OpVerdict] = []
    for op in model.ops:
        reasons: list[str] = []
        if op.code not in OP_LIMITS:
            reasons.append(f"{op.code} is not in the Edge TPU's supported operations; {rule_text('supported-ops')}")
        else:
            reasons += _op_limits(m, op)
        reasons += _tensor_rules(m, op, assume_int8, batch_fixed)
        params = _param_bytes(m, op, assume_int8)
        name = m.t(op.outputs[0]).name if op.outputs else f"op{op.index}"
        verdicts.append(OpVerdict(op.index, op.code, name, not reasons, "cpu", reasons, _macs(m, op), params))
    first = next((v.index for v in verdicts if not v.supported), None)
    for v in verdicts:
        if first is None or v.index < first:
            v.placement = "edgetpu"
        elif v.supported:
            v.reasons = [f"supported, but after the first unsupported op #{first} "
                         f"({verdicts[first].op}); {rule_text('partition')}"]
    analysis = Analysis(verdicts, findings, first, [], assume_int8)
    if analysis.edgetpu_param_bytes > analysis.cache_bytes:
        findings.append(Finding("parameter-cache", f"{analysis.edgetpu_param_bytes:,} parameter bytes on the Edge TPU "
                                f"exceed the ~{analysis.cache_bytes // 2**20} MiB on-chip cache; the rest is "
                                "streamed from host memory on every inference (slower)"))
    analysis.suggestions = _suggestions(analysis)
    return analysis


def _suggestions(a: Analysis) -> list[str]:
    out: list[str] = []
    if a.first_cpu_op is None:
        return out
    first = a.ops[a.first_cpu_op]
    text = " ".join(first.reasons)
    after = len(a.ops) - a.first_cpu_op - 1
    if "rule: tensor parameters are quantized" in text:
        floats = first.op in ("QUANTIZE", "DEQUANTIZE") or any(" float32;" in r for r in first.reasons)
        out.append("quantize the model to full int8 with integer I/O: edgepack package MODEL --target edgetpu "
                   "--calib CALIB.npz" if floats else
                   "use w8a8 only (int8 weights, int8 activations): the Edge TPU runs no int4 or int16 tensors")
    if "rule: tensor sizes are constant" in text:
        out.append("export the model with static shapes (batch_size=1, fixed input size)")
    if "rule: tensors are either 1-, 2-, or 3-dimensional" in text:
        out.append(f"reshape around {first.op} #{first.index} so that only the 3 innermost dimensions exceed 1 "
                   "(fold the outer dimensions into one)")
    if first.op in REPLACEMENTS and REPLACEMENTS[first.op]:
        out.append(REPLACEMENTS[first.op])
    elif "is not in the Edge TPU's supported operations" in text:
        out.append(f"replace {first.op} with ops from Coral's table ({MODELS_INTRO}#supported-operations)")
    mapped_after = sum(v.supported for v in a.ops[a.first_cpu_op + 1:])
    if after and mapped_after:
        cpu_macs = sum(v.macs for v in a.ops[a.first_cpu_op + 1:] if v.supported)
        out.append(f"{first.op} #{first.index} sends {mapped_after} supported op(s) after it ({cpu_macs:,} MACs) to "
                   "the CPU: replace it, or move it to the end of the graph (after the last op the Edge TPU runs) "
                   "so that everything before it maps")
    return out


def analyze_tflite(buf: bytes, assume_int8: bool = False) -> Analysis:
    """The analysis of a .tflite flatbuffer. Usage: ``analyze_tflite(Path("m.tflite").read_bytes()).summary()``"""
    return analyze_model(_read(buf), assume_int8)


def analyze_file(path: str | Path, assume_int8: bool = False) -> Analysis:
    """The analysis of a .tflite file, whatever ops it has (edgepack need not be able to import it)."""
    p = Path(path)
    try:
        return analyze_tflite(p.read_bytes(), assume_int8)
    except ModelError as exc:
        raise ModelError(f"{p}: {exc.message}", hint=exc.hint) from None


# ---- the target's check on an edgepack Graph ----

def layer_pairs(graph: Any) -> dict[str, tuple[int, int]]:
    """(weight bits, activation bits) of every quantized layer with weights."""
    from edgepack.ir.ops import WEIGHTED_OPS

    pairs = {}
    for node in graph.nodes:
        if node.op in WEIGHTED_OPS:
            w, out = graph.tensor(node.inputs[1]), graph.tensor(node.outputs[0])
            if w.quant is not None and out.quant is not None:
                pairs[node.name] = (w.quant.bits, out.quant.bits)
    return pairs


def analyze_graph(graph: Any) -> Analysis:
    """The analysis of the .tflite edgepack exports for `graph` (what the compiler would get).

    A float graph is analysed as if quantized (`assumed_int8`): it shows what would map after `--calib`.
    """
    from edgepack.ir.tflite_export import to_tflite

    return analyze_tflite(to_tflite(graph), assume_int8=not graph.is_quantized)


def check_graph(graph: Any) -> Any:
    """CompatibilityReport for target edgetpu: fatal when the bundle cannot be made, notes per op otherwise.

    Fatal: ops the golden interpreter cannot run, a float graph (quantize with --calib), layers other than
    w8a8, a graph the TFLite exporter refuses. Non-fatal (fatal=False): every op that would run on the CPU
    with its reason, graph-level findings, and the summary line (MAC fraction, parameter cache).
    """
    from edgepack.errors import EdgepackError
    from edgepack.ir.reference import prepare_all
    from edgepack.targets.base import CompatibilityReport, Issue

    _, problems = prepare_all(graph)
    issues = [Issue(node, op, why) for node, op, why in problems]
    by_name = {n.name: n for n in graph.nodes}
    if not graph.is_quantized:
        issues.append(Issue(None, None, "the model is float; the Edge TPU runs only full-int8 models ("
                            f"{rule_text('quantized')}); package it with --calib CALIB.npz to quantize it (w8a8)"))
    for name, (w, a) in layer_pairs(graph).items():
        if (w, a) != (8, 8):
            issues.append(Issue(name, by_name[name].op.value, f"w{w}a{a}: the Edge TPU runs only w8a8 "
                                f"({rule_text('quantized')})"))
    try:
        analysis = analyze_graph(graph)
    except EdgepackError as exc:
        issues.append(Issue(None, None, f"cannot export this graph to TFLite for the Edge TPU compiler: {exc.message}"))
        return CompatibilityReport("edgetpu", issues)
    for v in analysis.ops:
        if v.placement == "cpu":
            issues.append(Issue(v.name, v.op, f"runs on the CPU: {'; '.join(v.reasons)}", fatal=False))
    for f in analysis.findings:
        issues.append(Issue(None, None, f"{f.message} ({rule_text(f.rule)})", fatal=f.fatal))
    issues.append(Issue(None, None, analysis.summary().replace("\n", " | "), fatal=False))
    return CompatibilityReport("edgetpu", issues)
