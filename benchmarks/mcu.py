"""Whole models on the emulated Cortex-M boards, packaged exactly as `edgepack package --target cortex-mX
[--kernels native|tvm]` does, with edgepack's native C kernels and with the Apache TVM kernel provider.

Models: each int8 model in ../shared/models (KWS and AD today) and the digits example (trained with
examples/digits_mlp/train.py into a temp dir and int8-quantized by edgepack.quantize), each packaged with
`kernels="native"` and `kernels="tvm"`; and each float32 model in ../shared/models plus the float digits
model (ONNX), which only the TVM kernels run (the native kernels are integer-only). On each board:

- instructions per inference: SysTick ticks of the invoke under `qemu-system-arm -icount shift=0`
  (one instruction per ns of virtual time), x 1e9 / clock; the median over the golden inputs, which
  the packager ran on the board (int8: bit-exact against the golden interpreter, or packaging fails);
- instructions per MAC (MACs from the bundle's layer table);
- max |diff| against the golden (reference interpreter) outputs, measured here by running the bundle's
  golden inputs on the board a second time: LSB for integer outputs, absolute for float32 outputs;
- flash and RAM of the firmware ELF (arm-none-eabi-size: text+data, data+bss with the 16 KiB stack),
  the model's own flash (the static library without firmware) and its code (flash minus constant tables);
- our arena against TFLM's: tflite-micro's `print_allocations()` ("Arena allocation total") on the
  same .tflite, measured on this 64-bit host (pointers are 8 bytes, so it overstates a Cortex-M arena;
  the Cortex-M4 figures from the cortex-m issue are listed beside it);
- TVM / native ratios (instructions, flash, RAM, arena) per model and board; a float32 model is compared
  with the native int8 run of its int8 twin (kws_ref_model_float vs kws_ref_model, ...).

With `kernels="tvm"` an int8 model's conv / depthwise / FC layers are TVM kernels and its other layers
stay native. A combination that cannot be packaged (a model that does not fit the board's flash, a TVM
compile error) is recorded with its reason instead of stopping the run.

Usage: python benchmarks/mcu.py [--boards qemu-mps2-an386 qemu-mps3-an547] [--models kws ad digits ...]
                                [--kernels native tvm] [--no-float] [--out benchmarks/results/mcu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.ir.loader import load_model
from edgepack.ir.tflite_export import to_tflite
from edgepack.packager.pipeline import package
from edgepack.quantize.options import QuantizeOptions, quantize_model
from edgepack.quantize.scheme import ALLOWED_MCU
from edgepack.runtime.bundle import Bundle
from edgepack.targets.mcu.boards import get_board
from edgepack.targets.mcu.flash import run_on_board
from edgepack.targets.mcu.memory_plan import TFLM_ARENA_BYTES

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BOARDS = ["qemu-mps2-an386", "qemu-mps3-an547"]
KERNELS = ["native", "tvm"]
GOLDEN = 32
# TFLM on the emulated Cortex-M4 (cortex-m issue): instructions/MAC with reference kernels and with CMSIS-NN.
TFLM_M4 = {"kws_ref_model": {"reference": 16.2, "cmsis_nn": 2.90}, "ad01_int8": {"reference": 7.4, "cmsis_nn": 2.2}}
TFLM_CODE_BYTES = {"reference": 43_000, "cmsis_nn": 86_000}  # TFLM code without the model (cortex-m issue)
ARENA_LINE = re.compile(r"Arena allocation total (\d+) bytes")
# A float32 model and the int8 model it is compared with (native kernels).
INT8_TWIN = {"kws_ref_model_float": "kws_ref_model", "ad01_fp32": "ad01_int8", "digits_mlp": "digits_mlp_int8"}
RATIO_FIELDS = ("instructions_per_inference", "flash_bytes", "ram_bytes", "arena_bytes")


def tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unavailable"


def tvm_version() -> str:
    try:
        import tvm  # type: ignore[import-not-found]

        return str(tvm.__version__)
    except Exception as exc:  # ImportError, or a broken wheel
        return f"unavailable ({exc})"


def tflm_arena(model: Path) -> int | None:
    """TFLM's arena for the model, from print_allocations() (a child process: it prints from C++)."""
    if model.suffix != ".tflite":
        return None
    code = ("from tflite_micro.python.tflite_micro import runtime\n"
            f"runtime.Interpreter.from_file({str(model)!r}).print_allocations()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    m = ARENA_LINE.search(proc.stdout + proc.stderr)
    return int(m.group(1)) if m else None


def shared_models() -> tuple[dict[str, Path], dict[str, Path]]:
    """The .tflite models in ../shared/models by graph name: (already quantized, float32)."""
    int8, f32 = {}, {}
    for path in sorted((SHARED / "models").glob("*.tflite")):
        (int8 if load_model(path).is_quantized else f32)[path.stem] = path
    return int8, f32


def digits_models(work: Path) -> tuple[Path, Path]:
    """examples/digits_mlp trained into `work`: (int8-quantized by edgepack on its calibration set, as .tflite;
    the float32 ONNX)."""
    subprocess.run([sys.executable, str(ROOT / "examples" / "digits_mlp" / "train.py"), "--out", str(work)],
                   check=True, capture_output=True)
    graph = load_model(work / "digits_mlp.onnx")
    result = quantize_model(graph, QuantizeOptions(calib=work / "calib.npz", bits="int8"), target="cortex-m4",
                            allowed=ALLOWED_MCU)
    path = work / "digits_mlp_int8.tflite"
    path.write_bytes(to_tflite(result.qgraph))
    return path, work / "digits_mlp.onnx"


def selected(name: str, wanted: list[str] | None) -> bool:
    """`--models` entries select graph names by prefix: kws, ad, digits, kws_ref_model_float, ..."""
    return wanted is None or any(name.startswith(w) for w in wanted)


def _diff(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> tuple[float, str, bool]:
    """Largest |got - want| over the outputs, its unit ("lsb" for integer outputs, "abs" for float), bit-exact."""
    worst, unit, exact = 0.0, "lsb", True
    for name, w in want.items():
        g = np.asarray(got[name])
        if w.dtype.kind == "f":
            unit = "abs"
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))))
        else:
            worst = max(worst, float(np.max(np.abs(g.astype(np.int64) - w.astype(np.int64)))))
        exact = exact and np.array_equal(g, w)
    return worst, unit, exact


