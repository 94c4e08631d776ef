"""FPGA resources, Fmax, cycles and latency per model and architecture.

For each case the script compiles the model exactly as the target does (`get_target(t).compile`), which
runs yosys + nextpnr-ice40 + icepack for `ice40-up5k` (logic cells, SB_MAC16, SPRAM, BRAM, Fmax after
routing) or `yosys synth_xilinx -family xc7` (LUT/FF/DSP/BRAM counts, no timing). With --sim it also
simulates the RTL on random int8 inputs (Verilator or Icarus) and requires bit-exact agreement with the
golden interpreter, and takes the cycle count from the simulation instead of the engine's cycle model.

Cases: kws/engine (../shared/models/kws_ref_model.tflite), mlp16/unrolled (the 16-8-4 int8 MLP with
power-of-two scales of tests/targets/fpga/fpga_helpers.py).

Usage: python benchmarks/fpga.py [--targets ice40-up5k xc7] [--sim 5] [--out benchmarks/results/fpga.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "targets" / "fpga"))

from fpga_helpers import KWS, mlp_graph  # noqa: E402

from edgepack.ir.loader import load_model  # noqa: E402
from edgepack.ir.reference import Interpreter  # noqa: E402
from edgepack.targets import get_target  # noqa: E402
from edgepack.targets.fpga.impl import tool_version  # noqa: E402


def cases() -> list[tuple[str, str, object, bytes]]:
    """(model, arch, graph, source bytes)."""
    out = []
    if KWS.is_file():
        out.append(("kws", "engine", load_model(KWS), KWS.read_bytes()))
    out.append(("mlp16", "unrolled", mlp_graph(), b"mlp16"))
    return out


def simulate(graph, arch: str, arts, n: int) -> tuple[int, str]:
    """(cycles per inference, simulator) from an RTL simulation of n random inputs, checked bit-exact."""
    x = np.random.default_rng(0).integers(-128, 128, size=(n, *graph.tensor(graph.inputs[0]).shape[1:]),
                                          dtype=np.int8)
    it = Interpreter(graph)
    want = np.stack([it.run({graph.inputs[0]: x[i: i + 1]})[graph.outputs[0]].reshape(-1) for i in range(n)])
    if arch == "engine":
        from edgepack.targets.fpga.engine.program import lower_engine
        from edgepack.targets.fpga.sim import engine_graph_outputs, simulate_engine

        prog = lower_engine(graph)
        res = simulate_engine(prog, x)
        got = engine_graph_outputs(graph, prog, res.outputs)[graph.outputs[0]].reshape(n, -1)
        cycles, sim = res.cycles_per_inference, res.simulator
    else:
        import tempfile

        from edgepack.targets.fpga.sim import pick_simulator
        from edgepack.targets.fpga.unrolled import simulate_design, write_design

        with tempfile.TemporaryDirectory() as tmp:
            design = write_design(graph, Path(tmp))
            got = simulate_design(design, design.files, x)
        cycles, sim = design.latency, pick_simulator()
    if not np.array_equal(got, want):
        raise SystemExit(f"RTL simulation disagrees with the golden interpreter for {graph.name} ({arch})")
    return cycles, sim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", nargs="+", default=["ice40-up5k", "xc7"])
    ap.add_argument("--sim", type=int, default=0, help="simulate N random inputs per case (bit-exact check)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fpga.json"))
    args = ap.parse_args()
    rows = []
    for target in args.targets:
        for model, arch, graph, blob in cases():
            t0 = time.perf_counter()
            arts = get_target(target).compile(graph, ("tflite", blob), {"fpga_arch": arch})
            info = json.loads(next(f.data for f in arts.files if f.path == "fpga.json"))
            impl = info.get("implementation") or {}
            cycles, src = info["cycles_per_inference"], info["cycles_source"]
            if args.sim:
                cycles, sim = simulate(graph, arch, arts, args.sim)
                src = f"RTL simulation ({sim}, {args.sim} inputs, bit-exact)"
            fmax = impl.get("fmax_mhz")
            rows.append({
                "model": model, "arch": arch, "target": target,
                "lcs": impl.get("lcs"), "luts": impl.get("luts"), "ffs": impl.get("ffs"),
                "dsps": impl.get("dsps"), "spram": impl.get("sprams"), "bram": impl.get("brams", impl.get("bram36")),
                "fmax_mhz": fmax, "cycles": cycles, "cycles_source": src,
                "latency_ms": round(cycles / (fmax * 1e3), 4) if fmax else None,
                "resource_source": impl.get("source"), "seconds": round(time.perf_counter() - t0, 1),
            })
            print(f"{model}/{arch}/{target}: done in {rows[-1]['seconds']} s", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result = {"commit": commit.stdout.strip(), "machine": platform.machine(),
              "tools": {t: tool_version(t) for t in ("yosys", "nextpnr-ice40", "icepack")}, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    head = f"{'model':7s} {'arch':9s} {'target':11s} {'LC/LUT':>7s} {'FF':>6s} {'DSP':>4s} {'SPRAM':>5s} " \
           f"{'BRAM':>5s} {'Fmax MHz':>9s} {'cycles':>10s} {'latency ms':>11s}"
    print(head)
    for r in rows:
        def f(v, fmt="{}"):
            return fmt.format(v) if v is not None else "-"
        print(f"{r['model']:7s} {r['arch']:9s} {r['target']:11s} {f(r['lcs'] or r['luts'], '{:,}'):>7s} "
              f"{f(r['ffs'], '{:,}'):>6s} {f(r['dsps']):>4s} {f(r['spram']):>5s} {f(r['bram']):>5s} "
              f"{f(r['fmax_mhz'], '{:.2f}'):>9s} {r['cycles']:>10,} {f(r['latency_ms']):>11s}")
    print(f"sources: ice40 {tool_version('nextpnr-ice40')} --up5k (Fmax after routing); xc7 "
          f"{tool_version('yosys')} synth_xilinx (counts only); cycles: {rows[0]['cycles_source'] if rows else ''}")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
