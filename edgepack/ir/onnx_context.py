"""Conversion state for the ONNX importer: which IR tensor holds each ONNX tensor, and in which layout.

ONNX activations are NCHW, the IR is NHWC. Every 4-D ONNX tensor is held either "as ONNX" (same axis order)
or "as NHWC" (IR axes = ONNX axes permuted by [0, 2, 3, 1]). Converters ask for the layout they need with
`ctx.get(name, nhwc=...)`; a TRANSPOSE is inserted (once per tensor and direction) only when the held layout
differs. `simplify` afterwards composes back-to-back transposes, drops identities and turns transposes that
only move size-1 axes into RESHAPEs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.graph import Graph, Node, Tensor
from edgepack.ir.ops import Op

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
# ONNX (NCHW) axis -> axis of the same data held as NHWC.
NHWC_AXIS = (0, 3, 1, 2)


class UnsupportedVariantError(Exception):
    """Raised by a converter for an op variant edgepack cannot map; `reason` reaches the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def nhwc_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of NCHW data once held as NHWC."""
    return tuple(shape[i] for i in TO_NHWC)


class Context:
    """Tensors, nodes and layouts built so far, plus the model's static shapes and constants."""

    def __init__(self, label: str, shapes: dict[str, tuple[int | None, ...]], consts: dict[str, np.ndarray],
                 consumers: dict[str, int], outputs: list[str], reserved: set[str]) -> None:
        self.label = label
        self.shapes = shapes
        self.consts = consts
        self.consumers = consumers
        self.graph_outputs = set(outputs)
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.held: dict[str, tuple[str, bool]] = {}  # ONNX name -> (IR name, held as NHWC)
        self.producers: dict[str, Node] = {}  # IR name -> node writing it
        self._copies: dict[tuple[str, bool], str] = {}  # (ONNX name, nhwc) -> IR name of a layout copy
        self._reserved = set(reserved)
        self._node_names: set[str] = set()
        self.node_name = ""  # name of the ONNX node being converted (prefix for new tensors and nodes)

    # -- reading the ONNX model -------------------------------------------------------------------------------

    def shape(self, name: str) -> tuple[int, ...]:
        """Static ONNX shape of `name` (ModelError when inference left it unknown or dynamic)."""
        if name in self.consts:
            return tuple(self.consts[name].shape)
        shape = self.shapes.get(name)
        if shape is None or any(d is None for d in shape):
            got = "unknown" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
            raise ModelError(f"{self.label}: tensor {name!r} has a dynamic or unknown shape ({got})",
                             hint="edgepack needs static shapes; export the model with fixed input sizes")
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    def const(self, name: str) -> np.ndarray | None:
        """The constant value of `name`, or None for activations and absent optional inputs ('')."""
        return self.consts.get(name) if name else None

    def is_nhwc(self, name: str) -> bool:
        """True when the IR holds ONNX tensor `name` as NHWC."""
        return name in self.held and self.held[name][1]

    # -- building the IR --------------------------------------------------------------------------------------

    def unique(self, hint: str) -> str:
        """A tensor name not used by the ONNX model or the IR so far."""
        name, i = hint, 1
        while name in self._reserved or name in self.tensors:
            name, i = f"{hint}_{i}", i + 1
        self._reserved.add(name)
        return name

    def add_const(self, suffix: str, data: np.ndarray) -> str:
        """A new float32 constant tensor named after the current node; returns its IR name."""
        name = self.unique(f"{self.node_name}/{suffix}")
        data = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
        self.tensors[name] = Tensor(name, data.shape, "float32", data=data)
        return name

    def add_input(self, name: str, shape: tuple[int, ...]) -> None:
        """Declare a graph input, held exactly as ONNX lays it out."""
        self.tensors[name] = Tensor(name, shape, "float32")
        self.held[name] = (name, False)

    def node(self, op: Op, inputs: list[str], output: str, shape: tuple[int, ...],
             attrs: dict[str, Any] | None = None, name: str | None = None) -> Node:
        """Append one IR node writing a new float32 tensor `output` of IR shape `shape`."""
        self.tensors[output] = Tensor(output, shape, "float32")
        self._reserved.add(output)
        label, i = name or self.node_name or op.value, 1
        name = label
        while name in self._node_names:
            name, i = f"{label}_{i}", i + 1
        self._node_names.add(name)
        node = Node(op, name, list(inputs), [output], dict(attrs or {}))
        self.nodes.append(node)
        self.producers[output] = node
        return node

    def ir_name(self, onnx_name: str, nhwc: bool) -> str:
        """IR name for ONNX output `onnx_name`: the same name, unless it is a graph output held as NHWC."""
        if nhwc and onnx_name in self.graph_outputs:
            return self.unique(f"{onnx_name}__nhwc")
        return onnx_name

    def emit(self, op: Op, inputs: list[str], output: str, *, nhwc: bool = False,
             attrs: dict[str, Any] | None = None) -> Node:
        """Append the node computing ONNX tensor `output`, held as NHWC when `nhwc` (which needs 4-D)."""
        shape = self.shape(output)
        ir = self.ir_name(output, nhwc)
        node = self.node(op, inputs, ir, nhwc_shape(shape) if nhwc else shape, attrs)
        self.held[output] = (ir, nhwc)
        return node

    def get(self, name: str, nhwc: bool = False) -> str:
        """IR name of ONNX tensor `name` in the requested layout, transposing (once) if it is held otherwise."""
        value = self.const(name)
        if value is not None:
            key = (name, nhwc)
            if key not in self._copies:
                data = value.astype(np.float32)
                if nhwc:
                    data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(TO_NHWC)
                ir = self.unique(f"{name}__nhwc") if nhwc or name in self.tensors else name
                data = np.ascontiguousarray(data)
                self.tensors[ir] = Tensor(ir, data.shape, "float32", data=data)
                self._copies[key] = ir
            return self._copies[key]
        if name not in self.held:
            raise ModelError(f"{self.label}: tensor {name!r} is read before it is produced")
        ir, held_nhwc = self.held[name]
        if held_nhwc == nhwc:
            return ir
        key = (name, nhwc)
        if key not in self._copies:
            perm = TO_NHWC if nhwc else TO_NCHW
            out = self.unique(f"{name}__{'nhwc' if nhwc else 'nchw'}")
            shape = tuple(self.tensors[ir].shape[i] for i in perm)
            self.node(Op.TRANSPOSE, [ir], out, shape, {"perm": list(perm)}, name=f"{out}/transpose")
            self._copies[key] = out
        return self._copies[key]

    def fusable_producer(self, name: str, ops: frozenset[Op] | set[Op]) -> Node | None:
        """The IR node writing `name` when it is one of `ops`, has no fused activation yet and `name` feeds
        exactly one ONNX consumer and is not a graph output (so its result may be changed in place)."""
        if name not in self.held or name in self.graph_outputs or self.consumers.get(name, 0) != 1:
            return None
        node = self.producers.get(self.held[name][0])
        if node is None or node.op not in ops or node.attrs.get("activation", "NONE") != "NONE":
            return None
        return node

    def rename_output(self, src: str, dst: str) -> None:
        """Let the node writing ONNX tensor `src` write `dst` instead (after fusing the op between them)."""
        old, nhwc = self.held.pop(src)
        node = self.producers.pop(old)
        new = self.ir_name(dst, nhwc)
        tensor = self.tensors.pop(old)
        tensor.name = new
        self.tensors[new] = tensor
        node.outputs = [new]
        self.producers[new] = node
        self.held[dst] = (new, nhwc)


