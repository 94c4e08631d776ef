"""Issue 4 must-shows on KWS: the edgepack-quantized model exported to .tflite runs bit-identically in
tflite-micro (uniform int8, uniform 16x8 and mixed int4/int8), within a stated tolerance in LiteRT, and
`edgepack package --calib` -> `edgepack verify` passes on every backend.

Stated LiteRT tolerance: at most 32 LSB of the int8 softmax output (1/256) and >= 98 % top-1 agreement with
the golden interpreter, with the default XNNPACK delegate; without it at most 8 LSB. Measured on 250
inputs (run with -s to see): XNNPACK 26 LSB for both, top-1 agreement 100 % (int8) and 98.8 % (mixed);
builtin kernels 0 LSB on these inputs (FIELD-NOTES saw 1 LSB on 4 of the 1000 for TFLM's own model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepack.ir.loader import load_model
from edgepack.ir.reference import Interpreter
from edgepack.ir.tflite_export import to_tflite
from edgepack.quantize.allocate import Budget, allocate
from edgepack.quantize.calibrate import calibrate
from edgepack.quantize.quantizer import quantize_graph, weight_bytes
from edgepack.quantize.scheme import QuantConfig, quantize_values

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
N_TEST = 250  # inputs after the 100 calibration ones
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kws():
    for name in ("models/kws_ref_model_float.onnx", "data/kws01_test.npz"):
        if not (SHARED / name).exists():
            pytest.skip(f"shared test data {SHARED / name} is absent (see shared/models/README.md)")
    d = np.load(SHARED / "data/kws01_test.npz")
    x = d["x_float"].reshape(-1, 49, 10, 1)
    graph = load_model(SHARED / "models/kws_ref_model_float.onnx")
    return graph, x[:100], x[100:100 + N_TEST], d["y"][100:100 + N_TEST]


@pytest.fixture(scope="module")
def models(kws, tmp_path_factory) -> dict[str, Path]:
    """Uniform int8, uniform 16x8 (int16 activations, int8 weights; int8 model I/O) and the mixed model at
    <= 60 % of the int8 weight bytes, as .tflite files."""
    graph, calib, _, _ = kws
    cal = calibrate(graph, {"input_1": calib})
    q8 = quantize_graph(graph, None, calibration=cal)
    alloc = allocate(graph, {"input_1": calib}, Budget(max_weight_bytes=int(0.6 * weight_bytes(q8))), calibration=cal)
    mixed = quantize_graph(graph, None, alloc.config(QuantConfig()), calibration=cal)
    assert weight_bytes(mixed) <= 0.6 * weight_bytes(q8)
    assert any(w == 4 for w, _ in alloc.chosen.layer_bits.values())
    out = tmp_path_factory.mktemp("kws_models")
    (out / "int8.tflite").write_bytes(to_tflite(q8))
    (out / "mixed.tflite").write_bytes(to_tflite(mixed))
    q16 = quantize_graph(graph, None, QuantConfig(w_bits=8, a_bits=16), calibration=cal)
    assert "int16" in {t.dtype for t in q16.tensors.values()}
    (out / "int16x8.tflite").write_bytes(to_tflite(q16))
    return {"int8": out / "int8.tflite", "mixed": out / "mixed.tflite", "int16x8": out / "int16x8.tflite"}


def _golden(model: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 inputs, golden outputs) of the .tflite as edgepack imports it back."""
    from edgepack.ir.tflite import from_tflite

    g = from_tflite(model)
    t = g.tensor(g.inputs[0])
    xq = quantize_values(x, t.quant, t.dtype)
    return xq, Interpreter(g).run({g.inputs[0]: xq})[g.outputs[0]]


@pytest.mark.parametrize("kind", ["int8", "mixed", "int16x8"])
def test_tflite_micro_is_bit_identical(kws, models, kind: str) -> None:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    xq, want = _golden(models[kind], kws[2])
    interp = runtime.Interpreter.from_file(str(models[kind]))
    got = []
    for k in range(len(xq)):
        interp.set_input(xq[k:k + 1], 0)
        interp.invoke()
        got.append(interp.get_output(0).copy())
    got = np.concatenate(got)
    diff = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
    assert diff.size == 0, f"{kind}: first difference at flat index {diff[0]}: tflm {got.reshape(-1)[diff[0]]} " \
                           f"vs golden {want.reshape(-1)[diff[0]]} ({diff.size} values differ)"
    print(f"\nKWS {kind}: tflite-micro bit-identical to the golden interpreter on {len(xq)} inputs")


@pytest.mark.parametrize("kind", ["int8", "mixed"])
def test_litert_within_stated_tolerance(kws, models, kind: str) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    xq, want = _golden(models[kind], kws[2])
    for xnnpack, limit in ((True, 32), (False, 8)):
        kind_ = (litert.OpResolverType.AUTO if xnnpack
                 else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp = litert.Interpreter(model_path=str(models[kind]), experimental_op_resolver_type=kind_)
        interp.allocate_tensors()
        i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        got = []
        for k in range(len(xq)):
            interp.set_tensor(i, xq[k:k + 1])
            interp.invoke()
            got.append(interp.get_tensor(o).copy())
        got = np.concatenate(got)
        max_lsb = int(np.abs(got.astype(np.int64) - want).max())
        agree = float((got.argmax(1) == want.argmax(1)).mean())
        print(f"\nKWS {kind} in LiteRT ({'XNNPACK' if xnnpack else 'builtin kernels'}) vs golden on {len(xq)} "
              f"inputs: max {max_lsb} LSB, top-1 agreement {agree:.1%}")
        assert max_lsb <= limit and agree >= 0.98


def test_package_calib_then_verify_every_backend(kws, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgepack import cli

    np.savez(tmp_path / "calib.npz", input_1=kws[1])
    bundle = tmp_path / "kws.edgepack"
    runner = CliRunner()
    res = runner.invoke(cli.app, ["package", str(SHARED / "models/kws_ref_model_float.onnx"), "--calib",
                                  str(tmp_path / "calib.npz"), "--target", "host", "-o", str(bundle), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)["manifest"]
    assert set(m["backends"]) == {"reference", "litert", "onnxruntime"}
    assert m["quantization"]["bits"] == "int8" and m["golden"]["count"] == 16
    tol = {k: v["tolerance"] for k, v in m["backends"].items()}
    print(f"\nKWS bundle tolerances (measured on 16 calibration samples): {tol}")
    res = runner.invoke(cli.app, ["verify", str(bundle), "--json"])
    assert res.exit_code == 0, res.output
    assert {r["backend"] for r in json.loads(res.stdout)["reports"]} == {"reference", "litert", "onnxruntime"}
