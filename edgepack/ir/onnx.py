"""ONNX importer: `from_onnx(path_or_model) -> Graph` and `list_ops(path)` for `edgepack check`.

Float models with the default-domain opset 13-21 and static shapes are supported. The import runs in steps:

1. Read the file (size bound, protobuf errors become ModelError), check the opset and refuse external data.
2. Fix a symbolic batch dimension of the graph inputs to 1 and run ONNX shape inference.
3. Rename Identity/Dropout away and fold nodes whose inputs are all constant (Constant, Shape of a static
   tensor, shape arithmetic) with ONNX's reference evaluator.
4. Convert every node with the per-op functions in `onnx_ops.py`. A node that cannot be mapped is recorded,
   not raised, so one `UnsupportedOpsError` lists every unsupported op with its count and first node.
5. Transpose NHWC-held graph outputs back to ONNX layout, tidy the layout plumbing and validate.

The resulting Graph has exactly the ONNX model's input and output names and shapes (NCHW stays NCHW at the
edges), so it takes the same arrays as onnxruntime.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError, ModelError, UnsupportedOpsError
from edgepack.ir.graph import Graph
from edgepack.ir.loader import read_model_file
from edgepack.ir.onnx_context import TO_NCHW, Context, UnsupportedVariantError, simplify
from edgepack.ir.onnx_ops import CONVERTERS, OnnxNode
from edgepack.ir.ops import Op

MAX_FILE_BYTES = 1 << 30
OPSETS = range(13, 22)
DEFAULT_DOMAINS = ("", "ai.onnx")
FLOAT = 1  # onnx.TensorProto.FLOAT


@dataclass
class _Model:
    """The ONNX graph after steps 1-3, as plain Python values."""

    label: str
    name: str
    opset: int
    nodes: list[OnnxNode]
    inputs: list[str]
    outputs: list[str]
    shapes: dict[str, tuple[int | None, ...]]
    consts: dict[str, np.ndarray]
    notes: list[tuple[OnnxNode, str]] = field(default_factory=list)  # nodes removed in step 3, and why
    problem: str | None = None  # model-level reason nothing can be converted (opset), for list_ops
    source: str | None = None  # file basename


def from_onnx(path_or_model: str | os.PathLike[str] | Any) -> Graph:
    """Import a float ONNX model (file path or `onnx.ModelProto`) as an NHWC Graph.

    Usage: `graph = from_onnx("model.onnx")`.
    """
    model = _prepare(path_or_model)
    if model.problem:
        raise ModelError(f"{model.label}: {model.problem}")
    ctx, problems, _, _ = _convert(model)
    if problems:
        raise UnsupportedOpsError(model.label, [(op, len(names), names[0], why) for (op, why), names
                                                in problems.items()])
    return _finish(model, ctx)


def list_ops(path: str | os.PathLike[str] | Any) -> list[dict[str, Any]]:
    """Every op of an ONNX model with its count and whether it can be imported, without raising for
    unsupported ops (ModelError only when the file cannot be read).

    Usage: `for row in list_ops("model.onnx"): print(row["op"], row["count"], row["supported"], row["reason"])`.
    Rows have keys op, count, supported, reason and first_node; an op appears once per distinct reason.
    """
    model = _prepare(path_or_model=path, strict=False)
    rows: dict[tuple[str, bool, str], list[str]] = {}
    for node, why in model.notes:
        rows.setdefault((node.op_type, True, why), []).append(node.name)
    if model.problem:
        for node in model.nodes:
            rows.setdefault((_op_label(node), False, model.problem), []).append(node.name)
    else:
        try:
            _, problems, converted, unchecked = _convert(model)
        except ModelError as exc:
            for node in model.nodes:
                rows.setdefault((_op_label(node), False, exc.message), []).append(node.name)
        else:
            for node in converted:
                rows.setdefault((node.op_type, True, ""), []).append(node.name)
            for node in unchecked:
                rows.setdefault((node.op_type, True, "not fully checked: an input comes from an unsupported op"),
                                []).append(node.name)
            for (op, why), names in problems.items():
                rows.setdefault((op, False, why), []).extend(names)
    return [{"op": op, "count": len(names), "supported": ok, "reason": why, "first_node": names[0]}
            for (op, ok, why), names in rows.items()]


# -- steps 1-3 ------------------------------------------------------------------------------------------------

def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise EdgepackError("reading ONNX models needs the onnx package", hint="pip install 'edgepack[onnx]'") from None
    return onnx


def _read(path_or_model: Any) -> tuple[Any, str, str, str | None]:
    """(ModelProto, label for messages, graph name, source file basename)."""
    onnx = _onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        name = path_or_model.graph.name or "model"
        model = onnx.ModelProto()
        model.CopyFrom(path_or_model)  # inputs get their batch fixed below; leave the caller's model alone
        return model, f"<onnx model {name!r}>", name, None
    path = Path(path_or_model)
    label = str(path_or_model)
    data = read_model_file(path, MAX_FILE_BYTES, "ONNX")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends for garbage or truncated files
        raise ModelError(f"{label}: not a valid ONNX file ({type(exc).__name__}: {exc})",
                         hint="check that the file is complete and really an .onnx model") from None
    if not model.HasField("graph") or not model.ir_version or (not model.graph.node and not model.graph.output):
        raise ModelError(f"{label}: not a valid ONNX file (no graph)",
                         hint="check that the file is complete and really an .onnx model")
    return model, label, path.stem, path.name


def _prepare(path_or_model: Any, strict: bool = True) -> _Model:
    onnx = _onnx()
    from onnx import numpy_helper

    # onnx.checker is not run: it rejects models onnxruntime accepts (e.g. outputs declared without a shape)
    model, label, name, source = _read(path_or_model)
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 0)
    problem = None if opset in OPSETS else f"default-domain opset {opset} is not supported (need 13-21)"
    graph = model.graph
    for tensor in list(graph.initializer) + [a.t for n in graph.node for a in n.attribute if a.HasField("t")]:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelError(f"{label}: tensor {tensor.name!r} keeps its data in an external file, which edgepack "
                             "does not read", hint="save the model with all tensors inside the .onnx file")
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in consts]
    for value in graph.input:
        if value.name in consts:
            continue
        ttype = value.type.tensor_type
        if ttype.elem_type != FLOAT:
            raise ModelError(f"{label}: input {value.name!r} is {onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)}"
                             "; only float32 models can be imported", hint="quantized models: use the .tflite file")
        dims = ttype.shape.dim
        if dims and not dims[0].HasField("dim_value") or (dims and dims[0].dim_value == 0):
            dims[0].Clear()
            dims[0].dim_value = 1  # a symbolic batch: edgepack runs one sample at a time
        dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value") or d.dim_value <= 0]
        if (dynamic or not ttype.HasField("shape")) and strict:
            raise ModelError(f"{label}: input {value.name!r} has dynamic dimension(s) {dynamic or 'all'}",
                             hint="export the model with fixed input sizes (only the batch may be symbolic)")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise ModelError(f"{label}: ONNX shape inference failed ({exc})".split("\n")[0]) from None
    shapes: dict[str, tuple[int | None, ...]] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        ttype = value.type.tensor_type
        if ttype.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim)
            if value.name not in shapes or None in shapes[value.name]:
                shapes[value.name] = dims
    nodes = [_plain(node, i) for i, node in enumerate(graph.node)]
    result = _Model(label, name, opset, nodes, inputs, [o.name for o in graph.output], shapes, consts,
                    problem=problem, source=source)
    if problem is None:
        _drop_identities(result)
        _fold_constants(result)
    return result


def _plain(proto: Any, index: int) -> OnnxNode:
    from onnx import helper, numpy_helper

    attrs: dict[str, Any] = {}
    for attr in proto.attribute:
        value = helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif attr.HasField("t"):
            value = numpy_helper.to_array(attr.t)
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        attrs[attr.name] = value
    return OnnxNode(proto.op_type, proto.name or f"{proto.op_type}_{index}", list(proto.input), list(proto.output),
                    attrs, proto.domain, proto)


def _drop_identities(model: _Model) -> None:
    """Rename Identity/Dropout away; keep one only when both sides are graph inputs/outputs or constants."""
    pinned = set(model.inputs) | set(model.outputs) | set(model.consts)
    for node in list(model.nodes):
        if node.op_type not in ("Identity", "Dropout") or node.domain not in DEFAULT_DOMAINS:
            continue
        if len([o for o in node.outputs if o]) > 1:
            continue  # Dropout's mask output: the converter reports it
        src, dst = node.inputs[0], node.outputs[0]
        if dst in model.outputs and src in pinned:
            continue
        old, new = (dst, src) if dst not in model.outputs else (src, dst)
        model.nodes.remove(node)
        for other in model.nodes:
            other.inputs = [new if n == old else n for n in other.inputs]
            other.outputs = [new if n == old else n for n in other.outputs]
        model.notes.append((node, "removed (identity)"))


def _fold_constants(model: _Model) -> None:
    """Evaluate nodes whose inputs are all constants (and Shape of static tensors) into constants."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    for node in list(model.nodes):
        if node.domain not in DEFAULT_DOMAINS:
            continue
        values: list[np.ndarray] | None = None
        if node.op_type == "Constant":
            values = None
        elif node.op_type == "Shape":
            shape = model.shapes.get(node.inputs[0])
            if node.inputs[0] in model.consts:
                shape = model.consts[node.inputs[0]].shape
            if shape is not None and None not in shape:
                start, end = node.attrs.get("start", 0), node.attrs.get("end", len(shape))
                values = [np.array(shape[start:end] if end is not None else shape[start:], dtype=np.int64)]
        if values is None and all(not n or n in model.consts for n in node.inputs):
            feeds = {n: model.consts[n] for n in node.inputs if n}
            graph = helper.make_graph(
                [node.proto], "fold",
                [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                 for n, v in feeds.items()],
                [helper.make_empty_tensor_value_info(o) for o in node.outputs if o])
            try:
                proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", model.opset)])
                values = ReferenceEvaluator(proto).run(None, feeds)
            except Exception:  # not foldable here: the converter decides whether the op is supported
                values = None
        if values is None:
            continue
        for name, value in zip([o for o in node.outputs if o], values, strict=False):
            model.consts[name] = np.asarray(value)
        model.nodes.remove(node)
        model.notes.append((node, "folded into a constant"))


