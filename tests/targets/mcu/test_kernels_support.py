"""Shared helpers of the cortex-m tests: build the C kernel library for the host, call kernels
through ctypes exactly as the generated model.c would, build random single-op graphs, and the
one oracle check (`assert_matches_golden`).

This module holds no tests; the test modules import it by name (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Op
from edgepack.ir.reference import Interpreter
from edgepack.targets.mcu import kernel_lib
from edgepack.targets.mcu.lowering import Buffer, Call, Int, Null, PointerList, Scratch, Struct, Table, lower

CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c99"]
GUARD = 64  # canary bytes around every output and scratch buffer
CANARY = 0x5A


def have_gcc() -> bool:
    """True when a host C compiler is available."""
    return shutil.which("gcc") is not None


def build_library(out_dir: Path, dsp: bool) -> ctypes.CDLL:
    """Compile the whole kernel library into a shared object (dsp: the fast paths via EP_EMULATE_DSP)."""
    lib = out_dir / ("libep_dsp.so" if dsp else "libep.so")
    cmd = ["gcc", *CFLAGS, "-fPIC", "-shared", f"-I{kernel_lib.KERNEL_DIR}",
           *(["-DEP_EMULATE_DSP"] if dsp else []), *map(str, kernel_lib.all_sources()), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


_CTYPES = {"int32_t": ctypes.c_int32, "const int32_t *": ctypes.c_void_p, "int32_t[4]": ctypes.c_int32 * 4}
_STRUCT_CLASSES: dict[str, type] = {}


def struct_class(ctype: str) -> type:
    """A ctypes.Structure mirroring the C struct (layout from kernel_lib.STRUCTS)."""
    if ctype not in _STRUCT_CLASSES:
        fields = [(f, _CTYPES[t]) for f, t in kernel_lib.STRUCTS[ctype]]
        _STRUCT_CLASSES[ctype] = type(ctype, (ctypes.Structure,), {"_fields_": fields})
    return _STRUCT_CLASSES[ctype]


def _guarded(nbytes: int) -> np.ndarray:
    return np.full(nbytes + 2 * GUARD, CANARY, dtype=np.uint8)


class HostRunner:
    """Runs lowered calls through ctypes with one numpy buffer per tensor (RESHAPE shares memory)."""

    def __init__(self, lib: ctypes.CDLL, graph: Graph, calls: list[Call]) -> None:
        self.lib, self.graph, self.calls = lib, graph, calls
        self._keep: list[object] = []

    def _table(self, t: Table) -> int:
        arr = np.ascontiguousarray(t.values, dtype=np.dtype(t.ctype.replace("_t", "")))
        self._keep.append(arr)
        return arr.ctypes.data

    def _struct(self, s: Struct) -> int:
        values = {}
        for f, t in kernel_lib.STRUCTS[s.ctype]:
            v = s.values[f]
            if isinstance(v, Table):
                values[f] = self._table(v)
            elif t == "int32_t[4]":
                values[f] = (ctypes.c_int32 * 4)(*v)
            else:
                values[f] = int(v)
        obj = struct_class(s.ctype)(**values)
        self._keep.append(obj)
        return ctypes.addressof(obj)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute every call; asserts EP_OK and intact canaries after each one."""
        raw: dict[str, np.ndarray] = {}
        views: dict[str, np.ndarray] = {}
        for name in self.graph.inputs:
            views[name] = np.ascontiguousarray(inputs[name]).copy()
        for call in self.calls:
            out_t = self.graph.tensor(call.writes)
            if call.is_alias:
                views[call.writes] = views[call.reads[0]].reshape(out_t.shape)
                continue
            nbytes = out_t.size * np.dtype(out_t.dtype).itemsize
            raw[call.writes] = _guarded(nbytes)
            views[call.writes] = raw[call.writes][GUARD:GUARD + nbytes].view(out_t.dtype).reshape(out_t.shape)
            scratch = _guarded(call.scratch_bytes)
            args, types = [], []
            for a in call.args:
                if isinstance(a, Int):
                    args.append(a.value)
                    types.append(ctypes.c_int32)
                    continue
                types.append(ctypes.c_void_p)
                if isinstance(a, Table):
                    args.append(self._table(a))
                elif isinstance(a, Struct):
                    args.append(self._struct(a))
                elif isinstance(a, Buffer):
                    args.append(views[a.tensor].ctypes.data)
                elif isinstance(a, PointerList):
                    ptrs = (ctypes.c_void_p * len(a.tensors))(*[views[t].ctypes.data for t in a.tensors])
                    self._keep.append(ptrs)
                    args.append(ctypes.addressof(ptrs))
                elif isinstance(a, Scratch):
                    args.append(scratch.ctypes.data + GUARD if call.scratch_bytes else None)
                elif isinstance(a, Null):
                    args.append(None)
            fn = getattr(self.lib, call.kernel)  # type: ignore[arg-type]
            fn.restype, fn.argtypes = ctypes.c_int, types
            status = fn(*args)
            assert status == 0, f"{call.kernel} returned status 0x{status:02x}"
            buf = raw[call.writes]
            assert np.all(buf[:GUARD] == CANARY) and np.all(buf[-GUARD:] == CANARY), \
                f"{call.kernel} wrote outside its output"
            assert np.all(scratch[:GUARD] == CANARY) and np.all(scratch[-GUARD:] == CANARY), \
                f"{call.kernel} wrote outside its scratch ({call.scratch_bytes} B)"
        return {n: views[n].copy() for n in self.graph.outputs}


