"""The `unrolled` architecture: a fully-unrolled, pipelined network through da4ml (distributed arithmetic).

da4ml (LGPL-3.0, optional: ``pip install 'edgepack[fpga]'``) traces fixed-point arithmetic on symbolic
variables and emits pipelined Verilog whose constant multiplications are shift-add trees (no DSPs).
The integer semantics must stay the golden interpreter's, so each FULLY_CONNECTED layer is traced as:

    acc = (x - in_zp) @ W.T + bias                                  exact integers
    t   = quantize(acc * 2**(left - 1), f=0, RND)                  = SRDHM(acc << left, 2**30)
    neg = quantize(relu(-t), k=0, i=1, f=0, SAT)                    = [t < 0]
    r   = quantize((t + 2**(e - 1) - neg) * 2**-e, f=0, TRN)        = RoundingDivideByPOT(t, e)   (e >= 1)
    y   = clamp(r + out_zp, act_min, act_max)                       via relu and SAT

This is exact when every requantization multiplier is 2**30, i.e. the layer's real scale ratio
in_scale * w_scale / out_scale is a power of two (then tflite::QuantizeMultiplier gives 2**30 and a shift):
quantize such models with power-of-two scales. Other multipliers are refused (`unsupported`) rather than
approximated. The tests check the traced function and the simulated RTL against the golden interpreter.

Usage: ``comb = trace_graph(graph)``; ``compile_unrolled(graph, "ice40-up5k", board, workdir, True)``
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.ir.ops import Op
from edgepack.ir.reference.interpreter import prepare_all
from edgepack.targets.base import Artifact

UNROLLED_MAX_WEIGHTS = 4096  # beyond this an UP5K is full long before (FIELD-NOTES: ~2.5k LUTs)
DA4ML_HINT = "install da4ml: pip install 'edgepack[fpga]' (da4ml, LGPL-3.0)"
RTL_DIR = Path(__file__).parent / "engine" / "rtl"
TB = "ep_unrolled_tb.v"
TOP = "ep_unrolled_top.v"
TOP_MODULE = "ep_unrolled_top"
PORT = "ep_unrolled_port.v"


def available() -> bool:
    """True when da4ml imports."""
    try:
        import da4ml  # noqa: F401
    except ImportError:
        return False
    return True


def unsupported(graph: Graph) -> list[tuple[str, int, str, str]]:
    """(op, count, first node, reason) for every node the unrolled path cannot take."""
    problems: dict[tuple[str, str], list[str]] = {}
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return [("GRAPH", 1, graph.name, "one input and one output")]
    x = graph.tensor(graph.inputs[0])
    if x.dtype != "int8" or len(x.shape) != 2:
        return [("GRAPH", 1, graph.name, f"input {x.dtype}{list(x.shape)}: an int8 [1, N] input")]
    contexts, prep = prepare_all(graph)
    for name, op, why in prep:
        problems.setdefault((op, why), []).append(name)
    prev = graph.inputs[0]
    weights = 0
    for node, ctx in zip(graph.nodes, contexts, strict=True):
        def bad(why: str, node=node) -> None:
            problems.setdefault((node.op.value, why), []).append(node.name)

        if node.inputs[0] != prev:
            bad("a chain of layers")
        prev = node.outputs[0]
        if node.op is not Op.FULLY_CONNECTED:
            bad("only FULLY_CONNECTED layers unroll")
            continue
        if graph.tensor(node.outputs[0]).dtype != "int8" or "multiplier" not in ctx.data:
            bad("int8 activations")
            continue
        w = graph.tensor(node.inputs[1])
        weights += w.size
        if np.any(np.asarray(ctx.data["multiplier"]) != 1 << 30):
            bad("requantization multiplier is not 2**30 (quantize with power-of-two scales)")
        shift = np.asarray(ctx.data["shift"])
        bound = np.abs(w.data.astype(np.int64)).sum(axis=1) * 255  # type: ignore[union-attr]
        if len(node.inputs) > 2 and node.inputs[2]:
            bound = bound + np.abs(graph.tensor(node.inputs[2]).data.astype(np.int64))  # type: ignore[union-attr]
        if np.any(bound * 2.0 ** np.maximum(shift, 0) >= 2**31):
            bad("the accumulator could overflow int32")
    if weights > UNROLLED_MAX_WEIGHTS:
        problems.setdefault(("GRAPH", f"{weights} weights (unrolled takes at most {UNROLLED_MAX_WEIGHTS})"),
                            []).append(graph.name)
    return [(op, len(names), names[0], why) for (op, why), names in problems.items()]


def trace_graph(graph: Graph) -> tuple[Any, Any]:
    """(da4ml input array, CombLogic) computing the graph's int8 output from its int8 input."""
    try:
        from da4ml.trace import FixedVariableArray, FixedVariableArrayInput, comb_trace
        from da4ml.trace.ops import quantize, relu
    except ImportError as exc:
        raise EdgepackError(f"--fpga-arch unrolled needs da4ml ({exc})", hint=DA4ML_HINT) from None
    problems = unsupported(graph)
    if problems:
        raise EdgepackError(f"{graph.name}: cannot unroll: " + "; ".join(f"{op} {first}: {why}"
                                                                           for op, _, first, why in problems))
    contexts, _ = prepare_all(graph)
    n_in = graph.tensor(graph.inputs[0]).shape[1]
    inp = FixedVariableArrayInput((n_in,))
    x = quantize(inp, 1, 7, 0)
    for node, ctx in zip(graph.nodes, contexts, strict=True):
        d = ctx.data
        w = graph.tensor(node.inputs[1]).data.astype(np.int64)  # type: ignore[union-attr]
        bias = graph.tensor(node.inputs[2]).data.astype(np.int64) if len(node.inputs) > 2 and node.inputs[2] \
            else np.zeros(w.shape[0], dtype=np.int64)  # type: ignore[union-attr]
        acc = (x - d["in_zp"]) @ w.T.astype(np.float64) + bias.astype(np.float64)
        lo, hi = d["act"]
        shifts = np.broadcast_to(np.asarray(d["shift"]), (w.shape[0],))
        result = np.empty(w.shape[0], dtype=object)
        for shift in sorted(set(int(s) for s in shifts)):
            idx = np.nonzero(shifts == shift)[0]
            left, e = max(shift, 0), max(-shift, 0)
            t = quantize(acc[idx] * 2.0 ** (left - 1), 1, 31, 0, "WRAP", "RND")
            if e > 0:
                neg = quantize(relu(-t), 0, 1, 0, "SAT")
                t = quantize((t + 2.0 ** (e - 1) - neg) * 2.0 ** -e, 1, 31, 0, "WRAP", "TRN")
            z = relu(t + (d["out_zp"] - lo)) + lo  # max(t + out_zp, act_min)
            z = -relu(-z + hi) + hi  # min(., act_max)
            result[idx] = quantize(z, 1, 7, 0, "SAT")._vars
        x = FixedVariableArray(result, x.solver_options)
    return inp, comb_trace(inp, x)


