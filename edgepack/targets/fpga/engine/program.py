"""The layer program of edgepack's time-multiplexed int8 engine, generated from a quantized Graph.

The engine (``rtl/ep_engine.v``) has 4 multiply-accumulate lanes, each computing one output channel, and
two 16K x 32-bit memories (on the iCE40 UP5K: two SB_SPRAM256KA each, so all four SPRAMs):

- weight memory (WMEM, words): for each layer and each group of 4 output channels, a block of
  ``PARAM_WORDS`` parameter words (4 biases, 4 multipliers, one word of 4 signed shifts) followed by the
  group's K weight words (one int8 per lane in each word, lane l in bits 8l+7..8l). Read once per group for
  the parameters; the K weights are streamed again for every output pixel.
- activation memory (AMEM, bytes packed 4 to a word): NHWC tensors with channels padded to a multiple of 4.
  A chain of layers ping-pongs between two regions; the graph input sits in region A.

The program ROM (``program.hex``) holds ``FIELDS`` 32-bit words per layer (`Field` names them) followed
by one END layer. Every value the engine needs is decided here: loop bounds, address steps, zero points,
clamp range, and per channel the multiplier and shift the golden interpreter's Prepare derived
(`edgepack.ir.reference.prepare_all`), so the RTL does no derivation of its own.

Ops: CONV_2D and FULLY_CONNECTED (mode CONV: the lanes share one activation byte and read 4 weights),
DEPTHWISE_CONV_2D with depth_multiplier 1 (mode DW: lane l reads channel 4g+l of the same pixel), and
AVERAGE_POOL_2D without padding (mode POOL: DW with unit weights, then the division by the window size
as a multiply by a reciprocal that `pool_reciprocal` proves exact over the whole input range).
RESHAPE is an alias when it keeps the padded layout. A final SOFTMAX runs on the host with the golden
interpreter's int8 kernel (`host_softmax`).

Usage: ``prog = lower_engine(graph); prog.write(dir)``; ``model_run(prog, x)`` is the bit-level Python
model of the same program, used to debug the generator without an RTL simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import UnsupportedOpsError
from edgepack.ir.graph import Graph, Node
from edgepack.ir.ops import Op
from edgepack.ir.reference.fixedpoint import requantize
from edgepack.ir.reference.interpreter import prepare_all
from edgepack.ir.reference.prepare import NodeContext

LANES = 4
FIELDS = 32  # program words per layer
PARAM_WORDS = 9  # per group: 4 biases, 4 multipliers, 1 word of shifts
MEM_WORDS = 16384  # each of WMEM and AMEM: 16K x 32 bits (two SB_SPRAM256KA side by side)
MAX_DIM = 255  # loop counters are 8 bits wide
MAX_K = 4095


class Mode(IntEnum):
    """What one program layer does (field MODE)."""

    CONV = 0  # CONV_2D and FULLY_CONNECTED
    DW = 1  # DEPTHWISE_CONV_2D, depth multiplier 1
    POOL = 2  # AVERAGE_POOL_2D, no padding
    END = 15


class Field(IntEnum):
    """Word index of each field inside a layer's FIELDS words (ep_engine.v reads them by these numbers)."""

    MODE = 0
    OH = 1
    OW = 2
    GROUPS = 3
    KH = 4
    KW = 5
    ICN = 6  # inner-loop length: input channels (CONV) or 1
    H = 7
    W = 8
    PAD_TOP = 9
    PAD_LEFT = 10
    STEP_KX = 11  # bytes between horizontally adjacent input pixels
    STEP_KY = 12  # bytes between vertically adjacent input pixels
    STEP_OX = 13
    STEP_OY = 14
    SH = 15
    SW = 16
    IN_ORIGIN = 17  # byte address of input pixel (-pad_top, -pad_left), two's complement
    OUT_BASE = 18  # word address of the output tensor
    W_BASE = 19  # word address of group 0's parameter block
    W_GROUP_LEN = 20  # words per group block
    IN_ZP = 21
    OUT_ZP = 22
    ACT_MIN = 23
    ACT_MAX = 24
    HALF = 25  # POOL: window size // 2, added to |sum| before the reciprocal multiply
    UNIT_W = 26  # 1: unit weights, the weight pointer does not move (POOL)