# -- steps 4-5 ------------------------------------------------------------------------------------------------

def _op_label(node: OnnxNode) -> str:
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}::{node.op_type}"


def _convert(model: _Model) -> tuple[Context, dict[tuple[str, str], list[str]], list[OnnxNode], list[OnnxNode]]:
    """Convert every node; returns the context, {(op, reason): [node names]} of failures, the converted nodes
    and the nodes that could not be checked because an input comes from an unsupported node."""
    consumers: dict[str, int] = {}
    for node in model.nodes:
        for name in node.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    for name in model.outputs:
        consumers[name] = consumers.get(name, 0) + 1
    reserved = set(model.shapes) | set(model.consts) | {n for node in model.nodes for n in node.inputs + node.outputs}
    ctx = Context(model.label, model.shapes, model.consts, consumers, model.outputs, reserved)
    for name in model.inputs:
        ctx.add_input(name, ctx.shape(name))
    problems: dict[tuple[str, str], list[str]] = {}
    converted: list[OnnxNode] = []
    unchecked: list[OnnxNode] = []  # failed only because an input comes from an unsupported node
    failed: set[str] = set()
    for node in model.nodes:
        ctx.node_name = node.name
        why = _convert_node(ctx, node, tainted=bool(failed.intersection(node.inputs)))
        if why is None:
            converted.append(node)
            continue
        failed.update(node.outputs)
        for name in node.outputs:  # placeholders let later nodes be checked too
            shape = model.shapes.get(name)
            if name and name not in ctx.held and shape is not None and None not in shape:
                ctx.add_input(name, shape)  # type: ignore[arg-type]
        if why:
            problems.setdefault((_op_label(node), why), []).append(node.name)
        else:
            unchecked.append(node)
    return ctx, problems, converted, unchecked


