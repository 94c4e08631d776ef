"""Weight rounding: RTN, scale search and GPTQ on synthetic layers."""

from __future__ import annotations

import numpy as np

from edgepack.quantize import rounding


def _layer(seed: int = 0, out: int = 16, k: int = 48, rows: int = 4000):
    rng = np.random.default_rng(seed)
    mix = rng.normal(0, 1, (k, k)) * (rng.random(k) ** 2)  # correlated, unevenly scaled inputs
    x = rng.normal(0, 1, (rows, k)) @ mix
    w = rng.normal(0, 0.3, (out, k))
    return x, w


def test_rtn_range_and_scales() -> None:
    _, w = _layer()
    s = rounding.channel_scales(w, 7)
    q = rounding.rtn(w, s, 7)
    assert np.abs(q).max() == 7 and np.all(np.abs(q).max(axis=1) == 7)
    s_search = rounding.channel_scales(w, 7, search=True)
    assert np.all(s_search <= s + 1e-9)
    err = lambda sc: ((rounding.rtn(w, sc, 7) * sc[:, None] - w) ** 2).sum()  # noqa: E731
    assert err(s_search) <= err(s)


def test_output_mse_matches_direct() -> None:
    x, w = _layer()
    w_hat = w + np.random.default_rng(1).normal(0, 0.01, w.shape)
    direct = float(((x @ (w_hat - w).T) ** 2).mean())
    assert np.isclose(rounding.output_mse(w, w_hat, x.T @ x, x.shape[0]), direct, rtol=1e-9)


def test_gptq_beats_round_to_nearest_on_held_out_rows() -> None:
    x, w = _layer(rows=6000)
    fit, held = x[:3000], x[3000:]
    s = rounding.channel_scales(w, 7)
    q_rtn = rounding.rtn(w, s, 7) * s[:, None]
    q_gptq = rounding.gptq(w, s, 7, fit.T @ fit) * s[:, None]
    assert np.abs(q_gptq / s[:, None]).max() <= 7
    m_rtn = rounding.output_mse(w, q_rtn, held.T @ held, held.shape[0])
    m_gptq = rounding.output_mse(w, q_gptq, held.T @ held, held.shape[0])
    assert m_gptq < 0.8 * m_rtn, (m_gptq, m_rtn)


def test_gptq_depthwise_uses_each_channels_hessian() -> None:
    rng = np.random.default_rng(3)
    c, k = 4, 9
    x = rng.normal(0, 1, (2000, k, c)) * rng.random((1, k, c))
    w = rng.normal(0, 0.5, (c, k))
    xtx = np.einsum("rkc,rlc->ckl", x, x)
    s = rounding.channel_scales(w, 7)
    q = rounding.gptq_depthwise(w, s, 7, xtx)
    m_g = rounding.output_mse(w, q * s[:, None], xtx, x.shape[0])
    m_r = rounding.output_mse(w, rounding.rtn(w, s, 7) * s[:, None], xtx, x.shape[0])
    assert m_g <= m_r
