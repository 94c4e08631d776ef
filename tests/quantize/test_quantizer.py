"""quantize_graph on a tiny graph built in code: conventions, mixed widths, edges and the allowed set."""

from __future__ import annotations

import numpy as np
import pytest

from edgepack.ir.ops import Op
from edgepack.ir.reference import Interpreter
from edgepack.quantize.calibrate import calibrate
from edgepack.quantize.evaluate import quality, run_real
from edgepack.quantize.quantizer import quantize_graph, weight_bytes
from edgepack.quantize.scheme import (
    ALLOWED_EDGETPU,
    ALLOWED_MCU,
    QuantConfig,
    QuantizationError,
    activation_qparams,
)


def test_activation_qparams_make_zero_exact() -> None:
    for lo, hi in [(-1.3, 2.7), (0.0, 6.0), (0.5, 3.0), (-4.0, -1.0)]:
        p = activation_qparams(lo, hi, 8)
        zp, s = int(p.zero_point[0]), float(p.scale[0])
        assert -128 <= zp <= 127
        lo0, hi0 = min(lo, 0.0), max(hi, 0.0)  # the range always holds 0, which maps to q = zp exactly
        assert s * (-128 - zp) <= lo0 + s / 2 and s * (127 - zp) >= hi0 - s / 2
    p16 = activation_qparams(-2.0, 5.0, 16)
    assert int(p16.zero_point[0]) == 0 and p16.bits == 16
    assert np.isclose(float(p16.scale[0]) * 32767, 5.0)


def test_int8_graph_follows_tflite_conventions(tiny, tiny_calib) -> None:
    q = quantize_graph(tiny, tiny_calib)
    by_name = {n.name: n for n in q.nodes}
    for name in ("conv", "dw", "fc"):
        node = by_name[name]
        x, w, b = (q.tensor(n) for n in node.inputs)
        assert x.dtype == "int8" and w.dtype == "int8" and b.dtype == "int32"
        assert np.all(w.quant.zero_point == 0) and np.abs(w.data).max() <= 127
        assert w.quant.axis == (3 if node.op is Op.DEPTHWISE_CONV_2D else 0)
        assert w.quant.scale.size == (w.shape[3] if node.op is Op.DEPTHWISE_CONV_2D else w.shape[0])
        np.testing.assert_allclose(b.quant.scale, np.float32(x.quant.scale[0]) * w.quant.scale, rtol=1e-6)
        assert len(node.attrs["requant"]["multiplier"]) == w.quant.scale.size
    y = q.tensor("y")
    assert y.dtype == "int8" and float(y.quant.scale[0]) == 1 / 256 and int(y.quant.zero_point[0]) == -128
    pool = by_name["pool"]
    assert q.tensor(pool.inputs[0]).quant.to_dict() == q.tensor(pool.outputs[0]).quant.to_dict()
    relu_out = q.tensor(by_name["conv"].outputs[0])
    assert int(relu_out.quant.zero_point[0]) == -128  # fused ReLU: the range starts at 0
    out = Interpreter(q).run({"x": np.zeros((1, 8, 8, 3), np.int8)})["y"]
    assert out.dtype == np.int8
    res = quality(run_real(tiny, tiny_calib)["y"], run_real(q, tiny_calib)["y"])
    assert res["sqnr_db"] > 20, res


def test_int4_weights_and_bytes(tiny, tiny_calib) -> None:
    cal = calibrate(tiny, tiny_calib)
    q8 = quantize_graph(tiny, None, calibration=cal)
    q4 = quantize_graph(tiny, None, QuantConfig(w_bits=4), calibration=cal)
    for name in ("conv/w", "dw/w", "fc/w"):
        t = q4.tensor(name)
        assert t.dtype == "int8" and t.quant.bits == 4 and np.abs(t.data).max() <= 7
    assert weight_bytes(q4, include_bias=False) * 2 == pytest.approx(weight_bytes(q8, include_bias=False), abs=3)
    Interpreter(q4).run({"x": np.zeros((2, 8, 8, 3), np.int8)})