def _pad4(c: int) -> int:
    return -(-c // LANES) * LANES


def _u32(v: int) -> int:
    return int(v) & 0xFFFFFFFF


def pool_reciprocal(count: int, max_n: int) -> tuple[int, int]:
    """(M, r) with floor(n * M / 2**(31 + r)) == n // count for every 0 <= n <= max_n, checked exhaustively."""
    r = max(0, (count - 1).bit_length())
    m = -(-(1 << (31 + r)) // count)
    if m >= 1 << 32 or max_n * m >= 2**63:
        raise ValueError(f"no 32-bit reciprocal for division by {count} up to {max_n}")
    n = np.arange(max_n + 1, dtype=np.int64)
    if not np.array_equal((n * m) >> (31 + r), n // count):
        raise ValueError(f"the reciprocal of {count} is not exact up to {max_n}")
    return m, r


@dataclass
class EngineLayer:
    """One program layer: its fields, the graph node it comes from, and where its tensors live."""

    node: str
    op: str
    mode: Mode
    fields: dict[Field, int]
    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]
    in_base: int  # byte address
    out_base: int  # byte address
    macs: int
    weight_bits: int | None = None


@dataclass
class EngineProgram:
    """Everything the engine needs for one graph: program words, the weight image, the I/O layout."""

    graph_name: str
    layers: list[EngineLayer]
    program: np.ndarray  # uint32, FIELDS words per layer + END
    weights: np.ndarray  # uint32 WMEM image
    input_name: str
    input_shape: tuple[int, int, int]  # H, W, C of the graph input
    input_base: int  # byte address in AMEM
    engine_output: str  # the tensor the engine writes last
    output_shape: tuple[int, int, int]
    output_base: int
    host_ops: list[str] = field(default_factory=list)  # node names run on the host after the engine
    act_bytes: int = 0

    @property
    def input_words(self) -> int:
        """AMEM words the padded input occupies."""
        h, w, c = self.input_shape
        return h * w * _pad4(c) // LANES

    @property
    def output_words(self) -> int:
        """AMEM words the padded engine output occupies."""
        h, w, c = self.output_shape
        return h * w * _pad4(c) // LANES

    def pack_input(self, x: np.ndarray) -> np.ndarray:
        """One int8 input sample (any shape with H*W*C elements) -> uint32 AMEM words (channels padded with 0)."""
        h, w, c = self.input_shape
        padded = np.zeros((h, w, _pad4(c)), dtype=np.int8)
        padded[..., :c] = np.asarray(x, dtype=np.int8).reshape(h, w, c)
        return padded.view(np.uint8).reshape(-1).view("<u4").astype(np.uint32)

    def unpack_output(self, words: np.ndarray) -> np.ndarray:
        """AMEM words of the engine output -> int8 [H*W*C] in NHWC order (padding dropped)."""
        h, w, c = self.output_shape
        b = np.asarray(words, dtype="<u4").view(np.int8).reshape(h, w, _pad4(c))
        return b[..., :c].reshape(-1).copy()

    def write(self, directory: Path) -> list[Path]:
        """program.hex and weights.hex ($readmemh format, one 32-bit word a line) into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for name, words in (("program.hex", self.program), ("weights.hex", self.weights)):
            p = directory / name
            p.write_text("".join(f"{int(v):08x}\n" for v in words))
            out.append(p)
        return out

    def summary(self) -> str:
        """One line per layer: mode, shapes, MACs, memory addresses."""
        lines = [f"engine program for {self.graph_name}: {len(self.layers)} layers, "
                 f"{len(self.weights):,} weight words ({len(self.weights) * 4:,} B of {MEM_WORDS * 4:,}), "
                 f"activations {self.act_bytes:,} B of {MEM_WORDS * 4:,}"]
        for i, ly in enumerate(self.layers):
            lines.append(f"{i:02d} {ly.mode.name:4s} {ly.op:17s} {'x'.join(map(str, ly.in_shape))} -> "
                         f"{'x'.join(map(str, ly.out_shape))}  macs {ly.macs:,}  in@{ly.in_base} out@{ly.out_base}"
                         + (f"  w{ly.weight_bits}" if ly.weight_bits else ""))
        if self.host_ops:
            lines.append(f"host: {', '.join(self.host_ops)} (golden interpreter's int8 kernel)")
        return "\n".join(lines)


def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return 1, 1, shape[1]
    raise ValueError(f"shape {list(shape)} is not NHWC or [N, C]")


def unsupported(graph: Graph) -> list[tuple[str, int, str, str]]:
    """(op, count, first node, reason) for every node the engine cannot run; [] when the whole graph fits."""
    problems: dict[tuple[str, str], list[str]] = {}

    def bad(node: Node, why: str) -> None:
        problems.setdefault((node.op.value, why), []).append(node.name)

    produced_by_prev: str | None = graph.inputs[0] if len(graph.inputs) == 1 else None
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return [("GRAPH", 1, graph.name, "the engine runs graphs with one input and one output")]
    if graph.tensor(graph.inputs[0]).dtype != "int8":
        return [("GRAPH", 1, graph.name, f"input dtype {graph.tensor(graph.inputs[0]).dtype}: the engine reads "
                                         "int8 inputs (quantize with io='int8')")]
    contexts, prep_problems = prepare_all(graph)
    for name, op, why in prep_problems:
        problems.setdefault((op, why), []).append(name)
    for i, (node, ctx) in enumerate(zip(graph.nodes, contexts, strict=True)):
        if node.inputs[0] != produced_by_prev:
            bad(node, "the engine runs a chain of layers (each node reads the previous node's output)")
        produced_by_prev = node.outputs[0]
        out = graph.tensor(node.outputs[0])
        if node.op is Op.SOFTMAX:
            if i != len(graph.nodes) - 1:
                bad(node, "SOFTMAX runs on the host, so it must be the last node")
            continue
        if out.dtype != "int8":
            bad(node, f"{out.dtype} output: the engine computes int8 activations")
            continue
        if node.op in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED):
            w = graph.tensor(node.inputs[1])
            if w.quant is None or np.any(w.quant.zero_point != 0):
                bad(node, "weights must be symmetric (zero point 0)")
            if w.quant is not None and w.quant.bits not in (8, 4):
                bad(node, f"{w.quant.bits}-bit weights (the engine takes 8 or 4)")
            if list(node.attrs.get("dilations", [1, 1])) != [1, 1]:
                bad(node, "dilated convolution")
            if node.op is Op.DEPTHWISE_CONV_2D and int(node.attrs.get("depth_multiplier", 1)) != 1:
                bad(node, "depth multiplier other than 1")
            if ctx.data.get("wide"):
                bad(node, "64-bit accumulator (16x8) layer")
            if node.op is not Op.FULLY_CONNECTED:
                kh, kw = w.shape[1], w.shape[2]
                cin = graph.tensor(node.inputs[0]).shape[3]
                k = kh * kw * (cin if node.op is Op.CONV_2D else 1)
                if k > MAX_K:
                    bad(node, f"{k} taps per output (the engine's counter stops at {MAX_K})")
            if max(out.shape) > MAX_DIM:
                bad(node, f"dimension above {MAX_DIM}")
        elif node.op is Op.AVERAGE_POOL_2D:
            if any(node.attrs.get("pads", [0, 0, 0, 0])):
                bad(node, "padded average pool (the engine divides by a fixed window size)")
        elif node.op is Op.RESHAPE:
            src = graph.tensor(node.inputs[0]).shape
            if _pad4(src[-1]) != src[-1] and tuple(src[-1:]) != tuple(out.shape[-1:]):
                bad(node, "reshape that changes the padded channel layout")
        else:
            bad(node, "no engine layer for this op")
    return [(op, len(names), names[0], why) for (op, why), names in problems.items()]


def _requant_params(ctx: NodeContext, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift): the quantizer's stored values when present, else the golden Prepare's."""
    stored = ctx.node.attrs.get("requant")
    if stored:
        return np.asarray(stored["multiplier"], dtype=np.int64), np.asarray(stored["shift"], dtype=np.int64)
    return (np.broadcast_to(ctx.data["multiplier"], (channels,)).astype(np.int64),
            np.broadcast_to(ctx.data["shift"], (channels,)).astype(np.int64))


def _group_blocks(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, wmat: np.ndarray | None) -> list[int]:
    """WMEM words of one layer: per group of 4 channels, 9 parameter words then its K weight words.

    `wmat` is [K, Cout] int8 (None for unit weights).
    """
    cout = bias.shape[0]
    groups = _pad4(cout) // LANES
    words: list[int] = []
    for g in range(groups):
        ch = [g * LANES + lane for lane in range(LANES)]
        b = [int(bias[c]) if c < cout else 0 for c in ch]
        m = [int(mult[c]) if c < cout else 0 for c in ch]
        s = [int(shift[c]) if c < cout else 0 for c in ch]
        words += [_u32(v) for v in b] + [_u32(v) for v in m]
        words.append(sum((v & 0xFF) << (8 * lane) for lane, v in enumerate(s)))
        if wmat is not None:
            blk = np.zeros((wmat.shape[0], LANES), dtype=np.int8)
            valid = [c for c in ch if c < cout]
            blk[:, : len(valid)] = wmat[:, valid]
            words += [int(v) for v in blk.view("<u4").reshape(-1)]
    return words


def lower_engine(graph: Graph) -> EngineProgram:
    """The engine program for a quantized chain graph (UnsupportedOpsError listing every problem otherwise)."""
    problems = unsupported(graph)
    if problems:
        raise UnsupportedOpsError(graph.name, problems)
    contexts, _ = prepare_all(graph)
    in_name = graph.inputs[0]
    in_shape = _hwc(graph.tensor(in_name).shape)
    sizes = [in_shape[0] * in_shape[1] * _pad4(in_shape[2])]
    sizes += [(lambda s: s[0] * s[1] * _pad4(s[2]))(_hwc(graph.tensor(n.outputs[0]).shape)) for n in graph.nodes
              if n.op not in (Op.RESHAPE, Op.SOFTMAX)]
    region = -(-max(sizes) // 16) * 16
    bases = [0, region]  # ping-pong: A holds the input
    where = {in_name: 0}
    cur = 0
    layers: list[EngineLayer] = []
    weights: list[int] = []
    host_ops: list[str] = []
    last = in_name
    for node, ctx in zip(graph.nodes, contexts, strict=True):
        if node.op is Op.SOFTMAX:
            host_ops.append(node.name)
            continue
        if node.op is Op.RESHAPE:
            where[node.outputs[0]] = where[node.inputs[0]]
            last = node.outputs[0]
            continue
        x = graph.tensor(node.inputs[0])
        out = graph.tensor(node.outputs[0])
        h, w, c = _hwc(x.shape)
        oh, ow, oc = _hwc(out.shape)
        cpi = _pad4(c)
        nxt = 1 - cur
        in_base, out_base = where[node.inputs[0]], bases[nxt]
        f: dict[Field, int] = dict.fromkeys(Field, 0)
        wbits = None
        if node.op in (Op.CONV_2D, Op.FULLY_CONNECTED, Op.DEPTHWISE_CONV_2D):
            wt = graph.tensor(node.inputs[1])
            wbits = wt.quant.bits  # type: ignore[union-attr]
            wdata = wt.data.astype(np.int8)  # type: ignore[union-attr]
            bias = graph.tensor(node.inputs[2]).data.astype(np.int64) if len(node.inputs) > 2 and node.inputs[2] \
                else np.zeros(oc, dtype=np.int64)
            mult, shift = _requant_params(ctx, oc)
            if node.op is Op.FULLY_CONNECTED:
                kh, kw = h, w  # a flattened NHWC input is a convolution with one window over all of it
                sh = sw = 1
                pads = [0, 0, 0, 0]
                mode = Mode.CONV
                wmat = wdata.reshape(oc, -1).T  # [K, Cout]
            elif node.op is Op.CONV_2D:
                kh, kw = wdata.shape[1], wdata.shape[2]
                sh, sw = node.attrs.get("strides", [1, 1])
                pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
                mode = Mode.CONV
                wmat = wdata.reshape(oc, -1).T  # OHWI -> [(ky, kx, ic), Cout]
            else:
                kh, kw = wdata.shape[1], wdata.shape[2]
                sh, sw = node.attrs.get("strides", [1, 1])
                pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
                mode = Mode.DW
                wmat = wdata.reshape(kh * kw, oc)  # 1HWC -> [(ky, kx), C]
            icn = c if mode is Mode.CONV else 1
            d = ctx.data
            f.update({Field.IN_ZP: d["in_zp"], Field.OUT_ZP: d["out_zp"], Field.ACT_MIN: d["act"][0],
                      Field.ACT_MAX: d["act"][1]})
            block = _group_blocks(bias, mult, shift, wmat)
            glen = PARAM_WORDS + wmat.shape[0]
        else:  # AVERAGE_POOL_2D
            kh, kw = node.attrs["kernel"]
            sh, sw = node.attrs.get("strides", [1, 1])
            pads = [0, 0, 0, 0]
            mode = Mode.POOL
            icn = 1
            count = kh * kw
            m, r = pool_reciprocal(count, 128 * count + count // 2)
            ones = np.ones(oc, dtype=np.int64)
            block = _group_blocks(0 * ones, m * ones, -r * ones, None)
            glen = PARAM_WORDS
            lo, hi = ctx.data["act"]
            f.update({Field.IN_ZP: 0, Field.OUT_ZP: 0, Field.ACT_MIN: lo, Field.ACT_MAX: hi,
                      Field.HALF: count // 2, Field.UNIT_W: 1})
        f.update({
            Field.MODE: mode, Field.OH: oh, Field.OW: ow, Field.GROUPS: _pad4(oc) // LANES, Field.KH: kh,
            Field.KW: kw, Field.ICN: icn, Field.H: h, Field.W: w, Field.PAD_TOP: pads[0], Field.PAD_LEFT: pads[1],
            Field.STEP_KX: cpi, Field.STEP_KY: w * cpi, Field.STEP_OX: sw * cpi, Field.STEP_OY: sh * w * cpi,
            Field.SH: sh, Field.SW: sw, Field.IN_ORIGIN: in_base - pads[0] * w * cpi - pads[1] * cpi,
            Field.OUT_BASE: out_base // 4, Field.W_BASE: len(weights), Field.W_GROUP_LEN: glen,
        })
        weights += block
        layers.append(EngineLayer(node.name, node.op.value, mode, f, (h, w, c), (oh, ow, oc), in_base, out_base,
                                  graph.macs(node) if mode is not Mode.POOL else oh * ow * oc * kh * kw, wbits))
        where[node.outputs[0]] = out_base
        cur = nxt
        last = node.outputs[0]
    if len(weights) > MEM_WORDS:
        raise UnsupportedOpsError(graph.name, [("GRAPH", 1, graph.name, f"{len(weights):,} weight words exceed the "
                                                                         f"engine's {MEM_WORDS:,}")])
    if 2 * region > MEM_WORDS * 4:
        raise UnsupportedOpsError(graph.name, [("GRAPH", 1, graph.name, f"two {region:,} B activation regions "
                                                                         f"exceed the engine's {MEM_WORDS * 4:,} B")])
    prog: list[int] = []
    for ly in layers:
        row = [0] * FIELDS
        for k, v in ly.fields.items():
            row[int(k)] = _u32(int(v))
        prog += row
    prog += [int(Mode.END)] + [0] * (FIELDS - 1)
    out_shape = _hwc(graph.tensor(last).shape)
    return EngineProgram(graph.name, layers, np.array(prog, dtype=np.uint32), np.array(weights, dtype=np.uint32),
                         in_name, in_shape, 0, last, out_shape, where[last], host_ops, 2 * region)


# --- the bit-level Python model of the engine ------------------------------------------------------------

def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _requant_hw(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, pool: bool, half: int) -> np.ndarray:
    """The RTL requantizer (sign-magnitude product) for int64 arrays; equals fixedpoint.requantize."""
    if not pool:
        return requantize(acc, mult, shift)
    neg = acc <= 0
    n = np.abs(acc) + half
    q = (n * mult) >> (31 - shift)  # shift = -r
    return np.where(neg, -q, q)


def model_run(prog: EngineProgram, x: np.ndarray) -> np.ndarray:
    """Run the program on one int8 input as the RTL does, from the program words and memory images alone."""
    amem = np.zeros(MEM_WORDS * 4, dtype=np.int64)
    words = prog.pack_input(x)
    amem[: len(words) * 4] = words.view(np.int8).astype(np.int64)
    wmem = prog.weights
    nl = len(prog.program) // FIELDS
    for i in range(nl):
        f = [_s32(int(v)) for v in prog.program[i * FIELDS:(i + 1) * FIELDS]]
        mode = Mode(f[Field.MODE])
        if mode is Mode.END:
            break
        G, OH, OW, KH, KW, ICN = (f[Field.GROUPS], f[Field.OH], f[Field.OW], f[Field.KH], f[Field.KW], f[Field.ICN])
        oy, ox, ky, kx, ic = np.meshgrid(np.arange(OH), np.arange(OW), np.arange(KH), np.arange(KW), np.arange(ICN),
                                         indexing="ij")
        iy = oy * f[Field.SH] - f[Field.PAD_TOP] + ky
        ix = ox * f[Field.SW] - f[Field.PAD_LEFT] + kx
        valid = (iy >= 0) & (iy < f[Field.H]) & (ix >= 0) & (ix < f[Field.W])
        addr = (f[Field.IN_ORIGIN] + oy * f[Field.STEP_OY] + ox * f[Field.STEP_OX] + ky * f[Field.STEP_KY]
                + kx * f[Field.STEP_KX] + ic)
        k = KH * KW * ICN
        for g in range(G):
            base = f[Field.W_BASE] + g * f[Field.W_GROUP_LEN]
            p = wmem[base: base + PARAM_WORDS].astype(np.int64)
            bias = np.array([_s32(int(v)) for v in p[0:4]])
            mult = p[4:8]
            shift = np.array([((int(p[8]) >> (8 * lane)) & 0xFF) for lane in range(LANES)])
            shift = np.where(shift >= 128, shift - 256, shift)
            if f[Field.UNIT_W]:
                wk = np.ones((k, LANES), dtype=np.int64)
            else:
                wk = wmem[base + PARAM_WORDS: base + PARAM_WORDS + k].astype("<u4").view(np.int8).reshape(k, LANES)
            if mode is Mode.CONV:
                xs = amem[np.where(valid, addr, 0) & (MEM_WORDS * 4 - 1)].reshape(OH * OW, k)[:, :, None]
            else:
                a = (np.where(valid, addr, 0) + 4 * g)[..., None] + np.arange(LANES)
                xs = amem[a & (MEM_WORDS * 4 - 1)].reshape(OH * OW, k, LANES)
            xm = np.where(valid.reshape(OH * OW, k)[:, :, None], xs - f[Field.IN_ZP], 0)
            acc = (xm * wk[None].astype(np.int64)).sum(axis=1) + bias  # [P, 4]
            acc = ((acc + 2**31) & 0xFFFFFFFF) - 2**31
            y = _requant_hw(acc, mult, shift, mode is Mode.POOL, f[Field.HALF]) + f[Field.OUT_ZP]
            y = np.clip(y, f[Field.ACT_MIN], f[Field.ACT_MAX])
            out_w = f[Field.OUT_BASE] + np.arange(OH * OW) * G + g
            for lane in range(LANES):
                amem[out_w * 4 + lane] = y[:, lane]
    ob = prog.output_base
    n = prog.output_words * 4
    return prog.unpack_output(amem[ob: ob + n].astype(np.int8).view("<u4"))


def program_info(prog: EngineProgram) -> dict[str, Any]:
    """JSON-able facts about a program (for reports and the manifest)."""
    return {"layers": len(prog.layers), "weight_words": int(len(prog.weights)), "act_bytes": prog.act_bytes,
            "macs": sum(ly.macs for ly in prog.layers), "host_ops": prog.host_ops,
            "lanes": LANES}


# Cycle model of ep_engine.v's sequencer (checked against the RTL simulation in the tests):
LOAD_CYCLES = FIELDS + 1  # S_LOAD: one field a cycle, plus the ROM's latency
GROUP_CYCLES = 1 + PARAM_WORDS + 1  # S_GROUP, S_PARAM (one word a cycle, plus the RAM's latency)
# Per output pixel beyond its K taps: S_PIX, the MAC pipeline drain, 4 lanes into the requantizer, its
# 8-stage latency, S_WRITE, S_NEXT.
PIXEL_OVERHEAD = 19


def engine_cycles(prog: EngineProgram) -> int:
    """Cycles from start to done: the engine's loops are fixed by the program, so this is exact."""
    total = LOAD_CYCLES * (len(prog.layers) + 1)
    for ly in prog.layers:
        f = ly.fields
        k = f[Field.KH] * f[Field.KW] * f[Field.ICN]
        pixels = f[Field.OH] * f[Field.OW]
        total += f[Field.GROUPS] * (GROUP_CYCLES + pixels * (k + PIXEL_OVERHEAD))
    return total