@dataclass
class UnrolledDesign:
    """The written da4ml project: Verilog files, I/O widths and pipeline latency."""

    files: list[Path]
    in_bits: int  # per input element
    out_bits: int  # per output element
    out_signed: bool
    out_frac: int
    n_in: int
    n_out: int
    latency: int  # clock edges from input register to output register
    cost: float


def write_design(graph: Graph, work: Path, latency_cutoff: float = 4.0) -> UnrolledDesign:
    """Trace `graph` and write da4ml's pipelined Verilog under `work/da4ml`."""
    import json

    from da4ml.codegen.rtl.rtl_model import VerilogModel, get_io_kifs

    _, comb = trace_graph(graph)
    prj = work / "da4ml"
    model = VerilogModel(comb, "ep_mlp", prj, latency_cutoff=latency_cutoff, print_latency=False)
    model.write()
    kin, kout = get_io_kifs(comb)  # [k, i, f] x elements; the wrapper pads every element to the widest
    in_bits = int(kin[0].max() + kin[1].max() + kin[2].max())
    out_bits = int(kout[0].max() + kout[1].max() + kout[2].max())
    src = prj / "src"
    files = sorted(src.glob("*.v"))
    generated = "".join(f.read_text() for f in files)
    # Only the library modules the design instantiates (an unused lookup_table would need its .mem file).
    files += [f for f in sorted((src / "static").glob("*.v")) if re.search(rf"\b{f.stem}\b", generated)]
    stages = len(re.findall(r"reg \[[^\]]+\] stage\d+_inp", (src / "ep_mlp.v").read_text()))
    meta = json.loads((prj / "metadata.json").read_text())
    return UnrolledDesign(files, in_bits, out_bits, bool(kout[0].max()), int(kout[2].max()),
                          kin.shape[1], kout.shape[1], stages + 1, float(meta.get("cost", 0.0)))


def _tb_config(design: UnrolledDesign, n: int, work: Path) -> str:
    return "\n".join([f"localparam N_INPUTS = {n};", f"localparam IN_W = {design.in_bits * design.n_in};",
                      f"localparam OUT_W = {design.out_bits * design.n_out};",
                      f"localparam HOLD = {design.latency + 2};",
                      f'localparam INPUTS_HEX = "{work / "inputs.hex"}";',
                      f'localparam OUTPUTS_TXT = "{work / "outputs.txt"}";', ""])


