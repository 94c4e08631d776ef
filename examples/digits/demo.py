"""The edgepack demo (`make demo`): a JAX CNN for 8x8 digits, from training to an emulated Cortex-M4 and back.

Steps (every `edgepack` command is printed before it runs, so you can repeat it by hand):

a. train the CNN of `model.py` in plain JAX (or reuse OUT/params.npz) and measure float test accuracy;
b. write OUT/calib.npz (200 training images) and OUT/test.npz (the 450 test images and labels);
c. `edgepack package model.py:digits --bits mixed --max-weights-kb 3 --target cortex-m4 --board qemu-mps2-an386`
   (jax2tf -> TFLite -> edgepack's quantizer, per-layer int4/int8 weights under a 3 KB budget -> C -> firmware);
d. `edgepack verify --board qemu-mps2-an386`: the golden pairs on the emulated M4, bit for bit;
e. the whole test split on the board over the serial link: board accuracy, and every board output compared
   with the golden interpreter (the bundle's `reference` backend) on the same int8 input;
f. a summary: float and board accuracy, bit-exact count, flash/RAM (manifest `memory`), instructions per inference;
g. the same model packaged for `rpi4` (LiteRT) and run on the test split in the host runtime.

It writes OUT/results.json and exits 1 if a claim fails: board accuracy within 1 percentage point of float,
board outputs bit-identical to the golden interpreter for every test image, every command exit 0.

Usage: python examples/digits/demo.py [--out build/digits] [--board qemu-mps2-an386] [--retrain]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    import model  # noqa: E402  (examples/digits/model.py, found through the path set just above)
except ImportError as exc:  # jax (or numpy) missing: one line that says what to install
    sys.exit(f"the digits demo needs {exc.name or 'jax'}: pip install 'edgepack[dev,jax]' ({exc})")

N_CALIB = 200
MAX_WEIGHTS_KB = 3.0  # int8 would be 3,920 weight + bias bytes (3.83 KB)
MAX_DROP_PP = 1.0  # board accuracy must be within this many percentage points of float
M4_TARGET = "cortex-m4"


class DemoError(Exception):
    """A step failed; the message says which and why."""


def edgepack_command() -> list[str]:
    """How to call the edgepack CLI of this Python environment."""
    script = Path(sys.executable).parent / "edgepack"
    if script.is_file():
        return [str(script)]
    found = shutil.which("edgepack")
    if found:
        return [found]
    return [sys.executable, "-c", "from edgepack.cli import main; main()"]


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the current directory when that is shorter."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if len(rel) < len(str(path)) else str(path)


def run_edgepack(args: list[str], env: dict[str, str], env_shown: str, log: list[dict[str, Any]]) -> None:
    """Print `edgepack ARGS`, run it, and raise DemoError on a non-zero exit."""
    print(f"\n$ {env_shown}edgepack {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(edgepack_command() + args, env=env)
    seconds = time.perf_counter() - start
    log.append({"command": f"{env_shown}edgepack {shlex.join(args)}", "exit": proc.returncode,
                "seconds": round(seconds, 2)})
    if proc.returncode != 0:
        raise DemoError(f"`edgepack {args[0]}` exited with status {proc.returncode}")


def manifest_of(bundle: Path) -> dict[str, Any]:
    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle) as b:
        return b.manifest


def top1(outputs: np.ndarray, y: np.ndarray) -> float:
    return float((outputs.reshape(len(y), -1).argmax(axis=-1) == y).mean())


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train a small JAX CNN on scikit-learn's digits, package it for an emulated Cortex-M4 with "
                    "mixed int4/int8 weights, run the whole test split on the board (bit-exact against the golden "
                    "interpreter), then run the same model for rpi4 in the host runtime.")
    parser.add_argument("--out", type=Path, default=model.DEFAULT_DIR,
                        help="output folder: params, data, bundles, results.json (default: build/digits)")
    parser.add_argument("--board", default="qemu-mps2-an386",
                        help="Cortex-M4 board to package for and run on (default: qemu-mps2-an386, emulated)")
    parser.add_argument("--retrain", action="store_true", help="train again even if OUT/params.npz exists")
    parser.add_argument("--seed", type=int, default=model.SEED,
                        help="seed of the weight initialization and batch order when training (default: 0)")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"board": args.board, "target": M4_TARGET, "max_weights_kb": MAX_WEIGHTS_KB,
                               "commands": [], "checks": {}, "passed": False}
    try:
        _demo(args, out, results)
    except DemoError as exc:
        results["error"] = str(exc)
        print(f"\nFAILED: {exc}", file=sys.stderr)
    except Exception as exc:  # an edgepack error raised in this process: say what, keep results.json
        results["error"] = f"{type(exc).__name__}: {exc}"
        print(f"\nFAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("EDGEPACK_DEBUG") == "1":
            raise
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    checks = results["checks"]
    results["passed"] = bool(checks) and all(checks.values()) and "error" not in results
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {shown(out / 'results.json')}; demo took {results['seconds']:.0f} s: "
          + ("all claims hold" if results["passed"] else "FAILED"))
    return 0 if results["passed"] else 1


def _demo(args: argparse.Namespace, out: Path, results: dict[str, Any]) -> None:
    log = results["commands"]
    env = dict(os.environ, **{model.DIR_ENV: str(out)})
    default_out = out.resolve() == (Path.cwd() / model.DEFAULT_DIR).resolve()
    env_shown = "" if default_out else f"{model.DIR_ENV}={shlex.quote(shown(out))} "
    entry = f"{shown(HERE / 'model.py')}:digits"

    step("a. train the CNN in JAX (float)")
    data = model.load_data()
    params, trained, seconds = model.load_or_train(out, data, retrain=args.retrain, seed=args.seed)
    float_acc = model.accuracy(params, data.x_test, data.y_test)
    n_params = sum(int(np.prod(p.shape)) for p in params.values())
    how = f"trained in {seconds:.1f} s" if trained else "reused"
    print(f"{how} {shown(model.params_path(out))} "
          f"({n_params:,} parameters); train {len(data.y_train)} / test {len(data.y_test)} images")
    print(f"float test accuracy (JAX): {float_acc:.2%}")
    results.update(float_accuracy=float_acc, parameters=n_params, trained=trained, train_seconds=round(seconds, 2),
                   n_test=int(len(data.y_test)))

    step("b. calibration and test data")
    calib, test = out / "calib.npz", out / "test.npz"
    np.savez(calib, pixels=data.x_train[:N_CALIB, None])
    np.savez(test, pixels=data.x_test[:, None], y=data.y_test)
    print(f"{shown(calib)}: pixels float32 [{N_CALIB}, 1, 8, 8, 1] (training images)")
    print(f"{shown(test)}: pixels float32 [{len(data.y_test)}, 1, 8, 8, 1], y int64 [{len(data.y_test)}]")

    step(f"c. convert, quantize (mixed int4/int8, <= {MAX_WEIGHTS_KB:g} KB of weights) and package for {M4_TARGET}")
    m4 = out / "digits_m4.edgepack"
    run_edgepack(["package", entry, "--calib", shown(calib), "--bits", "mixed", "--max-weights-kb",
                  f"{MAX_WEIGHTS_KB:g}", "--target", M4_TARGET, "--board", args.board, "-o", shown(m4)],
                 env, env_shown, log)
    manifest = manifest_of(m4)
    quant = manifest["quantization"]
    layers = [f"{r['op']} w{r['weight_bits']}a{r['activation_bits']}" for r in manifest.get("layers", [])
              if r.get("weight_bits")]
    results["quantization"] = {"weight_bytes": quant["weight_bytes"], "int8_weight_bytes": quant["int8_weight_bytes"],
                               "layers": layers, "macs": sum(r.get("macs", 0) for r in manifest.get("layers", []))}

    step(f"d. verify the golden pairs on {args.board}")
    run_edgepack(["verify", shown(m4), "--board", args.board], env, "", log)

    step(f"e. the whole test split on {args.board}, over the serial link")
    board_run, board_out, ref_out = _run_test_split(m4, args.board, data.x_test)
    exact = [bool(np.array_equal(board_out[i], ref_out[i])) for i in range(len(data.y_test))]
    board_acc = top1(board_out, data.y_test)
    ref_acc = top1(ref_out, data.y_test)
    clock = board_run.clock_hz
    ticks = int(np.median(board_run.ticks))
    instructions = round(ticks * 1e9 / clock) if board_run.emulated else None
    print(f"board {board_run.board}: {len(board_run.ticks)} inferences, top-1 {board_acc:.2%} "
          f"(golden interpreter {ref_acc:.2%}); bit-identical to the golden interpreter: {sum(exact)}/{len(exact)}")
    if not all(exact):
        print(f"  differing test images: {[i for i, e in enumerate(exact) if not e][:20]}")
    print("  (the same from the shell: edgepack run " + shlex.join([shown(m4), "-i", shown(test), "--board",
                                                                    args.board, "-o", shown(out / "board.npz")]) + ")")
    np.savez(out / "board_outputs.npz", probs=board_out, reference=ref_out, y=data.y_test)
    memory = manifest.get("memory") or {}
    timing_source = (f"SysTick under qemu -icount shift=0 ({board_run.board}), median of {len(board_run.ticks)}"
                     if board_run.emulated else f"SysTick at {clock / 1e6:g} MHz")
    results.update(board_accuracy=board_acc, reference_accuracy=ref_acc, bit_exact=sum(exact),
                   bit_exact_total=len(exact), ticks_per_inference=ticks, clock_hz=clock,
                   instructions_per_inference=instructions, timing_source=timing_source,
                   memory={k: memory.get(k) for k in ("flash_bytes", "ram_bytes", "const_bytes", "arena_bytes",
                                                      "stack_bytes", "source")})
    drop_pp = abs(float_acc - board_acc) * 100
    results["checks"]["board_accuracy_within_1pp_of_float"] = drop_pp <= MAX_DROP_PP
    results["checks"]["bit_exact_every_test_image"] = all(exact)

    step("f. summary")
    q = results["quantization"]
    rows = [
        ("float accuracy (JAX)", f"{float_acc:.2%}", f"{len(data.y_test)} test images"),
        (f"board accuracy ({board_run.board})", f"{board_acc:.2%}",
         f"{drop_pp:.2f} pp from float (limit {MAX_DROP_PP:g} pp)"),
        ("bit-exact vs golden interpreter", f"{sum(exact)}/{len(exact)}", "int8 outputs, every test image"),
        ("weights", f"{q['weight_bytes']:,} B", f"{q['weight_bytes'] / q['int8_weight_bytes']:.1%} of int8 "
                                                f"({q['int8_weight_bytes']:,} B): {', '.join(q['layers'])}"),
        ("flash", f"{memory.get('flash_bytes', 0):,} B", f"{memory.get('source')} (model tables "
                                                         f"{memory.get('const_bytes', 0):,} B)"),
        ("RAM", f"{memory.get('ram_bytes', 0):,} B", f"{memory.get('source')} (arena {memory.get('arena_bytes', 0):,} B"
                                                     f", stack {memory.get('stack_bytes', 0):,} B)"),
        ("instructions per inference", f"{instructions:,}" if instructions is not None else "-",
         f"{timing_source}; {q['macs']:,} MACs"),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>{value_width}}  {note}")

    step("g. the same model for rpi4, run in the host runtime (LiteRT)")
    from edgepack.targets import target_names

    linux = "rpi4" if "rpi4" in target_names() else "host"
    linux_bundle = out / f"digits_{linux}.edgepack"
    run_edgepack(["package", entry, "--calib", shown(calib), "--bits", "mixed", "--max-weights-kb",
                  f"{MAX_WEIGHTS_KB:g}", "--target", linux, "--backend", "litert", "-o", shown(linux_bundle)],
                 env, env_shown, log)
    lite = _run_litert(linux_bundle, data.x_test, data.y_test, ref_out)
    print(f"{linux} bundle on this computer, backend litert: top-1 {lite['accuracy']:.2%} on {len(data.y_test)} "
          f"test images (float {float_acc:.2%}, Cortex-M4 board {board_acc:.2%})")
    print(f"  LiteRT (XNNPACK) vs the golden interpreter: {lite['images_differing_from_reference']} of "
          f"{len(data.y_test)} outputs differ, by at most {lite['max_lsb_vs_reference']} LSB; top-1 agrees on "
          f"{lite['top1_agreement_with_reference']:.1%}")
    print("  (the same from the shell: edgepack run " + shlex.join([shown(linux_bundle), "-i", shown(test),
                                                                    "-b", "litert"]) + ")")
    results.update(linux_target=linux, linux_backend="litert", linux_accuracy=lite.pop("accuracy"), linux=lite)
    results["checks"]["commands_exit_0"] = all(c["exit"] == 0 for c in log)


def _run_test_split(bundle: Path, board: str, x_test: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """(BoardRun, board outputs, golden-interpreter outputs): both on the same quantized int8 test images."""
    import edgepack.runtime as rt
    from edgepack.targets.mcu.flash import run_on_board

    ref = rt.load(bundle, backend="reference")
    with ref.bundle:
        info = ref.inputs[0]
        q = info.quantize(x_test[:, None])  # [N, 1, 8, 8, 1] int8, as a session quantizes real inputs
        ref_out = ref.run({info.name: q})[ref.outputs[0].name]
    board_run = run_on_board(bundle, {info.name: q}, board=board)
    return board_run, board_run.outputs[ref.outputs[0].name], ref_out


def _run_litert(bundle: Path, x_test: np.ndarray, y: np.ndarray, ref_out: np.ndarray) -> dict[str, Any]:
    """LiteRT on the test split: top-1, and its differences from the golden interpreter's int8 outputs."""
    import edgepack.runtime as rt

    sess = rt.load(bundle, backend="litert")
    with sess.bundle:
        got = sess.run({sess.inputs[0].name: x_test[:, None]})[sess.outputs[0].name]
        stated = sess.tolerance
    n = len(y)
    diff = np.abs(got.astype(np.int32) - ref_out.astype(np.int32)).reshape(n, -1).max(axis=-1)
    agree = float((got.reshape(n, -1).argmax(-1) == ref_out.reshape(n, -1).argmax(-1)).mean())
    return {"accuracy": top1(got, y), "top1_agreement_with_reference": agree, "max_lsb_vs_reference": int(diff.max()),
            "images_differing_from_reference": int((diff > 0).sum()), "stated_tolerance": stated}


if __name__ == "__main__":
    sys.exit(main())