def test_mixed_int16_inserts_requantize(tiny, tiny_calib) -> None:
    q = quantize_graph(tiny, tiny_calib, QuantConfig(layer_bits={"dw": (8, 16)}))
    by_name = {n.name: n for n in q.nodes}
    dw = by_name["dw"]
    x, w, b = (q.tensor(n) for n in dw.inputs)
    assert x.dtype == "int16" and q.tensor(dw.outputs[0]).dtype == "int16" and b.dtype == "int64"
    assert int(x.quant.zero_point[0]) == 0
    requants = [n for n in q.nodes if n.op is Op.QUANTIZE]
    assert requants, "an int8 -> int16 requantize must feed the 16x8 layer"
    for node in q.nodes:  # every kernel sees one activation width
        widths = {q.tensor(n).dtype for n in node.inputs[:1] + node.outputs if n}
        if node.op not in (Op.QUANTIZE, Op.DEQUANTIZE):
            assert len(widths) == 1, (node.name, widths)
    assert q.tensor(by_name["skip"].outputs[0]).dtype == "int16"  # ADD runs at the wider width
    out = run_real(q, tiny_calib)["y"]
    assert quality(run_real(tiny, tiny_calib)["y"], out)["sqnr_db"] > 20


def test_float_io_adds_edge_conversions(tiny, tiny_calib) -> None:
    q = quantize_graph(tiny, tiny_calib, QuantConfig(io="float"))
    assert q.tensor("x").dtype == "float32" and q.tensor("y").dtype == "float32"
    assert q.nodes[0].op is Op.QUANTIZE and q.nodes[-1].op is Op.DEQUANTIZE
    out = Interpreter(q).run(tiny_calib)["y"]
    ref = run_real(tiny, tiny_calib)["y"]
    assert np.abs(out - ref).max() < 0.05


def test_allowed_set_is_enforced(tiny, tiny_calib) -> None:
    with pytest.raises(QuantizationError, match="not executable"):
        quantize_graph(tiny, tiny_calib, QuantConfig(layer_bits={"conv": (4, 8)}, allowed=ALLOWED_EDGETPU))
    with pytest.raises(QuantizationError, match="not executable"):
        quantize_graph(tiny, tiny_calib, QuantConfig(layer_bits={"conv": (4, 16)}, allowed=ALLOWED_MCU))
    with pytest.raises(QuantizationError, match="not a layer"):
        quantize_graph(tiny, tiny_calib, QuantConfig(layer_bits={"nope": (8, 8)}))


@pytest.mark.parametrize("allowed", [ALLOWED_MCU, ALLOWED_EDGETPU])
def test_allocation_stays_inside_the_allowed_set(tiny, tiny_calib, allowed) -> None:
    from edgepack.quantize.allocate import Budget, allocate

    alloc = allocate(tiny, tiny_calib, Budget(), QuantConfig(allowed=allowed), max_points=4)
    for p in [alloc.chosen, *alloc.front]:
        assert set(p.layer_bits.values()) <= allowed
    if allowed == ALLOWED_EDGETPU:
        assert [p.label for p in alloc.front] == ["uniform int8"]


def test_bias_correction_cancels_mean_error(tiny, tiny_calib) -> None:
    cal = calibrate(tiny, tiny_calib)
    ref = run_real(tiny, tiny_calib)["y"]
    errs = {}
    for bc in (False, True):
        q = quantize_graph(tiny, None, QuantConfig(w_bits=4, weight_rounding="rtn", bias_correction=bc,
                                                   weight_clip_search=False), calibration=cal)
        errs[bc] = quality(ref, run_real(q, tiny_calib)["y"])["noise"]
    assert errs[True] <= errs[False] * 1.05, errs