def simplify(graph: Graph) -> None:
    """Tidy the layout plumbing in place: compose TRANSPOSE pairs, drop identity TRANSPOSE/RESHAPE, turn
    transposes that only move size-1 axes into RESHAPE and merge RESHAPE chains; then drop unused tensors."""
    while _rewrite_once(graph):
        pass
    used = set(graph.inputs) | set(graph.outputs) | {n for node in graph.nodes for n in node.inputs + node.outputs}
    for name in list(graph.tensors):
        if name not in used:
            del graph.tensors[name]


def _rewrite_once(graph: Graph) -> bool:
    uses: dict[str, int] = {}
    for node in graph.nodes:
        for name in node.inputs:
            uses[name] = uses.get(name, 0) + 1
    producers = {out: node for node in graph.nodes for out in node.outputs}
    outputs = set(graph.outputs)

    def private(name: str) -> bool:  # written by a node, read only once, not a graph output
        return name in producers and uses.get(name, 0) == 1 and name not in outputs

    for node in graph.nodes:
        if node.op not in (Op.TRANSPOSE, Op.RESHAPE):
            continue
        src = node.inputs[0]
        before = producers.get(src)
        if before is not None and before.op is node.op and private(src):
            if node.op is Op.TRANSPOSE:
                node.attrs["perm"] = [before.attrs["perm"][p] for p in node.attrs["perm"]]
            node.inputs = list(before.inputs)
            graph.nodes.remove(before)
            return True
        in_shape = graph.tensors[src].shape
        if node.op is Op.TRANSPOSE:
            perm = node.attrs["perm"]
            moved = [p for p in perm if in_shape[p] != 1]
            if perm == sorted(perm) or moved == sorted(moved):
                node.op, node.attrs = Op.RESHAPE, {}
                return True
        elif in_shape == graph.tensors[node.outputs[0]].shape and _bypass(graph, node, private, producers):
            return True
    return False


def _bypass(graph: Graph, node: Node, private: Any, producers: dict[str, Node]) -> bool:
    """Remove a node that copies its input unchanged, keeping graph input and output names."""
    src, dst = node.inputs[0], node.outputs[0]
    if dst not in graph.outputs:
        graph.nodes.remove(node)
        for other in graph.nodes:
            other.inputs = [src if n == dst else n for n in other.inputs]
        return True
    if private(src):
        graph.nodes.remove(node)
        before = producers[src]
        before.outputs = [dst if n == src else n for n in before.outputs]
        return True
    return False
