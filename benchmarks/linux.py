"""Linux host benchmark: latency of each backend (LiteRT, onnxruntime, TVM) per model, and the best-of choice.

For every model below (skipped when absent) the model is packaged for `x86-64` (all backends, each
verified on 16 golden pairs by the pipeline), then `select_fastest` verifies and times every backend in
one interleaved run (`edgepack/targets/linux/select.py`: blocks of 10 inferences of the first golden
input, round-robin, after warm-up). Ratios are to the best peer: a backend's median over the lowest
median among LiteRT and onnxruntime, from the same run. The selected backend's ratio is therefore
<= 1.0 by construction of the same measurements, which is what `--select fastest` promises: never slower
than the fastest of LiteRT and onnxruntime. TVM is untuned (MetaSchedule segfaults in the 0.27 wheel,
FIELD-NOTES), so its ratio shows what the plain Relax build costs.

Models: the shared MLPerf Tiny files (KWS int8 .tflite, KWS float .onnx and .tflite, AD int8 .tflite, AD
float .onnx and .tflite) and the digits example (examples/digits_mlp/train.py into a temporary
directory; float .onnx and its int8 quantization with calib.npz).

Usage: python benchmarks/linux.py [--shared ../shared] [--runs 200] [--out benchmarks/results/linux.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("litert", "onnxruntime")
BACKENDS = ("litert", "onnxruntime", "tvm")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("edgepack", "numpy", "onnxruntime", "ai-edge-litert", "apache-tvm"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or None


def _models(shared: Path, tmp: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    m = shared / "models"
    models = [("kws int8 (tflite)", m / "kws_ref_model.tflite", {"golden": shared / "data" / "kws01_test.npz"}),
              ("kws float (onnx)", m / "kws_ref_model_float.onnx", {}),
              ("kws float (tflite)", m / "kws_ref_model_float.tflite", {}),
              ("ad int8 (tflite)", m / "ad01_int8.tflite", {}),
              ("ad float (onnx)", m / "ad01_fp32.onnx", {}),
              ("ad float (tflite)", m / "ad01_fp32.tflite", {})]
    models = [(n, p, kw) for n, p, kw in models if p.is_file() and all(Path(v).is_file() for v in kw.values())]
    digits = tmp / "digits"
    proc = subprocess.run([sys.executable, str(ROOT / "examples/digits_mlp/train.py"), "--out", str(digits)],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        from edgepack.quantize.options import QuantizeOptions

        onnx_path = digits / "digits_mlp.onnx"
        models += [("digits float (onnx)", onnx_path, {"golden": digits / "test.npz"}),
                   ("digits int8 (onnx)", onnx_path, {"quantize": QuantizeOptions(calib=digits / "calib.npz")})]
    else:
        print(f"skipped digits_mlp: train.py failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
    return models


def bench(name: str, model: Path, kwargs: dict[str, Any], tmp: Path, runs: int) -> dict[str, Any]:
    """Package for x86-64, select the fastest backend, and compute the ratios to the best peer."""
    from edgepack.packager.pipeline import package
    from edgepack.targets.linux.select import select_fastest

    out = tmp / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".edgepack")
    result = package(model, out, target="x86-64", golden_count=16, **kwargs)
    chosen, lat = select_fastest(result.path, result.manifest, runs=runs, warmup=20)
    peers = [lat[b]["median_ms"] for b in PEERS if "median_ms" in lat.get(b, {})]
    best_peer = min(peers)
    row = {"model": name, "source": model.name, "selected": chosen, "best_peer_median_ms": best_peer,
           "backends": {}}
    for b in BACKENDS:
        r = lat.get(b, {})
        if "median_ms" in r:
            tol = result.manifest["backends"][b]["tolerance"]
            row["backends"][b] = {"median_ms": r["median_ms"], "p90_ms": r["p90_ms"],
                                  "ratio": round(r["median_ms"] / best_peer, 3),
                                  "tolerance": f"{tol['max_abs']} {tol['unit']}"}
        elif r:
            row["backends"][b] = {"rejected": r.get("rejected")}
    row["selected_ratio"] = row["backends"][chosen]["ratio"]
    return row


def main() -> None:
    """Run every available model, write the JSON and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--runs", type=int, default=200, help="timed inferences per backend (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/linux.json")
    args = ap.parse_args()
    from edgepack.targets.linux.select import machine

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, kwargs in _models(args.shared, Path(tmp)):
            rows.append(bench(name, model, kwargs, Path(tmp), args.runs))
            print(f"done: {name}", file=sys.stderr)
    result = {"benchmark": "linux", "commit": _commit(), "machine": machine(), "platform": platform.platform(),
              "tools": _versions(), "runs": args.runs, "method": "edgepack.targets.linux.select.select_fastest",
              "rows": rows, "selected_never_slower_than_best_peer": all(r["selected_ratio"] <= 1.0 for r in rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    def cell(r: dict[str, Any], b: str) -> str:
        v = r["backends"].get(b)
        if not v:
            return "-"
        if "median_ms" not in v:
            return "rejected"
        return f"{v['median_ms']:.3f}/{v['p90_ms']:.3f} ({v['ratio']:.2f}x)"

    head = f"{'model':<20} " + " ".join(f"{b + ' med/p90 ms (ratio)':>30}" for b in BACKENDS) + f" {'selected':>12}"
    print(head)
    print("-" * len(head))
    for r in rows:
        selected = f"{r['selected']} {r['selected_ratio']:.2f}x"
        print(f"{r['model']:<20} " + " ".join(f"{cell(r, b):>30}" for b in BACKENDS) + f" {selected:>12}")
    print(f"selected <= best of LiteRT/onnxruntime on every model: {result['selected_never_slower_than_best_peer']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
