"""Static memory planner: every activation tensor and scratch buffer gets a fixed arena offset.

The algorithm (a heuristic, like TFLM's GreedyMemoryPlanner, run for several orders):

1. Lower the graph (`lowering.lower`) so that each node is one kernel call with known reads,
   write and scratch size.
2. Resolve aliases into buffer groups (union-find): a RESHAPE's output is its input's buffer; an
   elementwise call marked `in_place` (ADD/MUL whose first input has the output's shape, LOGISTIC,
   TANH) writes over its first input when that input dies at this call, lives in the arena and
   has the same byte size.
3. Place groups holding a graph input in the caller's input buffer and groups holding a graph output
   in the caller's output buffer (edgepack_model_run reads and writes those directly), so they take
   no arena space. Every other group is an arena buffer living from the call that first writes it
   to the last call that reads it; each call's scratch lives for that call only.
4. For each of several orders (largest first; longest-lived first; earliest first), place buffers
   one by one at the lowest 16-byte-aligned offset where they overlap no already-placed buffer whose
   lifetime intersects theirs (first fit). Keep the order with the smallest arena.
5. Report the arena size, the lower bound (the largest total of simultaneously live bytes), and the
   step where that peak occurs with its two largest live buffers.

Where it can miss the optimum: first fit in a fixed order is not an exact packing (that is
NP-hard); fragmentation can leave the arena above the lower bound when buffers of very different
sizes interleave in time. The planner never splits a tensor, never reorders nodes (a different
topological order can lower the peak), and only runs ops in place when the kernel allows it, so a
depthwise convolution, which could run in place with a row buffer, still needs two buffers.
Usage: `plan(graph).report()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.targets.mcu.lowering import Call, lower

ALIGN = 16
# TFLM's arena for the same models (tflite-micro on Cortex-M4, as quoted in the cortex-m issue).
TFLM_ARENA_BYTES = {"kws_ref_model": 22_772, "ad01_int8": 2_260}


@dataclass
class Buffer:
    """One planned buffer: a group of aliased tensors, or a call's scratch."""

    name: str  # the group's first tensor, or "scratch:NN"
    tensors: list[str]
    size: int
    start: int  # first call index that writes it (-1: alive before the first call)
    end: int  # last call index that reads it
    region: str = "arena"  # arena | input | output
    offset: int = 0


@dataclass
class MemoryPlan:
    """Where every tensor lives; `location(tensor)` gives (region, byte offset)."""

    graph: str
    buffers: list[Buffer]
    arena_bytes: int
    lower_bound: int
    peak_step: int
    peak_pair: tuple[str, ...]
    tensor_buffer: dict[str, Buffer] = field(default_factory=dict)
    scratch: dict[int, Buffer] = field(default_factory=dict)
    order: str = ""

    def location(self, tensor: str) -> tuple[str, int]:
        """(region, offset) of a tensor: region is 'arena', 'input' or 'output'."""
        b = self.tensor_buffer[tensor]
        return b.region, b.offset

    def report(self, tflm_bytes: int | None = None) -> str:
        """A plain-text table of buffers and offsets, then the totals (with TFLM's figure when known)."""
        tflm = tflm_bytes if tflm_bytes is not None else TFLM_ARENA_BYTES.get(self.graph)
        rows = [f"{'buffer':<40} {'region':<7} {'offset':>7} {'bytes':>7} {'live':>9}"]
        for b in sorted(self.buffers, key=lambda b: (b.region, b.offset, b.start)):
            name = b.name if len(b.name) <= 40 else b.name[:18] + "..." + b.name[-19:]
            rows.append(f"{name:<40} {b.region:<7} {b.offset:>7} {b.size:>7} {b.start:>4}-{b.end:<4}")
        rows.append(f"arena {self.arena_bytes:,} B (planner, order: {self.order}); lower bound {self.lower_bound:,} B "
                    f"at step {self.peak_step}: {' + '.join(self.peak_pair)}")
        if tflm:
            rows.append(f"TFLM arena for {self.graph}: {tflm:,} B ({100 * self.arena_bytes / tflm:.0f} % of it)")
        return "\n".join(rows)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _nbytes(graph: Graph, name: str) -> int:
    t = graph.tensor(name)
    return t.size * np.dtype(t.dtype).itemsize


