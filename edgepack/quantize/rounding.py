"""Weight rounding: per-channel symmetric scales, round-to-nearest, and GPTQ.

All functions work on a weight matrix W [O, K] (one row per output channel, see
`scheme.weight_matrix`) and return integer values in [-qmax, qmax] with one scale per row.

GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", Algorithm 1) quantizes the columns of W one at a time and spreads each column's rounding
error over the columns not yet quantized, weighted by the inverse Hessian H = X^T X of the layer input
rows X (im2col patches for convolutions). It minimizes ||X W^T - X Wq^T||^2 greedily; round-to-nearest
ignores X. Steps:

1. drop dead inputs (H_ii = 0), dampen H += damp * mean(diag H) * I;
2. order the columns by decreasing H_ii ("act order"), so the most used inputs are fixed first;
3. U = upper Cholesky factor of H^-1;
4. for each column j: q_j = round(w_j / s) clipped; e = (w_j - s q_j) / U_jj; w_{j+1:} -= e U_{j, j+1:}.

Depthwise layers have one Hessian per input channel (`xtx` [C, K, K]); each output channel is rounded with
the Hessian of the channel it reads.
"""

from __future__ import annotations

import numpy as np

_CLIP_GRID = np.linspace(0.5, 1.0, 26)


def channel_scales(w: np.ndarray, qmax: int, *, search: bool = False,
                   hdiag: np.ndarray | None = None) -> np.ndarray:
    """Per-row symmetric scales: max|w| / qmax, or (search) the clip ratio minimizing the rounding MSE.

    The search weighs each input's squared error by `hdiag` (E[x_k^2], per row or shared) when given,
    which estimates the output MSE rather than the weight MSE.
    """
    amax = np.abs(w).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    if not search:
        return (amax / qmax).astype(np.float32)
    weight = np.ones_like(w) if hdiag is None else np.broadcast_to(hdiag, w.shape)
    best_err = np.full(w.shape[0], np.inf)
    best = amax / qmax
    for ratio in _CLIP_GRID:
        s = amax * ratio / qmax
        q = np.clip(np.round(w / s[:, None]), -qmax, qmax) * s[:, None]
        err = ((q - w) ** 2 * weight).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best = np.where(better, s, best)
    return best.astype(np.float32)


def rtn(w: np.ndarray, scales: np.ndarray, qmax: int) -> np.ndarray:
    """Round to nearest: clip(round(w / s), -qmax, qmax) per row (numpy rounds half to even)."""
    return np.clip(np.round(w / scales.astype(np.float64)[:, None]), -qmax, qmax).astype(np.int64)


def gptq(w: np.ndarray, scales: np.ndarray, qmax: int, h: np.ndarray, *, damp: float = 0.01,
         act_order: bool = True) -> np.ndarray:
    """GPTQ rounding of W [O, K] with a shared Hessian `h` [K, K]; returns integers [O, K]."""
    w = np.array(w, dtype=np.float64)
    h = np.array(h, dtype=np.float64)
    k = w.shape[1]
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    inv = np.argsort(perm)
    w, h = w[:, perm], h[np.ix_(perm, perm)]
    h = h + damp * float(np.mean(np.diag(h))) * np.eye(k)
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: H^-1 = U^T U
    except np.linalg.LinAlgError:
        return rtn(w[:, inv], scales, qmax)
    s = scales.astype(np.float64)
    q = np.zeros_like(w)
    for j in range(k):
        col = w[:, j]
        qj = np.clip(np.round(col / s), -qmax, qmax)
        q[:, j] = qj
        err = (col - qj * s) / u[j, j]
        w[:, j + 1:] -= np.outer(err, u[j, j + 1:])
    return q[:, inv].astype(np.int64)


def gptq_depthwise(w: np.ndarray, scales: np.ndarray, qmax: int, xtx: np.ndarray, *,
                   damp: float = 0.01) -> np.ndarray:
    """GPTQ for depthwise weights W [C*M, K] with per-input-channel Hessians `xtx` [C, K, K]."""
    channels = xtx.shape[0]
    mult = w.shape[0] // channels
    q = np.zeros(w.shape, dtype=np.int64)
    for o in range(w.shape[0]):
        q[o:o + 1] = gptq(w[o:o + 1], scales[o:o + 1], qmax, xtx[o // mult], damp=damp)
    return q


def output_mse(w: np.ndarray, w_hat: np.ndarray, xtx: np.ndarray, rows: int) -> float:
    """Mean squared output error E[(x . (w_hat - w))^2] over rows and output channels, from X^T X.

    `xtx` is [K, K] (shared) or [C, K, K] (depthwise, output channel o reads channel o // M).
    """
    e = np.asarray(w_hat, np.float64) - np.asarray(w, np.float64)
    if xtx.ndim == 3:
        mult = e.shape[0] // xtx.shape[0]
        total = sum(float(e[o] @ xtx[o // mult] @ e[o]) for o in range(e.shape[0]))
    else:
        total = float(np.einsum("ok,kl,ol->", e, xtx, e, optimize=True))
    return total / (max(rows, 1) * e.shape[0])
