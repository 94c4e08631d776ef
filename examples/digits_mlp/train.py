"""Train a tiny digit classifier and export it as ONNX for the edgepack demo.

This is the first example a new edgepack user runs. It needs no download: the
data set is scikit-learn's bundled ``load_digits`` (1797 8x8 grey-scale images
of the digits 0-9, pixel values 0..16, scaled here to [0, 1]).

What it does:

1. Splits the data into train/test sets (stratified, ``test_size=0.25``,
   ``random_state=0``).
2. Trains a small MLP, ``64 -> 32 -> ReLU -> 10``, with plain numpy
   (mini-batch Adam on softmax cross-entropy, seed 0) until the test accuracy
   reaches 95% or 200 epochs have run.
3. Writes, into ``--out`` (default ``build/digits_mlp``):

   * ``digits_mlp.onnx`` - opset 17, IR version 8, float32; input ``pixels``
     ``[1, 64]``, output ``probs`` ``[1, 10]``; graph Gemm -> Relu -> Gemm -> Softmax.
   * ``calib.npz`` - key ``pixels``: the first 200 training samples, float32 ``[200, 1, 64]``
     (calibration data for quantisation).
   * ``test.npz`` - keys ``pixels`` (float32 ``[N, 1, 64]``) and ``y`` (int64 ``[N]``).

4. Runs the written model with onnxruntime, checks it agrees with the numpy
   forward pass to within 1e-5, and prints the train/test accuracy it measured.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
N_IN, N_HIDDEN, N_OUT = 64, 32, 10
OPSET = 17
IR_VERSION = 8
N_CALIB = 200
ATOL = 1e-5


@dataclass
class Params:
    """MLP weights, stored in ONNX Gemm ``transB=1`` layout (``[out, in]``)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def as_list(self) -> list[np.ndarray]:
        return [self.w1, self.b1, self.w2, self.b2]


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data() -> Dataset:
    """Load the bundled digits data, scale to [0, 1], and split it."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    return Dataset(x_tr, y_tr, x_te, y_te)


def init_params(rng: np.random.Generator) -> Params:
    """He-initialised weights, zero biases."""
    w1 = rng.normal(0.0, np.sqrt(2.0 / N_IN), (N_HIDDEN, N_IN))
    w2 = rng.normal(0.0, np.sqrt(2.0 / N_HIDDEN), (N_OUT, N_HIDDEN))
    return Params(
        w1.astype(np.float32),
        np.zeros(N_HIDDEN, np.float32),
        w2.astype(np.float32),
        np.zeros(N_OUT, np.float32),
    )


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (hidden activations, class probabilities) for a batch ``[B, 64]``."""
    h = np.maximum(x @ p.w1.T + p.b1, 0.0)
    return h, softmax(h @ p.w2.T + p.b2)


def gradients(p: Params, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Gradients of the mean cross-entropy loss, in ``Params.as_list`` order."""
    h, probs = forward(p, x)
    dz2 = probs.copy()
    dz2[np.arange(len(y)), y] -= 1.0
    dz2 /= len(y)
    dh = (dz2 @ p.w2) * (h > 0)
    return [dh.T @ x, dh.sum(axis=0), dz2.T @ h, dz2.sum(axis=0)]


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(axis=-1) == y).mean())


def train(data: Dataset, epochs: int, batch_size: int, lr: float, target_acc: float) -> tuple[Params, int]:
    """Mini-batch Adam; stop early once test accuracy reaches ``target_acc``."""
    rng = np.random.default_rng(SEED)
    p = init_params(rng)
    params = p.as_list()
    m = [np.zeros_like(a) for a in params]
    v = [np.zeros_like(a) for a in params]
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
    n = len(data.x_train)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            step += 1
            for a, g, m_i, v_i in zip(params, gradients(p, data.x_train[idx], data.y_train[idx]), m, v, strict=True):
                m_i[...] = beta1 * m_i + (1 - beta1) * g
                v_i[...] = beta2 * v_i + (1 - beta2) * g * g
                m_hat = m_i / (1 - beta1**step)
                v_hat = v_i / (1 - beta2**step)
                a -= (lr * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
        if accuracy(forward(p, data.x_test)[1], data.y_test) >= target_acc:
            return p, epoch
    return p, epochs


def build_model(p: Params) -> onnx.ModelProto:
    """Build the ONNX graph Gemm(transB=1) -> Relu -> Gemm(transB=1) -> Softmax."""
    inits = [
        numpy_helper.from_array(p.w1, "fc1.weight"),
        numpy_helper.from_array(p.b1, "fc1.bias"),
        numpy_helper.from_array(p.w2, "fc2.weight"),
        numpy_helper.from_array(p.b2, "fc2.bias"),
    ]
    nodes = [
        helper.make_node("Gemm", ["pixels", "fc1.weight", "fc1.bias"], ["fc1_out"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1_out"], ["relu_out"], name="relu"),
        helper.make_node("Gemm", ["relu_out", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, N_IN])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, N_OUT])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edgepack-examples",
        doc_string="8x8 digit classifier (sklearn load_digits), pixels scaled to [0, 1].",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def run_onnx(model_path: Path, x: np.ndarray) -> np.ndarray:
    """Run the model one sample at a time (its batch dimension is fixed at 1)."""
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(["probs"], {"pixels": row[None, :]})[0] for row in x])


def write_outputs(out: Path, model: onnx.ModelProto, data: Dataset) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "digits_mlp.onnx"
    onnx.save(model, str(model_path))
    np.savez(out / "calib.npz", pixels=data.x_train[:N_CALIB, None, :].astype(np.float32))
    np.savez(
        out / "test.npz",
        pixels=data.x_test[:, None, :].astype(np.float32),
        y=data.y_test.astype(np.int64),
    )
    return model_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a 64-32-10 MLP on scikit-learn's bundled 8x8 digits (no download) "
        "and export digits_mlp.onnx, calib.npz and test.npz for the edgepack demo.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("build/digits_mlp"), help="output directory (default: %(default)s)"
    )
    parser.add_argument("--epochs", type=int, default=200, help="maximum training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default: %(default)s)")
    parser.add_argument(
        "--target-acc",
        type=float,
        default=0.97,
        help="stop once test accuracy reaches this (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    data = load_data()
    params, epochs_run = train(data, args.epochs, args.batch_size, args.lr, args.target_acc)
    model_path = write_outputs(args.out, build_model(params), data)

    accs = {}
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        ort_probs = run_onnx(model_path, x)
        np_probs = forward(params, x)[1]
        diff = float(np.abs(ort_probs - np_probs).max())
        assert diff <= ATOL, f"onnxruntime and numpy disagree on {split} split: max abs diff {diff:.3g}"
        accs[split] = accuracy(ort_probs, y)

    elapsed = time.perf_counter() - t0
    print(
        f"digits_mlp: train_acc={accs['train']:.4f} test_acc={accs['test']:.4f} "
        f"(onnxruntime, {epochs_run} epochs, {elapsed:.1f}s) -> {args.out}"
    )


if __name__ == "__main__":
    main()
