"""Instructions per MAC of the native int8 kernels on an emulated Cortex-M4, layer by layer.

For each model (KWS and AD from ../shared/models) the script generates model.c exactly as the
Cortex-M target does (`edgepack.targets.mcu.codegen.generate`), wraps every layer call in a SysTick
read (benchmarks/mcu_bench/bench_hooks.h), cross-compiles it with the kernel library for
`qemu-system-arm -M mps2-an386` (Cortex-M4F, bare metal, benchmarks/mcu_bench/bench_port_qemu.c)
and runs it under `-icount shift=0`, where QEMU retires one instruction per nanosecond of virtual
time. SysTick counts the CPU clock, so ticks convert to instructions with a ratio measured in the
same run on a loop of known length (the CAL line; 40 instructions per tick at QEMU's 25 MHz).
Resolution: one tick, i.e. +-40 instructions per layer.

Guard against miscompiles: the same program built for the host (gcc, EP_EMULATE_DSP, so the same
DSP code paths) must print the same hash of the arena and output after every layer, and the final
output must equal the golden interpreter's.

kws_w4 is KWS quantized here from the float ONNX with int4 weights in every layer (`--bits int4`; 100 KWS
calibration inputs, deterministic): the benchmark of the int4-weight kernels.

Usage: python benchmarks/mcu_kernels.py [--models kws ad kws_w4] [--kernels DIR]
                                        [--out benchmarks/results/mcu_kernels.json]
(--kernels measures another copy of edgepack/targets/mcu/kernels, e.g. an older commit's.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgepack.ir.graph import Graph
from edgepack.ir.ops import Op
from edgepack.ir.reference import Interpreter
from edgepack.ir.tflite import from_tflite
from edgepack.targets.mcu import kernel_lib
from edgepack.targets.mcu.codegen import generate, required_sources
from edgepack.targets.mcu.lowering import Call, lower

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).with_name("mcu_bench")
SHARED = ROOT.parent / "shared"
CPU = "cortex-m4"
MACHINE = "mps2-an386"
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-std=c99",
             "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections"]
HOST_FLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-DEP_EMULATE_DSP"]
QEMU_FLAGS = ["-M", MACHINE, "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none",
              "-semihosting-config", "enable=on,target=native", "-icount", "shift=0"]
MODELS = {"kws": "kws_ref_model.tflite", "ad": "ad01_int8.tflite", "kws_w4": "kws_ref_model_float.onnx"}
# Models quantized here from a float model (edgepack.quantize, 100 KWS calibration inputs): name -> QuantConfig
# keyword arguments. kws_w4: every layer w4a8 (`--bits int4`), the int4-weight kernels' benchmark.
QUANTIZED = {"kws_w4": {"w_bits": 4}}
# Reference figures from the cortex-m issue (instructions per MAC on Cortex-M4, KWS).
REFERENCE = {"kws": {"tflm_reference": 16.2, "tflm_cmsis_nn": 2.90, "goal": 1.5}}


def macs_of(graph: Graph, call: Call) -> int:
    """Multiply-accumulates of one lowered call (0 for ops without a weight tensor)."""
    node = next(n for n in graph.nodes if n.name == call.node)
    out = graph.tensor(node.outputs[0])
    if node.op is Op.CONV_2D:
        _, kh, kw, cin = graph.tensor(node.inputs[1]).shape
        return out.size * kh * kw * cin
    if node.op is Op.DEPTHWISE_CONV_2D:
        _, kh, kw, _ = graph.tensor(node.inputs[1]).shape
        return out.size * kh * kw
    if node.op is Op.FULLY_CONNECTED:
        return out.size * graph.tensor(node.inputs[1]).shape[-1]
    return 0


def model_input(name: str, graph: Graph) -> dict[str, np.ndarray]:
    """One input per graph input: the first EEMBC KWS test input, or seeded random bytes."""
    if name.startswith("kws"):
        x = np.load(SHARED / "data" / "kws01_test.npz")["x_int8"][0]
        return {graph.inputs[0]: x.reshape(graph.tensor(graph.inputs[0]).shape).astype(np.int8)}
    rng = np.random.default_rng(0)
    return {n: rng.integers(-128, 128, size=graph.tensor(n).shape).astype(graph.tensor(n).dtype)
            for n in graph.inputs}


def write_build(graph: Graph, sha: str, inputs: dict[str, np.ndarray], kernels: Path, dest: Path) -> int:
    """Generated model (layer calls wrapped), kernel sources and bench input in `dest`; returns the layer count."""
    dest.mkdir(parents=True, exist_ok=True)
    files = generate(graph, sha, CPU)
    model_c = files["model.c"]
    layers = model_c.count("    EP_CHECK(")
    (dest / "model.c").write_text(model_c.replace("    EP_CHECK(", "    EP_BENCH_LAYER("))
    (dest / "model.h").write_text(files["model.h"])
    for name in required_sources(graph, CPU):
        shutil.copy(kernels / name, dest / name)
    for f in BENCH_DIR.iterdir():
        shutil.copy(f, dest / f.name)
    blob = b"".join(np.ascontiguousarray(inputs[n]).tobytes() for n in graph.inputs)
    body = ", ".join(str(b) for b in blob)
    (dest / "bench_input.h").write_text(
        "/* Generated by benchmarks/mcu_kernels.py: the benchmark input. */\n#include <stdint.h>\n"
        f"static const uint8_t bench_input[{len(blob)}] __attribute__((aligned(4))) = {{{body}}};\n")
    return layers


def c_sources(dest: Path, port: str) -> list[str]:
    kernels = sorted(p.name for p in dest.glob("ep_*.c"))
    return ["model.c", *kernels, "bench_main.c", port]


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise SystemExit(f"Error: {' '.join(cmd[:3])} ... failed ({res.returncode}):\n{res.stderr}{res.stdout}")
    return res


def compile_target(dest: Path) -> Path:
    """Cross-compile the benchmark; per-file flags: only model.c gets the bench hooks."""
    objs = []
    for src in c_sources(dest, "bench_port_qemu.c"):
        obj = src[:-2] + ".o"
        extra = ["-include", "bench_hooks.h"] if src == "model.c" else []
        run(["arm-none-eabi-gcc", *ARM_FLAGS, *extra, "-I.", "-c", src, "-o", obj], dest)
        objs.append(obj)
    run(["arm-none-eabi-gcc", *ARM_FLAGS, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
         "-Wl,--gc-sections", "-T", "bench.ld", *objs, "-o", "bench.elf"], dest)
    return dest / "bench.elf"


def compile_host(dest: Path) -> Path:
    srcs = c_sources(dest, "bench_port_host.c")
    host = dest / "host"
    host.mkdir(exist_ok=True)
    objs = []
    for src in srcs:
        obj = f"host/{src[:-2]}.o"
        extra = ["-include", "bench_hooks.h"] if src == "model.c" else []
        run(["gcc", *HOST_FLAGS, *extra, "-I.", "-c", src, "-o", obj], dest)
        objs.append(obj)
    run(["gcc", *objs, "-o", "host/bench"], dest)
    return host / "bench"


def parse(text: str) -> dict:
    """The CAL / L / TOTAL / OUT records printed by bench_main.c."""
    rec: dict = {"layers": []}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "CAL":
            rec["cal"] = (int(parts[1]), int(parts[2]))
        elif parts[0] == "L":
            rec["layers"].append((int(parts[2]), parts[3]))
        elif parts[0] == "TOTAL":
            rec["total"] = int(parts[1])
        elif parts[0] == "OUT":
            rec["out"] = bytes(int(b, 16) for b in parts[1:])
        elif parts[0] == "STATUS":
            raise SystemExit(f"Error: edgepack_model_run returned status {parts[1]}")
    return rec


def tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unavailable"


def bench_model(name: str, kernels: Path, work: Path) -> dict:
    """Build, run on QEMU and on the host, check, and return this model's record."""
    path = SHARED / "models" / MODELS[name]
    if name in QUANTIZED:
        graph, sha = quantized_model(name, path, work)
    else:
        graph = from_tflite(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    calls = [c for c in lower(graph, CPU) if not c.is_alias]
    inputs = model_input(name, graph)
    dest = work / name
    layers = write_build(graph, sha, inputs, kernels, dest)
    assert layers == len(calls), (layers, len(calls))
    elf = compile_target(dest)
    qemu = run(["qemu-system-arm", *QEMU_FLAGS, "-kernel", str(elf)], dest, timeout=900)
    target = parse(qemu.stdout + qemu.stderr)
    host = parse(run([str(compile_host(dest))], dest).stdout)

    mismatched = [i for i, (a, b) in enumerate(zip(target["layers"], host["layers"], strict=True)) if a[1] != b[1]]
    if mismatched or target["out"] != host["out"]:
        raise SystemExit(f"Error: {name}: QEMU and host builds differ after layers {mismatched} "
                         "(a miscompile or a target-only code path); nothing recorded.")
    golden = Interpreter(graph).run(inputs)
    want = b"".join(np.ascontiguousarray(golden[n]).tobytes() for n in graph.outputs)
    if target["out"] != want:
        raise SystemExit(f"Error: {name}: output differs from the golden interpreter")

    size = run(["arm-none-eabi-size", "-A", str(elf)], dest).stdout
    sections = {p[0]: int(p[1]) for p in (line.split() for line in size.splitlines()) if len(p) >= 2
                and p[1].isdigit()}
    model_o = run(["arm-none-eabi-size", "-A", "model.o"], dest).stdout
    rodata = sum(int(p[1]) for p in (line.split() for line in model_o.splitlines())
                 if len(p) >= 2 and p[0].startswith(".rodata") and p[1].isdigit())
    cal_instr, cal_ticks = target["cal"]
    per_tick = cal_instr / cal_ticks
    rows = []
    for call, (ticks, _) in zip(calls, target["layers"], strict=True):
        instr = round(ticks * per_tick)
        macs = macs_of(graph, call)
        rows.append({"index": call.index, "layer": call.summary, "kernel": call.kernel, "macs": macs,
                     "instructions": instr, "instructions_per_mac": round(instr / macs, 3) if macs else None})
    total_instr = round(target["total"] * per_tick)
    total_macs = sum(r["macs"] for r in rows)
    return {"model": MODELS[name], "sha256": sha, "instructions_per_tick": round(per_tick, 4),
            "layers": rows, "total_instructions": total_instr, "total_macs": total_macs,
            "instructions_per_mac": round(total_instr / total_macs, 3),
            "flash_bytes": sections.get(".text", 0) + sections.get(".data", 0),
            "model_const_bytes": rodata, "arena_bytes": arena_bytes(dest),
            "outputs_match": "qemu == host (per-layer arena hashes) == golden interpreter",
            "reference": REFERENCE.get(name, {})}


def quantized_model(name: str, path: Path, work: Path) -> tuple[Graph, str]:
    """The float model quantized by edgepack with QUANTIZED[name] (deterministic: fixed calibration inputs);
    the sha256 is that of the quantized model as TFLite."""
    from edgepack.ir.loader import load_model
    from edgepack.ir.tflite_export import to_tflite
    from edgepack.quantize.quantizer import quantize_graph
    from edgepack.quantize.scheme import QuantConfig

    graph = load_model(path)
    calib = np.load(SHARED / "data" / "kws01_test.npz")["x_float"][:100]
    calib = calib.reshape(-1, *graph.tensor(graph.inputs[0]).shape[1:])
    blob = to_tflite(quantize_graph(graph, {graph.inputs[0]: calib}, QuantConfig(**QUANTIZED[name])))
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.tflite").write_bytes(blob)
    return from_tflite(work / f"{name}.tflite"), hashlib.sha256(blob).hexdigest()


def arena_bytes(dest: Path) -> int:
    """EDGEPACK_ARENA_BYTES of the generated model.h."""
    for line in (dest / "model.h").read_text().splitlines():
        if line.startswith("#define EDGEPACK_ARENA_BYTES"):
            return int(line.split()[2].rstrip("u"))
    return 0


def print_table(result: dict) -> None:
    for name, rec in result["models"].items():
        print(f"\n{name}: {rec['model']}  ({rec['total_instructions']:,} instr (qemu -icount, {MACHINE}), "
              f"{rec['total_macs']:,} MACs, {rec['instructions_per_mac']:.3f} instr/MAC)")
        print(f"  flash {rec['flash_bytes']:,} B (benchmark ELF .text + .data; model tables "
              f"{rec['model_const_bytes']:,} B), arena {rec['arena_bytes']:,} B")
        print(f"  {'layer':<62} {'MACs':>10} {'instr':>11} {'instr/MAC':>10}")
        for r in rec["layers"]:
            ipm = f"{r['instructions_per_mac']:.3f}" if r["instructions_per_mac"] is not None else "-"
            print(f"  {r['layer'][:62]:<62} {r['macs']:>10,} {r['instructions']:>11,} {ipm:>10}")
        for k, v in rec["reference"].items():
            print(f"  reference {k}: {v} instr/MAC")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["kws", "ad"])
    ap.add_argument("--kernels", type=Path, default=kernel_lib.KERNEL_DIR, help="kernel library directory")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mcu_kernels.json")
    ap.add_argument("--keep", type=Path, default=None, help="build directory to keep (default: a temp dir)")
    args = ap.parse_args()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "gcc"):
        if shutil.which(tool) is None:
            print(f"Error: {tool} not found. Install it with: apt-get install gcc-arm-none-eabi qemu-system-arm gcc",
                  file=sys.stderr)
            return 1
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        models = {m: bench_model(m, args.kernels.resolve(), work) for m in args.models}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "edgepack/targets/mcu"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    result = {
        "benchmark": "mcu_kernels", "commit": commit, "kernels_dirty": dirty, "kernels": str(args.kernels),
        "board": MACHINE, "cpu": CPU, "qemu_flags": " ".join(QEMU_FLAGS), "cflags": " ".join(ARM_FLAGS),
        "tools": {"qemu": tool_version(["qemu-system-arm", "--version"]),
                  "arm-none-eabi-gcc": tool_version(["arm-none-eabi-gcc", "--version"]),
                  "host": platform.platform()},
        "seconds": round(time.time() - start, 1), "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
