"""The typed graph: tensors (shape, dtype, quantization, optional constant data) and NHWC nodes.

A `Graph` serializes to a JSON-able dict plus a name -> array dict (`to_dict`/`from_dict`), which is
how bundles carry it; reading it back needs only numpy.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.ir.ops import WEIGHTED_OPS, Op

DTYPES = ("float32", "int8", "uint8", "int16", "int32", "int64")
INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}


@dataclass
class QuantParams:
    """Affine quantization real = scale * (q - zero_point); per tensor (axis None) or per channel.

    `bits` is the storage width of the values (8, 4 for packed int4 weights, 16, 32 for biases).
    """

    scale: np.ndarray  # float32, shape [1] or [channels]
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int | None = None
    bits: int = 8

    def __post_init__(self) -> None:
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))
        if self.zero_point.shape != self.scale.shape:
            if self.zero_point.size == 1:
                self.zero_point = np.full(self.scale.shape, int(self.zero_point[0]), dtype=np.int64)
            else:
                raise ModelError(f"quantization: {self.scale.size} scales but {self.zero_point.size} zero points")

    @property
    def per_channel(self) -> bool:
        """True when there is one scale per channel along `axis`."""
        return self.axis is not None and self.scale.size > 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (float32 scales round-trip exactly through Python floats)."""
        return {"scale": [float(s) for s in self.scale], "zero_point": [int(z) for z in self.zero_point],
                "axis": self.axis, "bits": self.bits}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantParams:
        """Inverse of `to_dict`."""
        return cls(np.array(d["scale"], dtype=np.float32), np.array(d["zero_point"], dtype=np.int64),
                   d.get("axis"), int(d.get("bits", 8)))


@dataclass
class Tensor:
    """A named tensor: static shape, dtype, optional quantization and optional constant data."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        if self.dtype not in DTYPES:
            raise ModelError(f"tensor {self.name!r}: unsupported dtype {self.dtype}")

    @property
    def is_const(self) -> bool:
        """True for weights, biases and other constants."""
        return self.data is not None

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Storage bytes, counting packed 4-bit values as half a byte."""
        bits = self.quant.bits if self.quant is not None else np.dtype(self.dtype).itemsize * 8
        return (self.size * bits + 7) // 8


@dataclass
class Node:
    """One op application; `inputs`/`outputs` are tensor names ('' for an absent optional input)."""

    op: Op
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A topologically ordered NHWC graph with named inputs and outputs."""

    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        """The tensor called `name` (ModelError if absent)."""
        try:
            return self.tensors[name]
        except KeyError:
            raise ModelError(f"graph {self.name!r}: no tensor named {name!r}") from None

    @property
    def is_quantized(self) -> bool:
        """True when any graph input or op output is an integer tensor."""
        return any(self.tensors[n].dtype != "float32" for nd in self.nodes for n in nd.outputs)

    def validate(self) -> None:
        """Check references and topological order; raise ModelError on the first problem."""
        known = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_const}
        for name in self.inputs:
            self.tensor(name)
        for node in self.nodes:
            for name in node.inputs:
                if name and name not in known:
                    raise ModelError(f"graph {self.name!r}: node {node.name!r} ({node.op.value}) reads "
                                     f"{name!r} before it is produced")
            for name in node.outputs:
                self.tensor(name)
                known.add(name)
        for name in self.outputs:
            if name not in known:
                raise ModelError(f"graph {self.name!r}: output {name!r} is never produced")

    def macs(self, node: Node) -> int:
        """Multiply-accumulates of one node (0 for ops without weights)."""
        if node.op not in WEIGHTED_OPS:
            return 0
        w = self.tensor(node.inputs[1])
        out = self.tensor(node.outputs[0])
        if node.op is Op.CONV_2D:
            return out.size * int(math.prod(w.shape[1:]))
        if node.op is Op.DEPTHWISE_CONV_2D:
            return out.size * w.shape[1] * w.shape[2]
        return out.size * w.shape[1]

    def param_count(self) -> int:
        """Number of constant elements (weights, biases, other constants)."""
        return sum(t.size for t in self.tensors.values() if t.is_const)

    def to_dict(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Serialize to (JSON-able description, constant arrays keyed 'c0', 'c1', ... as the description says)."""
        tensors = []
        arrays: dict[str, np.ndarray] = {}
        for t in self.tensors.values():
            entry: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
            if t.quant is not None:
                entry["quant"] = t.quant.to_dict()
            if t.data is not None:
                # Positional keys keep tensor names (any characters) out of archive member names.
                entry["const"] = key = f"c{len(arrays)}"
                arrays[key] = np.ascontiguousarray(t.data)
            tensors.append(entry)
        nodes = [{"op": n.op.value, "name": n.name, "inputs": n.inputs, "outputs": n.outputs, "attrs": n.attrs}
                 for n in self.nodes]
        desc = {"name": self.name, "inputs": self.inputs, "outputs": self.outputs, "tensors": tensors,
                "nodes": nodes, "metadata": self.metadata}
        return desc, arrays

    @classmethod
    def from_dict(cls, desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Graph:
        """Inverse of `to_dict`; validates the result."""
        try:
            tensors: dict[str, Tensor] = {}
            for e in desc["tensors"]:
                data = None
                if e.get("const"):
                    data = np.asarray(arrays[e["const"]])
                    if list(data.shape) != list(e["shape"]) or str(data.dtype) != e["dtype"]:
                        raise ModelError(f"constant {e['name']!r}: stored {data.dtype}{list(data.shape)} "
                                         f"does not match declared {e['dtype']}{e['shape']}")
                quant = QuantParams.from_dict(e["quant"]) if e.get("quant") else None
                tensors[e["name"]] = Tensor(e["name"], tuple(e["shape"]), e["dtype"], quant, data)
            nodes = [Node(Op(n["op"]), n["name"], list(n["inputs"]), list(n["outputs"]), dict(n.get("attrs", {})))
                     for n in desc["nodes"]]
            graph = cls(desc["name"], tensors, nodes, list(desc["inputs"]), list(desc["outputs"]),
                        dict(desc.get("metadata", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed graph description: {exc!r}") from exc
        graph.validate()
        return graph

    def to_bytes(self) -> tuple[bytes, bytes]:
        """(graph.json bytes, weights.npz bytes): the form bundles store."""
        desc, arrays = self.to_dict()
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return json.dumps(desc, indent=1, allow_nan=False).encode(), buf.getvalue()

    @classmethod
    def from_bytes(cls, graph_json: bytes, weights_npz: bytes) -> Graph:
        """Inverse of `to_bytes` (no pickle; ModelError on malformed input)."""
        try:
            desc = json.loads(graph_json)
            with np.load(io.BytesIO(weights_npz), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError) as exc:
            raise ModelError(f"unreadable graph: {exc}") from exc
        return cls.from_dict(desc, arrays)