def assert_matches_golden(graph: Graph, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> None:
    """Integer outputs must equal the golden interpreter's exactly; reports the first differing index."""
    golden = Interpreter(graph).run(inputs)
    for name in graph.outputs:
        want, got = golden[name], outputs[name].reshape(golden[name].shape)
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype}, golden {want.dtype}"
        diff = np.flatnonzero(got.ravel() != want.ravel())
        if diff.size:
            i = int(diff[0])
            raise AssertionError(f"{graph.name}: output {name!r} differs from the golden model at {diff.size} of "
                                 f"{want.size} elements; first at flat index {i} "
                                 f"{np.unravel_index(i, want.shape)}: got {got.ravel()[i]}, golden {want.ravel()[i]}")


def run_on_host(lib: ctypes.CDLL, graph: Graph, inputs: dict[str, np.ndarray], cpu: str = "cortex-m4") -> dict:
    """Lower `graph` and run it through ctypes; returns name -> output."""
    return HostRunner(lib, graph, lower(graph, cpu)).run(inputs)


# ---- random single-op graphs ----

INFO = {"int8": (-128, 127), "int16": (-32768, 32767)}


def rand_quant(rng: np.random.Generator, dtype: str) -> QuantParams:
    """A random per-tensor quantization (zero point 0 for int16, as TFLite 16x8)."""
    scale = float(np.exp(rng.uniform(np.log(0.005), np.log(0.5))))
    zp = 0 if dtype == "int16" else int(rng.integers(-100, 100))
    return QuantParams(np.array([scale]), np.array([zp]))


def act(name: str, shape: tuple[int, ...], dtype: str, rng: np.random.Generator, quant: QuantParams | None = None
        ) -> Tensor:
    """An activation tensor with random quantization."""
    return Tensor(name, shape, dtype, quant or rand_quant(rng, dtype))


def weights(name: str, shape: tuple[int, ...], axis: int, rng: np.random.Generator, bits: int = 8) -> Tensor:
    """Random symmetric per-channel weights along `axis` (int4 values in [-8, 7] when bits == 4)."""
    hi = 7 if bits == 4 else 127
    data = rng.integers(-hi - 1, hi + 1, size=shape).astype(np.int8)
    channels = shape[axis]
    scales = np.exp(rng.uniform(np.log(0.002), np.log(0.05), size=channels))
    return Tensor(name, shape, "int8", QuantParams(scales, np.zeros(channels, np.int64), axis, bits), data)


def bias(name: str, n: int, rng: np.random.Generator, wide: bool = False) -> Tensor:
    """A random int32 (int64 when wide) bias."""
    data = rng.integers(-5000, 5000, size=n).astype(np.int64 if wide else np.int32)
    quant = QuantParams(np.ones(n), np.zeros(n, np.int64), 0, 64 if wide else 32)
    return Tensor(name, (n,), "int64" if wide else "int32", quant, data)


def single_op_graph(op: Op, ins: list[Tensor | None], out: Tensor, attrs: dict) -> Graph:
    """A one-node graph: non-constant inputs become graph inputs."""
    tensors = {t.name: t for t in [*ins, out] if t is not None}
    inputs = [t.name for t in ins if t is not None and not t.is_const]
    node = Node(op, f"{op.value.lower()}_test", [t.name if t is not None else "" for t in ins], [out.name], attrs)
    return Graph(f"{op.value.lower()}_graph", tensors, [node], inputs, [out.name])


