"""Quantizer benchmark: float vs uniform int8 vs mixed (<= 60 % of int8 weight bytes) per model, and time to quantize.

Models (skipped when absent):

- KWS, from ../shared/models/kws_ref_model_float.onnx and .tflite: calibrate on the first 100 of the 1000
  EEMBC test inputs (../shared/data/kws01_test.npz), top-1 on the other 900 and on all 1000;
- AD (ad01_fp32.onnx): no AD data is shared, so "normal" frames are the autoencoder's reconstructions of
  seeded random inputs and anomalies the raw inputs (as tests/quantize/test_mlperf_tiny.py); quality is
  the mean reconstruction MSE of normal frames and the anomaly AUC;
- digits_mlp: built with examples/digits_mlp/train.py into a temporary directory (needs scikit-learn);
  calibration on its calib.npz (200 training images), top-1 on test.npz (450 images).

"Time to quantize" is wall time of calibrate + quantize_graph (int8), and calibrate + sensitivity +
allocation + quantize_graph (mixed, no eval data), on this machine, one process.

Usage: python benchmarks/quantize.py [--shared ../shared] [--out benchmarks/results/quantize.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.ir.graph import Graph
from edgepack.ir.loader import load_model
from edgepack.quantize.allocate import Budget, allocate
from edgepack.quantize.calibrate import calibrate
from edgepack.quantize.evaluate import accuracy, run_real
from edgepack.quantize.quantizer import quantize_graph, weight_bytes
from edgepack.quantize.scheme import QuantConfig

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 0.60


def _quantize(graph: Graph, calib: dict[str, np.ndarray]) -> dict[str, Any]:
    """Uniform int8 and mixed (<= 60 % of int8 bytes) graphs with their build times."""
    t0 = time.perf_counter()
    cal = calibrate(graph, calib)
    q8 = quantize_graph(graph, None, calibration=cal)
    t_int8 = time.perf_counter() - t0
    t0 = time.perf_counter()
    cal_m = calibrate(graph, calib)
    alloc = allocate(graph, calib, Budget(max_weight_bytes=int(BUDGET * weight_bytes(q8))), calibration=cal_m)
    qm = quantize_graph(graph, None, alloc.config(QuantConfig()), calibration=cal_m)
    t_mixed = time.perf_counter() - t0
    bits = {f"w{w}a{a}": 0 for w, a in sorted(alloc.chosen.layer_bits.values())}
    for w, a in alloc.chosen.layer_bits.values():
        bits[f"w{w}a{a}"] += 1
    return {"int8": q8, "mixed": qm, "int8_seconds": t_int8, "mixed_seconds": t_mixed, "mixed_layers": bits,
            "int8_bytes": weight_bytes(q8), "mixed_bytes": weight_bytes(qm)}


def _classifier(name: str, graph: Graph, calib: np.ndarray, x: np.ndarray, y: np.ndarray,
                held_out: slice | None = None) -> dict[str, Any]:
    inp, outp = graph.inputs[0], graph.outputs[0]
    r = _quantize(graph, {inp: calib})
    row: dict[str, Any] = {"model": name, "metric": "top-1", "samples": len(y)}
    for kind, g in (("float", graph), ("int8", r["int8"]), ("mixed", r["mixed"])):
        out = run_real(g, {inp: x})[outp]
        row[kind] = accuracy(out, y)
        if held_out is not None:
            row[f"{kind}_held_out"] = accuracy(out[held_out], y[held_out])
    row.update({k: r[k] for k in ("int8_bytes", "mixed_bytes", "int8_seconds", "mixed_seconds", "mixed_layers")})
    return row


def kws(shared: Path, fmt: str) -> dict[str, Any] | None:
    model, data = shared / f"models/kws_ref_model_float.{fmt}", shared / "data/kws01_test.npz"
    if not model.exists() or not data.exists():
        return None
    d = np.load(data)
    x, y = d["x_float"].reshape(-1, 49, 10, 1), d["y"]
    row = _classifier(f"kws ({fmt})", load_model(model), x[:100], x, y, held_out=slice(100, None))
    row["samples"] = "1000 (held out: 900)"
    return row


def ad(shared: Path) -> dict[str, Any] | None:
    model = shared / "models/ad01_fp32.onnx"
    if not model.exists():
        return None
    graph = load_model(model)
    rng = np.random.default_rng(0)
    raw = ((rng.integers(-128, 128, (700, 640)) - 89) * 0.3910152316093445).astype(np.float32)
    normal = run_real(graph, {"input_1": raw})["Identity"]
    calib, test = normal[:200], np.concatenate([normal[200:450], raw[450:]])
    is_anomaly = np.arange(len(test)) >= 250
    r = _quantize(graph, {"input_1": calib})
    row: dict[str, Any] = {"model": "ad (onnx)", "metric": "normal recon MSE / AUC", "samples": len(test)}
    for kind, g in (("float", graph), ("int8", r["int8"]), ("mixed", r["mixed"])):
        err = ((run_real(g, {"input_1": test})["Identity"] - test) ** 2).mean(1)
        auc = float((err[is_anomaly][:, None] > err[~is_anomaly][None]).mean())
        row[kind] = float(err[~is_anomaly].mean())
        row[f"{kind}_auc"] = auc
    row.update({k: r[k] for k in ("int8_bytes", "mixed_bytes", "int8_seconds", "mixed_seconds", "mixed_layers")})
    return row


def digits(tmp: Path) -> dict[str, Any] | None:
    train = ROOT / "examples/digits_mlp/train.py"
    if not train.exists():
        return None
    proc = subprocess.run([sys.executable, str(train), "--out", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"digits_mlp: train.py failed, skipped: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    graph = load_model(tmp / "digits_mlp.onnx")
    calib = np.load(tmp / "calib.npz")["pixels"].reshape(-1, 64)
    test = np.load(tmp / "test.npz")
    x, y = test["pixels"].reshape(-1, 64), test["y"]
    return _classifier("digits_mlp (onnx)", graph, calib, x, y)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("edgepack", "numpy", "onnx", "onnxruntime", "scikit-learn"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or None


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) and v < 2 else (f"{v:.3f}" if isinstance(v, float) else str(v))


def main() -> None:
    """Run every available model, write the JSON and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/quantize.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in (lambda: kws(args.shared, "onnx"), lambda: kws(args.shared, "tflite"), lambda: ad(args.shared),
                    lambda: digits(Path(tmp))):
            row = run()
            if row is not None:
                rows.append(row)
                print(f"done: {row['model']}", file=sys.stderr)
    result = {"benchmark": "quantize", "commit": _commit(), "machine": platform.machine(),
              "platform": platform.platform(), "tools": _versions(), "budget_fraction_of_int8_bytes": BUDGET,
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    head = f"{'model':<20} {'metric':<22} {'float':>8} {'int8':>8} {'mixed':>8} {'int8 B':>7} {'mixed B':>8} " \
           f"{'ratio':>6} {'t int8':>7} {'t mixed':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<20} {r['metric']:<22} {_fmt(r['float']):>8} {_fmt(r['int8']):>8} {_fmt(r['mixed']):>8} "
              f"{r['int8_bytes']:>7} {r['mixed_bytes']:>8} {r['mixed_bytes'] / r['int8_bytes']:>6.1%} "
              f"{r['int8_seconds']:>6.1f}s {r['mixed_seconds']:>7.1f}s")
        if "float_held_out" in r:
            print(f"{'':<20} {'top-1, 900 held out':<22} {_fmt(r['float_held_out']):>8} {_fmt(r['int8_held_out']):>8} "
                  f"{_fmt(r['mixed_held_out']):>8}")
        if "float_auc" in r:
            print(f"{'':<20} {'anomaly AUC':<22} {_fmt(r['float_auc']):>8} {_fmt(r['int8_auc']):>8} "
                  f"{_fmt(r['mixed_auc']):>8}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