def _package(model: Path, out: Path, core: str, board: str, kernels: str, backends: list[str] | None = None
             ) -> dict[str, Any]:
    return package(model, out, target=core, board=board, golden_count=GOLDEN, backends=backends,
                   target_options={"kernels": kernels}).manifest


def bench(name: str, model: Path, board: str, kernels: str, work: Path) -> dict[str, Any]:
    """Package `model` for the board's core and board with `kernels`; the measured figures from the manifest,
    and the outputs of a second run of the golden inputs on the board against the golden outputs."""
    spec = get_board(board)
    graph = load_model(model)
    row: dict[str, Any] = {"model": name, "board": board, "core": spec.core, "kernels": kernels,
                           "dtype": "int8" if graph.is_quantized else "float32",
                           "macs": int(sum(graph.macs(n) for n in graph.nodes))}
    out = work / f"{name}-{board}-{kernels}.edgepack"
    t0 = time.perf_counter()
    note = None
    try:
        m = _package(model, out, spec.core, board, kernels)
    except EdgepackError as exc:
        if "differs from the golden model" not in str(exc):
            return {**row, "status": "refused", "reason": str(exc),
                    "package_seconds": round(time.perf_counter() - t0, 1)}
        # Not bit-exact on the board: package without the device check, then measure the difference below.
        note = f"the packager's device check failed: {exc}"
        try:
            m = _package(model, out, spec.core, board, kernels, backends=["reference"])
        except Exception as exc2:  # noqa: BLE001 - recorded, the run goes on
            return {**row, "status": "failed", "reason": f"{note}; repackaging: {type(exc2).__name__}: {exc2}"}
    except Exception as exc:  # noqa: BLE001 - a TVM or toolchain crash is recorded, the run goes on
        return {**row, "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                "package_seconds": round(time.perf_counter() - t0, 1)}
    package_seconds = round(time.perf_counter() - t0, 1)
    with Bundle.open(out) as b:
        inputs, want = b.golden()
    try:
        run = run_on_board(out, inputs, board)
    except Exception as exc:  # noqa: BLE001
        return {**row, "status": "failed", "reason": f"running the golden inputs: {type(exc).__name__}: {exc}"}
    max_diff, unit, exact = _diff(run.outputs, want)
    measured = m["backends"].get("device", {}).get("measured")
    if measured is None:  # packaged without the device check: the ticks of the run above
        instr = round(float(np.median(run.ticks)) * 1e9 / run.clock_hz)
        measured = {"instructions_per_inference": instr, "samples": len(run.ticks),
                    "source": f"SysTick under qemu-system-arm -M {spec.qemu_machine} -icount shift=0 (benchmark run)"}
    mem = m["memory"]
    instr = measured["instructions_per_inference"]
    macs = sum(r["macs"] for r in m["layers"])
    row.update({
        "status": "ok", "macs": macs,
        "instructions_per_inference": instr, "instructions_per_mac": round(instr / macs, 3) if macs else None,
        "golden_inputs": measured["samples"], "timing_source": measured["source"],
        "max_abs_diff": int(max_diff) if unit == "lsb" else max_diff, "diff_unit": unit, "bit_exact": exact,
        "flash_bytes": mem["flash_bytes"], "ram_bytes": mem["ram_bytes"], "stack_bytes": mem.get("stack_bytes"),
        "model_flash_bytes": mem["model_flash_bytes"], "const_bytes": mem["const_bytes"],
        "model_code_bytes": mem["model_flash_bytes"] - mem["const_bytes"],
        "firmware_code_bytes": mem["flash_bytes"] - mem["const_bytes"],
        "arena_bytes": mem["arena_bytes"], "memory_source": mem["source"], "package_seconds": package_seconds,
    })
    if note:
        row["note"] = note
    return row


def add_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TVM / native per model and board (float32 models: against the native run of their int8 twin)."""
    ok = {(r["model"], r["board"], r["kernels"]): r for r in rows if r["status"] == "ok"}
    ratios = []
    for r in rows:
        if r["kernels"] != "tvm":
            continue
        base_model = r["model"] if r["dtype"] == "int8" else INT8_TWIN.get(r["model"])
        base = ok.get((base_model, r["board"], "native"))
        entry: dict[str, Any] = {"model": r["model"], "board": r["board"], "native_model": base_model}
        if r["status"] != "ok" or base is None:
            entry["ratio"] = None
            entry["why"] = r.get("reason") if r["status"] != "ok" else f"no native {base_model} run on {r['board']}"
        else:
            entry["ratio"] = {f: round(r[f] / base[f], 3) if base[f] else None for f in RATIO_FIELDS}
        r["tvm_over_native"] = entry["ratio"]
        ratios.append(entry)
    return ratios


def _short(reason: str) -> str:
    """A refusal in a few words for the table (the JSON keeps it whole)."""
    if "integer-only" in reason:
        return "refused: native kernels are integer-only (float32 graph)"
    m = re.search(r"does not fit the (flash|RAM) of [\w-]+: needs ([\d,]+) B.*?the board has ([\d,]+) B", reason)
    if m:
        return f"refused: does not fit {m.group(1)} ({m.group(2)} B > {m.group(3)} B)"
    return f"{'failed' if 'Error' in reason[:40] else 'refused'}: {reason.splitlines()[0][:100]}"


def print_table(rows: list[dict[str, Any]], arenas: dict[str, dict[str, Any]]) -> None:
    head = (f"{'model':<20} {'board':<16} {'kernels':<7} {'MACs':>10} {'instr/inf':>11} {'instr/MAC':>9} "
            f"{'max diff':>10} {'flash':>9} {'code':>7} {'RAM':>7} {'arena':>7} {'TFLM arena':>13} "
            f"{'TVM/native instr flash RAM arena':>34}")
    print(head)
    for r in rows:
        a = arenas[r["model"]]
        tflm = f"{a['tflm_host64'] or '-'}/{a['tflm_cortex_m4'] or '-'}"
        lead = f"{r['model']:<20} {r['board']:<16} {r['kernels']:<7} {r['macs']:>10,} "
        if r["status"] != "ok":
            print(lead + _short(r.get("reason", "")))
            continue
        if r["bit_exact"]:
            diff = "0 exact"
        else:
            diff = f"{r['max_abs_diff']} LSB" if r["diff_unit"] == "lsb" else f"{r['max_abs_diff']:.1e}"
        ratio = r.get("tvm_over_native")
        rs = (" ".join(f"{ratio[f]:.2f}x" if ratio[f] is not None else "-" for f in RATIO_FIELDS)
              if ratio else "")
        print(lead + f"{r['instructions_per_inference']:>11,} {r['instructions_per_mac'] or 0:>9.3f} {diff:>10} "
              f"{r['flash_bytes']:>9,} {r['firmware_code_bytes']:>7,} {r['ram_bytes']:>7,} {r['arena_bytes']:>7,} "
              f"{tflm:>13} {rs:>34}")
    print("instructions: SysTick under qemu -icount shift=0, median over the golden inputs; max diff: second run of "
          "the golden inputs on the board vs the reference interpreter (LSB for int8, abs for float32); "
          "flash/RAM: arm-none-eabi-size firmware.elf (RAM includes the 16 KiB stack); code = firmware flash minus "
          "the model's constant tables; TFLM arena: tflite-micro print_allocations() on this host / cortex-m issue "
          "figure on Cortex-M4; TVM/native: float32 models against the native run of their int8 twin")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", nargs="+", default=BOARDS)
    ap.add_argument("--models", nargs="+", default=None,
                    help="graph names or prefixes: kws, ad, digits, kws_ref_model_float, ... (default: all)")
    ap.add_argument("--kernels", nargs="+", default=KERNELS, choices=KERNELS,
                    help="kernel providers for the int8 models (float32 models always use tvm)")
    ap.add_argument("--no-float", action="store_true", help="leave out the float32 models")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mcu.json")
    args = ap.parse_args()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            print(f"Error: {tool} not found. Install it with: apt-get install gcc-arm-none-eabi "
                  "libnewlib-arm-none-eabi qemu-system-arm", file=sys.stderr)
            return 1
    start = time.time()
    rows: list[dict[str, Any]] = []
    arenas: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="edgepack-bench-") as tmp:
        work = Path(tmp)
        int8, f32 = shared_models()
        if selected("digits_mlp_int8", args.models) or (not args.no_float and selected("digits_mlp", args.models)):
            (work / "digits").mkdir()
            int8["digits_mlp_int8"], f32["digits_mlp"] = digits_models(work / "digits")
        runs = [(n, p, k) for n, p in int8.items() if selected(n, args.models) for k in args.kernels]
        if not args.no_float:
            runs += [(n, p, "tvm") for n, p in f32.items() if selected(n, args.models)]
        for name, path, kernels in runs:
            if name not in arenas:
                arenas[name] = {"tflm_host64": tflm_arena(path), "tflm_cortex_m4": TFLM_ARENA_BYTES.get(name)}
            for board in args.boards:
                print(f"{name} on {board} with {kernels} kernels ...", file=sys.stderr)
                rows.append(bench(name, path, board, kernels, work))
                r = rows[-1]
                said = (f"ok, {r['instructions_per_inference']:,} instructions" if r["status"] == "ok"
                        else _short(r["reason"]))
                print(f"  {said}", file=sys.stderr)
    ratios = add_ratios(rows)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "edgepack"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    result = {
        "benchmark": "mcu", "commit": commit, "dirty": dirty,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - start, 1), "host": platform.platform(), "argv": sys.argv[1:],
        "tools": {"arm-none-eabi-gcc": tool_version(["arm-none-eabi-gcc", "--version"]),
                  "qemu-system-arm": tool_version(["qemu-system-arm", "--version"]), "python": sys.version.split()[0],
                  "numpy": np.__version__, "tvm": tvm_version()},
        "qemu_flags": "-nodefaults -display none -monitor none -serial pty -nic none -icount shift=0",
        "golden_inputs_per_run": GOLDEN, "results": rows, "tvm_over_native": ratios, "arenas": arenas,
        "tflm_cortex_m4": TFLM_M4, "tflm_code_bytes_cortex_m4": TFLM_CODE_BYTES,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, arenas)
    print(f"wrote {args.out} in {result['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
