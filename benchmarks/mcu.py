"""Whole models on the emulated Cortex-M boards, packaged exactly as `edgepack package --target cortex-mX` does.

For each int8 model in ../shared/models (KWS and AD today) and the digits example (trained with
examples/digits_mlp/train.py into a temp dir and int8-quantized by edgepack.quantize), on each board:

- instructions per inference: SysTick ticks of the invoke under `qemu-system-arm -icount shift=0`
  (one instruction per ns of virtual time), x 1e9 / clock; the median over the golden inputs, which
  the packager ran on the board bit-exact against the golden interpreter;
- instructions per MAC (MACs from the bundle's layer table);
- flash and RAM of the firmware ELF (arm-none-eabi-size: text+data, data+bss with the 16 KiB stack),
  the model's own flash (the static library without firmware) and its code (flash minus constant tables);
- our arena against TFLM's: tflite-micro's `print_allocations()` ("Arena allocation total") on the
  same .tflite, measured on this 64-bit host (pointers are 8 bytes, so it overstates a Cortex-M arena;
  the Cortex-M4 figures from the cortex-m issue are listed beside it).

Usage: python benchmarks/mcu.py [--boards qemu-mps2-an386 qemu-mps3-an547] [--models kws ad digits]
                                [--out benchmarks/results/mcu.json]
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

import numpy as np

from edgepack.ir.loader import load_model
from edgepack.ir.tflite_export import to_tflite
from edgepack.packager.pipeline import package
from edgepack.quantize.options import QuantizeOptions, quantize_model
from edgepack.quantize.scheme import ALLOWED_MCU
from edgepack.targets.mcu.boards import get_board
from edgepack.targets.mcu.memory_plan import TFLM_ARENA_BYTES

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BOARDS = ["qemu-mps2-an386", "qemu-mps3-an547"]
GOLDEN = 32
# TFLM on the emulated Cortex-M4 (cortex-m issue): instructions/MAC with reference kernels and with CMSIS-NN.
TFLM_M4 = {"kws_ref_model": {"reference": 16.2, "cmsis_nn": 2.90}, "ad01_int8": {"reference": 7.4, "cmsis_nn": 2.2}}
TFLM_CODE_BYTES = {"reference": 43_000, "cmsis_nn": 86_000}  # TFLM code without the model (cortex-m issue)
ARENA_LINE = re.compile(r"Arena allocation total (\d+) bytes")


def tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unavailable"


def tflm_arena(tflite: Path) -> int | None:
    """TFLM's arena for the model, from print_allocations() (a child process: it prints from C++)."""
    code = ("from tflite_micro.python.tflite_micro import runtime\n"
            f"runtime.Interpreter.from_file({str(tflite)!r}).print_allocations()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    m = ARENA_LINE.search(proc.stdout + proc.stderr)
    return int(m.group(1)) if m else None


def int8_models() -> dict[str, Path]:
    """The already-quantized models in ../shared/models, by graph name."""
    found = {}
    for path in sorted((SHARED / "models").glob("*.tflite")):
        if load_model(path).is_quantized:
            found[path.stem] = path
    return found


def digits_model(work: Path) -> Path:
    """examples/digits_mlp trained into `work`, int8-quantized by edgepack on its calibration set, as .tflite."""
    subprocess.run([sys.executable, str(ROOT / "examples" / "digits_mlp" / "train.py"), "--out", str(work)],
                   check=True, capture_output=True)
    graph = load_model(work / "digits_mlp.onnx")
    result = quantize_model(graph, QuantizeOptions(calib=work / "calib.npz", bits="int8"), target="cortex-m4",
                            allowed=ALLOWED_MCU)
    path = work / "digits_mlp_int8.tflite"
    path.write_bytes(to_tflite(result.qgraph))
    return path


def bench(name: str, model: Path, board: str, work: Path) -> dict:
    """Package `model` for the board's core and board; read the measured figures from the manifest."""
    spec = get_board(board)
    t0 = time.perf_counter()
    m = package(model, work / f"{name}-{board}.edgepack", target=spec.core, board=board, golden_count=GOLDEN).manifest
    measured = m["backends"]["device"]["measured"]
    macs = sum(row["macs"] for row in m["layers"])
    mem = m["memory"]
    instr = measured["instructions_per_inference"]
    return {
        "model": name, "board": board, "core": spec.core, "macs": macs,
        "instructions_per_inference": instr, "instructions_per_mac": round(instr / macs, 3) if macs else None,
        "golden_inputs_bit_exact": measured["samples"], "timing_source": measured["source"],
        "flash_bytes": mem["flash_bytes"], "ram_bytes": mem["ram_bytes"], "stack_bytes": mem.get("stack_bytes"),
        "model_flash_bytes": mem["model_flash_bytes"], "const_bytes": mem["const_bytes"],
        "model_code_bytes": mem["model_flash_bytes"] - mem["const_bytes"],
        "firmware_code_bytes": mem["flash_bytes"] - mem["const_bytes"],
        "arena_bytes": mem["arena_bytes"], "memory_source": mem["source"],
        "package_seconds": round(time.perf_counter() - t0, 1),
    }


def print_table(rows: list[dict], arenas: dict[str, dict]) -> None:
    head = (f"{'model':<15} {'board':<16} {'MACs':>10} {'instr/inf':>11} {'instr/MAC':>9} {'flash':>9} "
            f"{'code':>7} {'RAM':>7} {'arena':>7} {'TFLM arena (host64 / M4)':>25}")
    print(head)
    for r in rows:
        a = arenas[r["model"]]
        tflm = f"{a['tflm_host64'] or '-'} / {a['tflm_cortex_m4'] or '-'}"
        print(f"{r['model']:<15} {r['board']:<16} {r['macs']:>10,} {r['instructions_per_inference']:>11,} "
              f"{r['instructions_per_mac'] or 0:>9.3f} {r['flash_bytes']:>9,} {r['firmware_code_bytes']:>7,} "
              f"{r['ram_bytes']:>7,} {r['arena_bytes']:>7,} {tflm:>25}")
    print("instructions: SysTick under qemu -icount shift=0; flash/RAM: arm-none-eabi-size firmware.elf "
          "(RAM includes the 16 KiB stack); code = firmware flash minus the model's constant tables; "
          "TFLM arena: tflite-micro print_allocations() on this host / cortex-m issue figure on Cortex-M4")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", nargs="+", default=BOARDS)
    ap.add_argument("--models", nargs="+", default=None, help="graph names (default: every int8 model + digits)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mcu.json")
    args = ap.parse_args()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            print(f"Error: {tool} not found. Install it with: apt-get install gcc-arm-none-eabi "
                  "libnewlib-arm-none-eabi qemu-system-arm", file=sys.stderr)
            return 1
    start = time.time()
    rows, arenas = [], {}
    with tempfile.TemporaryDirectory(prefix="edgepack-bench-") as tmp:
        work = Path(tmp)
        models = int8_models()
        if args.models is None or "digits" in args.models:
            (work / "digits").mkdir()
            models["digits_mlp_int8"] = digits_model(work / "digits")
        if args.models is not None:
            models = {k: v for k, v in models.items() if k in args.models or (k.startswith("digits") and
                                                                               "digits" in args.models)}
        for name, path in models.items():
            arenas[name] = {"tflm_host64": tflm_arena(path), "tflm_cortex_m4": TFLM_ARENA_BYTES.get(name)}
            for board in args.boards:
                print(f"{name} on {board} ...", file=sys.stderr)
                rows.append(bench(name, path, board, work))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "edgepack"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    result = {
        "benchmark": "mcu", "commit": commit, "dirty": dirty,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - start, 1), "host": platform.platform(),
        "tools": {"arm-none-eabi-gcc": tool_version(["arm-none-eabi-gcc", "--version"]),
                  "qemu-system-arm": tool_version(["qemu-system-arm", "--version"]), "python": sys.version.split()[0],
                  "numpy": np.__version__},
        "qemu_flags": "-nodefaults -display none -monitor none -serial pty -nic none -icount shift=0",
        "golden_inputs_per_run": GOLDEN, "results": rows, "arenas": arenas, "tflm_cortex_m4": TFLM_M4,
        "tflm_code_bytes_cortex_m4": TFLM_CODE_BYTES,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, arenas)
    print(f"wrote {args.out} in {result['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