class _Groups:
    """Union-find over tensor names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, keep: str, other: str) -> None:
        self.parent[self.find(other)] = self.find(keep)


def _overlaps(a: Buffer, b: Buffer) -> bool:
    return a.start <= b.end and b.start <= a.end


def first_fit(buffers: list[Buffer]) -> int:
    """Place arena buffers in the given order at the lowest free aligned offset; returns arena bytes."""
    placed: list[Buffer] = []
    top = 0
    for buf in buffers:
        offset = 0
        for other in sorted((p for p in placed if _overlaps(p, buf)), key=lambda p: p.offset):
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size))
        buf.offset = offset
        placed.append(buf)
        top = max(top, offset + buf.size)
    return _align(top)


ORDERS = {
    "largest first": lambda b: (-b.size, b.start, b.name),
    "longest-lived first": lambda b: (-(b.end - b.start), -b.size, b.name),
    "earliest first": lambda b: (b.start, -b.size, b.name),
}


def plan_buffers(buffers: list[Buffer]) -> tuple[int, str]:
    """Steps 4: try every order, keep the smallest arena (offsets are written into `buffers`)."""
    arena = [b for b in buffers if b.region == "arena" and b.size > 0]
    best: tuple[int, str, dict[str, int]] | None = None
    for label, key in ORDERS.items():
        size = first_fit(sorted(arena, key=key))
        if best is None or size < best[0]:
            best = (size, label, {b.name: b.offset for b in arena})
    if best is None:
        return 0, "empty"
    for b in arena:
        b.offset = best[2][b.name]
    return best[0], best[1]


def _groups(graph: Graph, calls: list[Call]) -> tuple[_Groups, dict[str, int], dict[str, int]]:
    """Step 2: alias groups, with each tensor's first write and last read."""
    groups = _Groups()
    first: dict[str, int] = {n: -1 for n in graph.inputs}
    last: dict[str, int] = {}
    for call in calls:
        for r in call.reads:
            last[r] = call.index
        first[call.writes] = call.index
    ends = len(calls) and (calls[-1].index + 1)
    for n in graph.outputs:
        last[n] = ends
    outputs, inputs = set(graph.outputs), set(graph.inputs)

    def group_last(root: str) -> int:
        return max(last.get(t, -1) for t in groups.parent if groups.find(t) == root)

    for call in calls:
        groups.find(call.writes)
        src = call.reads[0] if call.reads else None
        if call.is_alias and src is not None:
            groups.union(src, call.writes)
        elif call.in_place and src is not None and src not in inputs and call.writes not in outputs:
            root = groups.find(src)
            members = [t for t in groups.parent if groups.find(t) == root]
            if (group_last(root) == call.index and not (set(members) & (inputs | outputs))
                    and _nbytes(graph, src) == _nbytes(graph, call.writes)):
                groups.union(src, call.writes)
    return groups, first, last


def plan(graph: Graph, calls: list[Call] | None = None, cpu: str = "cortex-m4") -> MemoryPlan:
    """Plan the arena of `graph` (lowered for `cpu` unless `calls` are given)."""
    calls = lower(graph, cpu) if calls is None else calls
    groups, first, last = _groups(graph, calls)
    for n in graph.inputs:
        groups.find(n)
    members: dict[str, list[str]] = {}
    for t in groups.parent:
        members.setdefault(groups.find(t), []).append(t)
    buffers: list[Buffer] = []
    tensor_buffer: dict[str, Buffer] = {}
    ins, outs = set(graph.inputs), set(graph.outputs)
    for _, ts in members.items():
        ts.sort(key=lambda t: first.get(t, -1))
        in_ts, out_ts = [t for t in ts if t in ins], [t for t in ts if t in outs]
        if len(in_ts) + len(out_ts) > 1:
            raise EdgepackError(f"graph {graph.name!r}: tensors {in_ts + out_ts} share one buffer but are separate "
                                "graph inputs/outputs (lowering should have made one RESHAPE a copy)")
        region = "input" if in_ts else ("output" if out_ts else "arena")
        size = max(_nbytes(graph, t) for t in ts)
        buf = Buffer(ts[0], ts, size, min(first.get(t, -1) for t in ts), max(last.get(t, -1) for t in ts), region)
        if region == "input":
            buf.offset = sum(_nbytes(graph, n) for n in graph.inputs[: graph.inputs.index(in_ts[0])])
        elif region == "output":
            buf.offset = sum(_nbytes(graph, n) for n in graph.outputs[: graph.outputs.index(out_ts[0])])
        buffers.append(buf)
        for t in ts:
            tensor_buffer[t] = buf
    scratch: dict[int, Buffer] = {}
    for call in calls:
        if call.scratch_bytes:
            scratch[call.index] = Buffer(f"scratch:{call.index:02d}", [], call.scratch_bytes, call.index, call.index)
            buffers.append(scratch[call.index])
    arena_bytes, order = plan_buffers(buffers)
    lower_bound, step, pair = _peak(buffers, calls)
    return MemoryPlan(graph.name, buffers, arena_bytes, lower_bound, step, pair, tensor_buffer, scratch, order)


def _peak(buffers: list[Buffer], calls: list[Call]) -> tuple[int, int, tuple[str, ...]]:
    """Step 5: the largest total of live arena bytes, its step and its two largest buffers."""
    best = (0, -1, ())
    for call in calls:
        live = [b for b in buffers if b.region == "arena" and b.start <= call.index <= b.end and b.size]
        total = sum(b.size for b in live)
        if total > best[0]:
            top = sorted(live, key=lambda b: -b.size)[:2]
            best = (total, call.index, tuple(f"{b.name} ({b.size} B)" for b in top))
    return best


def check_no_overlap(p: MemoryPlan) -> None:
    """Assert that no two arena buffers that are live at the same step share bytes."""
    arena = [b for b in p.buffers if b.region == "arena" and b.size]
    for i, a in enumerate(arena):
        if a.offset % ALIGN or a.offset + a.size > p.arena_bytes:
            raise AssertionError(f"{a.name}: offset {a.offset} size {a.size} outside arena {p.arena_bytes}")
        for b in arena[i + 1:]:
            if _overlaps(a, b) and a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise AssertionError(f"{a.name} [{a.offset}, +{a.size}) steps {a.start}-{a.end} overlaps "
                                     f"{b.name} [{b.offset}, +{b.size}) steps {b.start}-{b.end}")
