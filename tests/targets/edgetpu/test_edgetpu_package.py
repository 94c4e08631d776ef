"""Bundles for `--target edgetpu` run on the CPU within their stated tolerance; quantization gives w8a8 only;
uint8 model I/O; the runtime's delegate handling; the target's check on graphs."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from edgetpu_helpers import AD_INT8, KWS_FLOAT_ONNX, KWS_INT8, KWS_TEST, need

from edgepack.errors import QuantizationError
from edgepack.ir.graph import Node, Tensor
from edgepack.ir.ops import Op
from edgepack.ir.reference import Interpreter
from edgepack.ir.tflite import from_tflite
from edgepack.packager.pipeline import package
from edgepack.quantize.options import QuantizeOptions
from edgepack.runtime.backends.edgetpu import EdgeTpuFallbackWarning
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.session import Session
from edgepack.runtime.verify import verify
from edgepack.targets import get_target
from edgepack.targets.edgetpu.check import analyze_tflite


def _verify_edgetpu(path: Path) -> tuple[object, dict]:
    with Bundle.open(path) as bundle, warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeTpuFallbackWarning)
        sess = Session(bundle, "edgetpu")
        assert sess._impl.where.startswith("CPU (LiteRT, model.tflite)")  # noqa: SLF001
        return verify(sess), bundle.manifest


def test_kws_on_1000_inputs_within_the_stated_tolerance(tmp_path: Path, no_compiler: None) -> None:
    """KWS int8 packaged for edgetpu with the 1000 EEMBC inputs as golden pairs: the edgetpu backend (CPU here)
    meets the bundle's tolerance and agrees on top-1 with the golden outputs on >= 99 % of them."""
    data = np.load(need(KWS_TEST))
    np.savez(tmp_path / "kws1000.npz", input_1=data["x_int8"])
    package(need(KWS_INT8), tmp_path / "kws.edgepack", target="edgetpu", golden=tmp_path / "kws1000.npz",
            golden_count=1000)
    report, manifest = _verify_edgetpu(tmp_path / "kws.edgepack")
    (out,) = report.outputs
    tol = manifest["backends"]["edgetpu"]["tolerance"]
    print(f"KWS edgetpu (CPU): {report.samples} inputs, max |diff| {out.max_abs_diff:.0f} LSB "
          f"(stated {tol['max_abs']} {tol['unit']}), top-1 agreement {out.top1_agreement:.1%}")
    assert report.passed and report.samples == 1000 and tol["unit"] == "lsb"
    assert out.max_abs_diff <= tol["max_abs"] and out.top1_agreement >= 0.99
    assert manifest["default_backend"] == "edgetpu" and manifest["board"] == "coral-usb"
    assert manifest["backends"]["edgetpu"]["verified_on"].startswith("CPU (LiteRT, model.tflite)")


def test_ad_within_the_stated_tolerance(tmp_path: Path, no_compiler: None) -> None:
    """AD int8 (fully connected autoencoder) packaged for edgetpu on board coral-m2 runs on the CPU in tolerance."""
    package(need(AD_INT8), tmp_path / "ad.edgepack", target="edgetpu", board="coral-m2", golden_count=64)
    report, manifest = _verify_edgetpu(tmp_path / "ad.edgepack")
    (out,) = report.outputs
    print(f"AD edgetpu (CPU): {report.samples} inputs, max |diff| {out.max_abs_diff:.0f} LSB "
          f"(stated {manifest['backends']['edgetpu']['tolerance']['max_abs']})")
    assert report.passed and manifest["board"] == "coral-m2"


def test_float_kws_is_quantized_to_w8a8_only(tmp_path: Path, no_compiler: None) -> None:
    """`package --calib` for edgetpu quantizes with allowed_bits {(8, 8)}: every layer is w8a8, every op maps."""
    data = np.load(need(KWS_TEST))
    np.savez(tmp_path / "calib.npz", input_1=data["x_float"][:64, 0])
    m = package(need(KWS_FLOAT_ONNX), tmp_path / "kwsq.edgepack", target="edgetpu", golden_count=8,
                quantize=QuantizeOptions(calib=tmp_path / "calib.npz")).manifest
    q = m["quantization"]
    assert q["allowed_bits"] == ["w8a8"] and set(q["layer_bits"].values()) == {"w8a8"} and len(q["layer_bits"]) == 10
    assert {r["weight_bits"] for r in m["layers"]} <= {8, None} and {r["activation_bits"] for r in m["layers"]} == {8}
    with Bundle.open(tmp_path / "kwsq.edgepack") as b:
        assert analyze_tflite(b.artifact("model.tflite")).mac_fraction == 1.0
    with pytest.raises(QuantizationError, match=r"--bits int4 \(w4a8\) is not executable by target edgetpu "
                                                r"\(allowed: w8a8\)"):
        QuantizeOptions(calib="c.npz", bits="int4").resolve_bits("edgetpu", get_target("edgetpu").allowed_bits)