def random_inputs(graph: Graph, rng: np.random.Generator, batch: int | None = None) -> dict[str, np.ndarray]:
    """Uniform random integer inputs over each input's full dtype range."""
    out = {}
    for name in graph.inputs:
        t = graph.tensor(name)
        lo, hi = INFO[t.dtype]
        out[name] = rng.integers(lo, hi + 1, size=t.shape).astype(t.dtype)
    return out


def random_dag(rng: np.random.Generator, n_nodes: int = 12) -> Graph:
    """A random valid int8 DAG over [1, H, W, C] tensors: 1x1 conv, 3x3 dwconv, ADD (two earlier
    tensors), LOGISTIC (in place), RESHAPE pairs and CONCATENATION; several graph outputs."""
    h, w = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    tensors: dict[str, Tensor] = {}
    nodes: list[Node] = []
    x = act("x", (1, h, w, int(rng.integers(1, 9))), "int8", rng)
    tensors["x"] = x
    avail = ["x"]
    for i in range(n_nodes):
        kind = rng.choice(["conv", "dw", "add", "logistic", "reshape", "concat"])
        src = tensors[str(rng.choice(avail[-4:]))]
        name = f"t{i}"
        if kind == "conv":
            cout = int(rng.integers(1, 17))
            wt, b = weights(f"w{i}", (cout, 1, 1, src.shape[3]), 0, rng), bias(f"b{i}", cout, rng)
            out = act(name, (1, h, w, cout), "int8", rng)
            tensors.update({wt.name: wt, b.name: b})
            nodes.append(Node(Op.CONV_2D, f"conv{i}", [src.name, wt.name, b.name], [name],
                              {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0], "activation": "RELU"}))
        elif kind == "dw":
            c = src.shape[3]
            wt, b = weights(f"w{i}", (1, 3, 3, c), 3, rng), bias(f"b{i}", c, rng)
            out = act(name, (1, h, w, c), "int8", rng)
            tensors.update({wt.name: wt, b.name: b})
            nodes.append(Node(Op.DEPTHWISE_CONV_2D, f"dw{i}", [src.name, wt.name, b.name], [name],
                              {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "depth_multiplier": 1,
                               "activation": "NONE"}))
        elif kind == "add":
            same = [a for a in avail if tensors[a].shape == src.shape]
            other = tensors[str(rng.choice(same))]
            out = act(name, src.shape, "int8", rng)
            nodes.append(Node(Op.ADD, f"add{i}", [src.name, other.name], [name], {"activation": "NONE"}))
        elif kind == "logistic":
            out = act(name, src.shape, "int8", rng, QuantParams(np.array([1 / 256]), np.array([-128])))
            nodes.append(Node(Op.LOGISTIC, f"sig{i}", [src.name], [name], {}))
        elif kind == "reshape":
            flat = act(name + "_flat", (1, h * w * src.shape[3]), "int8", rng, src.quant)
            tensors[flat.name] = flat
            nodes.append(Node(Op.RESHAPE, f"flat{i}", [src.name], [flat.name]))
            out = act(name, src.shape, "int8", rng, src.quant)
            nodes.append(Node(Op.RESHAPE, f"unflat{i}", [flat.name], [name]))
        else:
            other = tensors[str(rng.choice(avail))]
            if other.quant is None or other.name == src.name:
                continue
            q = src.quant
            if tuple(other.quant.scale) != tuple(q.scale) or tuple(other.quant.zero_point) != tuple(q.zero_point):
                continue
            out = act(name, (1, h, w, src.shape[3] + other.shape[3]), "int8", rng, q)
            nodes.append(Node(Op.CONCATENATION, f"cat{i}", [src.name, other.name], [name],
                              {"axis": 3, "activation": "NONE"}))
        tensors[name] = out
        avail.append(name)
    produced = [n.outputs[0] for n in nodes]
    consumed = {i for n in nodes for i in n.inputs}
    outputs = [t for t in produced if t not in consumed] or [produced[-1]] if produced else []
    if not nodes:
        return random_dag(rng, n_nodes)
    return Graph("random_dag", tensors, nodes, ["x"], outputs)
