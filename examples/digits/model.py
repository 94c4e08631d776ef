"""A small CNN for scikit-learn's 8x8 digits, written and trained in plain JAX (no flax, no optax).

The model (input `pixels` float32 [1, 8, 8, 1], the 0..16 pixel values divided by 16):

    conv 3x3, 1 -> 8 channels, SAME, + ReLU          -> [1, 8, 8, 8]
    conv 3x3, 8 -> 16 channels, stride 2, SAME, + ReLU -> [1, 4, 4, 16]
    reshape                                           -> [1, 256]
    dense 256 -> 10, softmax                          -> `probs` [1, 10]

3,818 parameters. Every op converts through jax2tf to a TFLite builtin that edgepack imports and the
Cortex-M kernel library runs (CONV_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX).

Training: mini-batch Adam (written out below) on softmax cross-entropy, seed 0, on the stratified
75 % / 25 % split of `load_digits` (`test_size=0.25, random_state=0`: 1347 train, 450 test images).

Entry point for the edgepack CLI: `edgepack package examples/digits/model.py:digits ...` calls `digits()`,
which returns `(apply, params, {"pixels": zeros[1, 8, 8, 1]})`. The parameters come from
`$EDGEPACK_DIGITS_DIR/params.npz` (default `build/digits/params.npz`, relative to the current directory);
when that file is missing, `digits()` trains the model first (a few seconds) and writes it.

Usage from Python::

    from model import load_data, train, apply
    data = load_data(); params = train(data); probs = apply(params, data.x_test[:1])
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

SEED = 0
TEST_SIZE = 0.25
EPOCHS = 30
BATCH = 32
LR = 3e-3
INPUT_NAME = "pixels"
OUTPUT_NAME = "probs"
INPUT_SHAPE = (1, 8, 8, 1)
DIR_ENV = "EDGEPACK_DIGITS_DIR"
DEFAULT_DIR = Path("build/digits")
SHAPES = {"w1": (3, 3, 1, 8), "b1": (8,), "w2": (3, 3, 8, 16), "b2": (16,), "wd": (256, 10), "bd": (10,)}

Params = dict[str, jax.Array]


@dataclass
class Dataset:
    """Pixels in [0, 1] as float32 [N, 8, 8, 1] (NHWC) and int64 labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data() -> Dataset:
    """scikit-learn's bundled digits (1797 images, nothing downloaded), pixels / 16, stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)
    return Dataset(x_tr, y_tr, x_te, y_te)


def _conv(x: jax.Array, w: jax.Array, b: jax.Array, stride: int) -> jax.Array:
    y = jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b


def logits(params: Params, x: jax.Array) -> jax.Array:
    """The network up to the dense layer, for a batch [B, 8, 8, 1]."""
    y = jax.nn.relu(_conv(x, params["w1"], params["b1"], 1))
    y = jax.nn.relu(_conv(y, params["w2"], params["b2"], 2))
    return y.reshape(y.shape[0], -1) @ params["wd"] + params["bd"]


def apply(params: Params, pixels: jax.Array) -> dict[str, jax.Array]:
    """Class probabilities {'probs': [B, 10]} for pixels [B, 8, 8, 1] in [0, 1]."""
    return {OUTPUT_NAME: jax.nn.softmax(logits(params, pixels))}


def init_params(seed: int = SEED) -> dict[str, np.ndarray]:
    """He-normal weights and zero biases, from a seeded numpy generator."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in SHAPES.items():
        if name.startswith("b"):
            params[name] = np.zeros(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[:-1]))
            params[name] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return params


def _loss(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


@jax.jit
def _adam_step(params: Params, m: Params, v: Params, step: jax.Array, x: jax.Array, y: jax.Array
               ) -> tuple[Params, Params, Params]:
    """One Adam step (beta1 0.9, beta2 0.999, eps 1e-8) with learning rate LR."""
    grads = jax.grad(_loss)(params, x, y)
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = jax.tree.map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
    scale = LR * jnp.sqrt(1 - b2**step) / (1 - b1**step)
    params = jax.tree.map(lambda p, m_, v_: p - scale * m_ / (jnp.sqrt(v_) + eps), params, m, v)
    return params, m, v


def train(data: Dataset, epochs: int = EPOCHS, seed: int = SEED) -> dict[str, np.ndarray]:
    """Mini-batch Adam for `epochs` epochs; deterministic for a given seed on a given machine."""
    rng = np.random.default_rng(seed)
    params: Params = {k: jnp.asarray(v) for k, v in init_params(seed).items()}
    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    n, step = len(data.x_train), 0
    x_all, y_all = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n - BATCH + 1, BATCH):  # full batches only: one compiled shape
            idx = order[start:start + BATCH]
            step += 1
            params, m, v = _adam_step(params, m, v, jnp.float32(step), x_all[idx], y_all[idx])
    return {k: np.asarray(p, np.float32) for k, p in params.items()}


def accuracy(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the float JAX model on x [N, 8, 8, 1]."""
    probs = jax.jit(apply)(params, jnp.asarray(x))[OUTPUT_NAME]
    return float((np.asarray(probs).argmax(axis=-1) == y).mean())


def params_path(out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the trained parameters are cached: OUT/params.npz ($EDGEPACK_DIGITS_DIR, default build/digits)."""
    folder = Path(out_dir) if out_dir is not None else Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)
    return folder / "params.npz"


def load_or_train(out_dir: str | os.PathLike[str] | None = None, data: Dataset | None = None,
                  retrain: bool = False, seed: int = SEED) -> tuple[dict[str, np.ndarray], bool, float]:
    """(params, trained_now, seconds): the cached parameters, or freshly trained ones (then cached)."""
    path = params_path(out_dir)
    if path.is_file() and not retrain:
        with np.load(path) as f:
            params = {k: f[k] for k in SHAPES}
        return params, False, 0.0
    start = time.perf_counter()
    params = train(data if data is not None else load_data(), seed=seed)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **params)
    return params, True, seconds


def digits() -> tuple:
    """edgepack entry point: (fn, params, example_inputs); trains and caches the parameters if needed."""
    params, _, _ = load_or_train()
    return apply, params, {INPUT_NAME: np.zeros(INPUT_SHAPE, np.float32)}
