"""Calibration statistics and range selection."""

from __future__ import annotations

import numpy as np

from edgepack.quantize.calibrate import TensorStats, calibrate, layer_rows
from edgepack.quantize.evaluate import run_real


def _stats(values: np.ndarray) -> TensorStats:
    st = TensorStats("t", float(values.min()), float(values.max()), count=values.size)
    st.hist = np.histogram(values, bins=2048, range=(st.min, st.max))[0].astype(np.float64)
    return st


def _true_mse(v: np.ndarray, lo: float, hi: float) -> float:
    from edgepack.quantize.scheme import activation_qparams

    p = activation_qparams(lo, hi, 8)
    s, z = float(p.scale[0]), int(p.zero_point[0])
    return float((((np.clip(np.round(v / s) + z, -128, 127) - z) * s - v) ** 2).mean())


def test_ranges_on_values_with_outliers() -> None:
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 200_000), [-30.0, 25.0, 40.0]])
    st = _stats(v)
    for lo, hi in [(st.min, st.max), (-8.0, 9.0), (-3.0, 3.0)]:  # the histogram estimate is close to the truth
        assert np.isclose(st.quantization_mse(lo, hi, 8), _true_mse(v, lo, hi), rtol=0.05)
    assert st.range("minmax", 8) == ("minmax", st.min, st.max)
    _, plo, phi = st.range("percentile", 8, 99.9)
    assert st.min < plo < 0 < phi < st.max
    assert abs(phi - np.percentile(v, 99.9)) < 2 * (st.max - st.min) / 2048
    _, mlo, mhi = st.range("mse", 8)
    grid = np.geomspace(0.02, 1, 40)
    brute = min(_true_mse(v, a * st.min, b * st.max) for a in grid for b in grid)
    assert _true_mse(v, mlo, mhi) <= 1.05 * brute
    assert _true_mse(v, mlo, mhi) < 0.7 * _true_mse(v, st.min, st.max)
    method, alo, ahi = st.range("auto", 8)
    assert st.quantization_mse(alo, ahi, 8) <= min(st.quantization_mse(mlo, mhi, 8),
                                                    st.quantization_mse(plo, phi, 8))
    assert st.range("auto", 16)[0] == "minmax"  # 16-bit keeps the full range


def test_calibration_collects_every_tensor(tiny, tiny_calib) -> None:
    cal = calibrate(tiny, tiny_calib, chunk=20)
    assert cal.samples == 64
    assert set(cal.tensors) == {"x", "c1", "c2", "s", "p", "f", "logits", "y"}
    assert cal.tensors["c1"].min == 0.0  # fused ReLU
    assert cal.tensors["y"].max <= 1.0


def test_layer_statistics_match_direct_computation(tiny, tiny_calib) -> None:
    cal = calibrate(tiny, tiny_calib, chunk=20)
    from edgepack.quantize.calibrate import tap_all

    vals = run_real(tap_all(tiny), tiny_calib)
    for name, inp in (("conv", "x"), ("dw", "c1"), ("fc", "f")):
        rows = layer_rows(tiny, name, vals[inp] if inp != "x" else tiny_calib["x"])
        ls = cal.layers[name]
        assert ls.rows == rows.shape[0]
        if rows.ndim == 3:
            np.testing.assert_allclose(ls.xtx, np.einsum("rkc,rlc->ckl", rows, rows), rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_allclose(ls.xtx, rows.T @ rows, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(ls.mean, rows.mean(0), rtol=1e-5, atol=1e-7)
