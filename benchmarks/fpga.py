"""FPGA resources, Fmax, cycles and latency per model and architecture.

For each case the script compiles the model exactly as the target does (`get_target(t).compile`), which
runs yosys + nextpnr-ice40 + icepack for `ice40-up5k` (logic cells, SB_MAC16, SPRAM, BRAM, Fmax after
routing) or `yosys synth_xilinx -family xc7` (LUT/FF/DSP/BRAM counts, no timing). With --sim it also
runs N random int8 inputs on the sim board (the board top with its serial link, under Verilator, driven
by the host client), requires bit-exact agreement with the golden interpreter and reports the cycles per
INVOKE the board counted (the engine's cycles plus the copies between the link's buffers and its memory).

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "targets" / "fpga"))

from fpga_helpers import KWS, mlp_graph  # noqa: E402

from edgepack.ir.loader import load_model  # noqa: E402
from edgepack.targets import get_target  # noqa: E402
from edgepack.targets.fpga.impl import tool_version  # noqa: E402


def cases() -> list[tuple[str, str, object, bytes]]:
    """(model, arch, graph, source bytes)."""
    out = []
    if KWS.is_file():
        out.append(("kws", "engine", load_model(KWS), KWS.read_bytes()))
    out.append(("mlp16", "unrolled", mlp_graph(w_max=3), b"mlp16"))  # weights in [-3, 3]: fits with the link
    return out


def simulate(graph, arch: str, target: str, n: int) -> tuple[int, str]:
    """(cycles per inference, source) from the sim board: the bundle's board top, serial link included, under
    Verilator, on n random golden inputs that must come back bit-exact over the link."""
    import tempfile

    from edgepack.ir.tflite_export import to_tflite
    from edgepack.packager.pipeline import package
    from edgepack.targets.board_session import verify_connected
    from edgepack.targets.fpga.boards import connect

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / f"{graph.name}.tflite"
        model.write_bytes(to_tflite(graph))
        bundle = Path(tmp) / "b.edgepack"
        package(model, bundle, target=target, golden_count=n, target_options={"fpga_arch": arch, "implement": False})
        with connect(bundle, "sim") as board:
            report = verify_connected(bundle, board)
    if not report.passed:
        raise SystemExit(f"the sim board disagrees with the golden interpreter for {graph.name} ({arch})")
    return report.ticks_per_inference, f"sim board over the serial link ({n} inputs, bit-exact; cycles per INVOKE)"


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
                cycles, src = simulate(graph, arch, target, args.sim)
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
