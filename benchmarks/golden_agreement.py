"""Agreement of the golden interpreter with tflite-micro, LiteRT and ONNX Runtime on the shared models.

For each MLPerf Tiny model in ../shared/models: max |difference| of the outputs (LSB for int8, absolute
for float), the number of inputs whose outputs differ at all, and (KWS) top-1 accuracy and agreement.
Inputs: the 1000 EEMBC KWS test inputs for KWS; 200 seeded random inputs for AD.

Usage: python benchmarks/golden_agreement.py [--shared ../shared] [--out benchmarks/results/golden_agreement.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from edgepack.ir.loader import load_model
from edgepack.ir.reference import Interpreter

ROOT = Path(__file__).resolve().parents[1]


def _litert(path: Path, xs: np.ndarray, xnnpack: bool) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    from ai_edge_litert.interpreter import OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = LiteRT(model_path=str(path), experimental_op_resolver_type=kind)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    outs = []
    for x in xs:
        interp.set_tensor(i, x)
        interp.invoke()
        outs.append(interp.get_tensor(o).copy())
    return np.stack(outs)


def _tflm(path: Path, xs: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(path))
    outs = []
    for x in xs:
        interp.set_input(x, 0)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return np.stack(outs)


def _ort(path: Path, xs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: x})[0] for x in xs])


def _row(model: str, peer: str, golden: np.ndarray, other: np.ndarray, labels: np.ndarray | None) -> dict:
    diff = np.abs(golden.astype(np.float64) - other.astype(np.float64)).reshape(len(golden), -1)
    row = {"model": model, "peer": peer, "inputs": len(golden), "max_abs_diff": float(diff.max()),
           "unit": "lsb" if golden.dtype.kind in "iu" else "abs", "inputs_differing": int((diff.max(1) > 0).sum())}
    g1, o1 = golden.reshape(len(golden), -1).argmax(1), other.reshape(len(other), -1).argmax(1)
    if labels is not None:
        row["top1_golden"] = float(np.mean(g1 == labels))
        row["top1_peer"] = float(np.mean(o1 == labels))
    row["top1_agreement"] = float(np.mean(g1 == o1))
    return row


def main() -> None:
    """Run every comparison, write JSON and print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "golden_agreement.json")
    args = parser.parse_args()
    models, data = args.shared / "models", args.shared / "data" / "kws01_test.npz"
    if not models.is_dir() or not data.is_file():
        raise SystemExit(f"shared models/data not found under {args.shared}")
    kws = np.load(data)
    rng = np.random.default_rng(0)
    cases = [
        ("kws_ref_model.tflite", kws["x_int8"], kws["y"], ("tflite-micro", "litert-builtin", "litert-xnnpack")),
        ("ad01_int8.tflite", rng.integers(-128, 128, (200, 1, 640)).astype(np.int8), None,
         ("tflite-micro", "litert-builtin", "litert-xnnpack")),
        ("kws_ref_model_float.tflite", kws["x_float"], kws["y"], ("tflite-micro", "litert-xnnpack")),
        ("kws_ref_model_float.onnx", kws["x_float"], kws["y"], ("onnxruntime",)),
        ("ad01_fp32.tflite", rng.uniform(-85, 15, (200, 1, 640)).astype(np.float32), None, ("litert-xnnpack",)),
        ("ad01_fp32.onnx", rng.uniform(-85, 15, (200, 1, 640)).astype(np.float32), None, ("onnxruntime",)),
    ]
    peers = {"tflite-micro": _tflm, "litert-builtin": lambda p, x: _litert(p, x, False),
             "litert-xnnpack": lambda p, x: _litert(p, x, True), "onnxruntime": _ort}
    rows = []
    for name, xs, labels, peer_names in cases:
        path = models / name
        graph = load_model(path)
        t0 = time.perf_counter()
        golden = Interpreter(graph).run({graph.inputs[0]: xs.reshape(-1, *xs.shape[2:])})[graph.outputs[0]]
        golden = golden.reshape(len(xs), *golden.shape[1:])[:, None] if golden.ndim == xs.ndim - 1 else golden
        seconds = time.perf_counter() - t0
        for peer in peer_names:
            other = peers[peer](path, xs).reshape(golden.shape)
            rows.append(_row(name, peer, golden, other, labels) | {"golden_seconds": round(seconds, 2)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {"commit": commit.strip(), "python": platform.python_version(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    header = ("model", "peer", "inputs", "max diff", "differ", "top1 agree", "top1 golden")
    print("{:28} {:15} {:>6} {:>12} {:>6} {:>10} {:>11}".format(*header))
    for r in rows:
        top1 = f"{r['top1_golden']:.1%}" if "top1_golden" in r else "-"
        print(f"{r['model']:28} {r['peer']:15} {r['inputs']:6} {r['max_abs_diff']:9.3g} {r['unit']:>3} "
              f"{r['inputs_differing']:6} {r['top1_agreement']:10.1%} {top1:>11}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