def test_uint8_model_io(no_compiler: None) -> None:
    """io_dtype uint8: one QUANTIZE (int8 -> uint8, zero point + 128) per edge, an exact shift: LiteRT and the
    reference interpreter give the int8 model's outputs + 128 for inputs + 128. QUANTIZE is in Coral's table,
    so every op still maps."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    g8 = from_tflite(need(KWS_INT8))
    g = get_target("edgetpu").prepare(g8, {"io_dtype": "uint8"})
    (x,), (y,) = g.inputs, g.outputs
    assert (g.tensor(x).dtype, g.tensor(y).dtype) == ("uint8", "uint8")
    assert int(g.tensor(x).quant.zero_point[0]) == 83 + 128 and g.nodes[0].op is Op.QUANTIZE
    arts = get_target("edgetpu").compile(g, ("tflite", b""), {})
    blob = next(a.data for a in arts.files if a.path == "model.tflite")
    assert analyze_tflite(blob).first_cpu_op is None

    def litert(model: bytes, sample: np.ndarray) -> np.ndarray:
        interp = LiteRT(model_content=model)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], sample)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"]).astype(int)

    from edgepack.ir.tflite_export import to_tflite

    blob8 = to_tflite(g8)
    rng = np.random.default_rng(0)
    ref, ref8 = Interpreter(g), Interpreter(g8)
    for _ in range(4):
        s8 = rng.integers(-128, 128, (1, 49, 10, 1), dtype=np.int8)
        su = (s8.astype(int) + 128).astype(np.uint8)
        want = ref8.run({g8.inputs[0]: s8})[g8.outputs[0]].astype(int) + 128
        assert np.array_equal(ref.run({x: su})[y].astype(int), want)
        assert np.array_equal(litert(blob, su), litert(blob8, s8) + 128)


def test_target_check_on_graphs() -> None:
    """target.check: a float graph is fatal (Edge TPU: int8 only, quantize with --calib); an int8 graph whose
    last op is DEQUANTIZE (not in Coral's table) is fine for packaging, with one non-fatal CPU note."""
    tgt = get_target("edgetpu")
    float_report = tgt.check(from_tflite(need(KWS_INT8.with_name("kws_ref_model_float.tflite"))))
    assert not float_report.ok
    assert any("--calib" in i.reason for i in float_report.issues if i.fatal)
    g = from_tflite(need(KWS_INT8))
    out = g.outputs[0]
    g.tensors["y_float"] = Tensor("y_float", g.tensor(out).shape, "float32")
    g.nodes.append(Node(Op.DEQUANTIZE, "deq", [out], ["y_float"]))
    g.outputs = ["y_float"]
    report = tgt.check(g, "coral-devboard")
    assert report.ok
    cpu = [i for i in report.issues if i.reason.startswith("runs on the CPU")]
    assert [(i.op, i.fatal) for i in cpu] == [("DEQUANTIZE", False)]
    assert "13 of 14 ops" in report.issues[-1].reason and "(100.0%)" in report.issues[-1].reason


def test_missing_libedgetpu_prints_nothing_spurious() -> None:
    """FIELD-NOTES: load_delegate raises OSError without libedgetpu and Delegate.__del__ then prints an
    AttributeError about '_library'; the backend catches the first and silences the second."""
    code = ("from edgepack.runtime.backends.edgetpu import load_libedgetpu; d, why = load_libedgetpu(); "
            "print(d is None, why)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.stdout.startswith("False"):
        pytest.skip("libedgetpu and an Edge TPU are present here")
    assert proc.returncode == 0 and proc.stdout.startswith("True libedgetpu.so.1 could not be loaded")
    assert "_library" not in proc.stderr and "AttributeError" not in proc.stderr, proc.stderr