def _convert_node(ctx: Context, node: OnnxNode, tainted: bool) -> str | None:
    """None when converted, else the reason ('' when it only failed because an input is missing)."""
    if node.domain not in DEFAULT_DOMAINS:
        return f"custom domain {node.domain!r} is not supported"
    convert = CONVERTERS.get(node.op_type)
    if convert is None:
        return "no converter for this op"
    try:
        inspect.signature(convert).bind(ctx, node, **node.attrs)
    except TypeError:
        known = inspect.signature(convert).parameters
        extra = sorted(set(node.attrs) - set(known))
        return f"attribute(s) {', '.join(extra)} not supported" if extra else "missing required attribute"
    try:
        convert(ctx, node, **node.attrs)
    except UnsupportedVariantError as exc:
        return exc.reason
    except ModelError:
        if tainted:
            return ""
        raise
    return None


def _finish(model: _Model, ctx: Context) -> Graph:
    for name in model.outputs:
        ctx.node_name = f"{name}/output"
        if name in model.consts:
            ctx.get(name)
            continue
        ir, nhwc = ctx.held[name]
        if nhwc:
            ctx.emit(Op.TRANSPOSE, [ir], name, attrs={"perm": list(TO_NCHW)})
        elif ir != name:
            ctx.emit(Op.RESHAPE, [ir], name)
    graph = Graph(model.name, ctx.tensors, ctx.nodes, list(model.inputs), list(model.outputs),
                  {"source_format": "onnx", "source_file": model.source, "opset": model.opset})
    simplify(graph)
    graph.validate()
    return graph