def simulate_design(design: UnrolledDesign, rtl: list[Path], x: np.ndarray, simulator: str = "auto") -> np.ndarray:
    """Run int8 inputs [N, n_in] through the da4ml RTL (our testbench); returns int8 [N, n_out]."""
    from edgepack.targets.fpga.sim import compile_and_run, pick_simulator

    sim = pick_simulator(simulator)
    x = np.asarray(x, dtype=np.int64).reshape(len(x), -1)
    with tempfile.TemporaryDirectory(prefix="edgepack-fpga-unrolled-") as tmp:
        work = Path(tmp)
        lines = []
        mask = (1 << design.in_bits) - 1
        for row in x:
            v = 0
            for i, val in enumerate(row):
                v |= (int(val) & mask) << (design.in_bits * i)
            lines.append(f"{v:0{-(-design.in_bits * design.n_in // 4)}x}\n")
        (work / "inputs.hex").write_text("".join(lines))
        (work / "tb_config.vh").write_text(_tb_config(design, len(x), work))
        compile_and_run([*rtl, RTL_DIR / TB], "ep_unrolled_tb", work, sim)
        raw = [int(t, 16) for t in (work / "outputs.txt").read_text().split()]
    out = np.zeros((len(x), design.n_out), dtype=np.int64)
    for s, v in enumerate(raw):
        for j in range(design.n_out):
            e = (v >> (design.out_bits * j)) & ((1 << design.out_bits) - 1)
            if design.out_signed and e >> (design.out_bits - 1):
                e -= 1 << design.out_bits
            out[s, j] = e
    return (out * 2.0 ** -design.out_frac).astype(np.int64).astype(np.int8)


def compile_unrolled(graph: Graph, sha: str, target: str, board: Any, work: Path, implement: bool
                     ) -> tuple[list[Artifact], dict[str, Any], list[str], Any]:
    """RTL (da4ml + our serial-link top), bitstream or xc7 estimate, report lines, the link's LinkSpec."""
    from edgepack.targets.fpga import impl
    from edgepack.targets.fpga.compile import LINK_RTL, link_info
    from edgepack.targets.fpga.link import unrolled_link

    design = write_design(graph, work)
    spec = unrolled_link(design, graph, sha, board.name, board.clock_hz, target)
    rtl = work / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    for f in design.files:
        shutil.copy(f, rtl / f.name)
    ours = [*LINK_RTL, PORT, TOP]
    for name in (*ours, "icebreaker.pcf", "upduino.pcf"):
        shutil.copy(RTL_DIR / name, rtl / name)
    spec.write(rtl)
    sim_sources = [*(f.name for f in design.files), *ours]
    weights = sum(graph.tensor(n.inputs[1]).size for n in graph.nodes)
    info: dict[str, Any] = {
        "design": {"in_bits": design.in_bits, "out_bits": design.out_bits, "out_signed": design.out_signed,
                   "out_frac": design.out_frac, "n_in": design.n_in, "n_out": design.n_out,
                   "latency": design.latency, "cost": design.cost},
        "cycles_per_inference": design.latency, "initiation_interval": 1,
        "cycles_source": "da4ml pipeline registers (one inference per clock after the pipeline fills)",
        "weight_bytes": weights, "act_bytes": 0, "host_ops": [], "da4ml_cost": design.cost,
        "link": link_info(spec, sim_sources, board),
    }
    lines = [f"unrolled (da4ml): {len(graph.nodes)} layers, {weights} weights, {design.n_in} x {design.in_bits}-bit "
             f"in, {design.n_out} x {design.out_bits}-bit out, pipeline latency {design.latency} cycles, II 1, "
             f"da4ml cost {design.cost:g}"]
    params = {k: str(v) for k, v in spec.board_params(board.clock_hz).items()}
    sources = [rtl / n for n in sim_sources]
    names = [*sim_sources, "icebreaker.pcf", "upduino.pcf", "identity.hex"]
    bitstream: list[Artifact] = []
    info["implementation"] = None
    if target == "ice40-up5k":
        missing = impl.missing_tools()
        if implement and not missing:
            rep = impl.implement_ice40(sources, TOP_MODULE, rtl, board.pcf_path, board.clock_hz / 1e6,
                                       board.package or "sg48", params)
            info["implementation"] = dict(rep.to_dict(), fmax_mhz=rep.fmax_mhz)
            info["latency_ms_at_fmax"] = round(design.latency / (rep.fmax_mhz * 1e3), 6) if rep.fmax_mhz else None
            lines += [f"iCE40 UP5K implementation for {board.name}, serial link included:", rep.text(),
                      "fits the UP5K" if rep.fits else "DOES NOT FIT the UP5K"]
            if not rep.fits:
                raise EdgepackError(f"{graph.name}: the unrolled design does not fit the iCE40 UP5K:\n{rep.text()}",
                                    hint="use --fpga-arch engine")
            bitstream.append(Artifact("bitstream/top.bin", "bitstream", (rtl / "top.bin").read_bytes()))
        else:
            lines.append("no bitstream: " + ("implement=False" if not implement else ", ".join(missing) + " missing"))
    else:
        (rtl / "build.tcl").write_text(impl.vivado_tcl([s.name for s in sources], TOP_MODULE,
                                                       board.part or "xc7a35ticsg324-1L", board.clock_hz / 1e6,
                                                       params))
        names.append("build.tcl")
        if implement and not impl.missing_tools(("yosys",)):
            rep7 = impl.synth_xc7(sources, TOP_MODULE, rtl / "impl", params)
            info["implementation"] = rep7.to_dict()
            lines += ["xc7 estimate (serial link included):", rep7.text()]
    arts = [Artifact(f"rtl/{n}", "rtl", (rtl / n).read_bytes()) for n in names]
    return arts + bitstream, info, lines, spec
