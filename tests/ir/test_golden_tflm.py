"""The golden interpreter against tflite-micro, op by op, on models written with `edgepack.ir.tflite_writer`.

Every test builds a one-op (or small multi-layer) .tflite with seeded random weights and quantization,
runs it in tflite-micro (the MCU oracle) one sample at a time, imports it with `from_tflite`, runs
`edgepack.ir.reference` on all samples stacked, and requires every output value to be identical.
Combinations tflite-micro refuses are skipped with its own error message as the reason.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgepack.errors import ModelError
from edgepack.ir.reference import Interpreter
from edgepack.ir.tflite import from_tflite
from edgepack.ir.tflite_writer import ACTIVATIONS, SAME, VALID, ModelBuilder

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SAMPLES = 24  # random inputs per single-op test
QMIN = {"int8": -128, "int16": -32768}
QMAX = {"int8": 127, "int16": 32767}


# ---- the oracle ----

class TflmRefusedError(Exception):
    """tflite-micro would not prepare the model; the message is what it printed."""


@contextlib.contextmanager
def _c_stderr() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptor 2 (tflite-micro's error reporter)."""
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode("utf-8", "replace").strip())


def tflm_run(model: bytes, samples: list[np.ndarray]) -> list[np.ndarray]:
    """Run each stacked sample (one array per model input, sample k is `arr[k:k+1]`) through tflite-micro."""
    with _c_stderr() as err:
        try:
            interp = runtime.Interpreter.from_bytes(model)
        except RuntimeError:
            interp = None
    if interp is None:
        raise TflmRefusedError(" ".join(err[0].split()) or "no message")
    outputs = []
    for k in range(len(samples[0])):
        for i, arr in enumerate(samples):
            interp.set_input(arr[k:k + 1], i)
        interp.invoke()
        outputs.append(interp.get_output(0).copy())
    return outputs


def check(tmp_path: Path, m: ModelBuilder, inputs: list[int], output: int, samples: list[np.ndarray],
          may_refuse: bool = False) -> np.ndarray:
    """Assert that the golden interpreter reproduces tflite-micro bit for bit; returns the outputs.

    `samples[i]` stacks the values of model input `inputs[i]` along axis 0 (each sample has batch 1).
    With `may_refuse`, a model tflite-micro does not prepare is skipped with its message as the reason.
    """
    model = m.to_bytes(inputs, [output])
    try:
        expected = np.concatenate(tflm_run(model, samples))
    except TflmRefusedError as exc:
        if may_refuse:
            pytest.skip(f"tflite-micro refuses this model: {exc}")
        raise
    assert np.unique(expected).size > 2, "degenerate test: tflite-micro's output is (nearly) constant"
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    graph = from_tflite(path)
    names = [m.tensors[i].name for i in inputs]
    got = Interpreter(graph).run(dict(zip(names, samples, strict=True)))[m.tensors[output].name]
    assert got.dtype == expected.dtype and got.shape == expected.shape
    bad = np.argwhere(got != expected)
    if bad.size:
        k = tuple(bad[0])
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        pytest.fail(f"{len(bad)} of {got.size} values differ (max {diff.max()}); first at {list(k)}: "
                    f"edgepack {got[k]} vs tflite-micro {expected[k]}")
    return got


# ---- random models ----

def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded by the test's parameters, stable across runs and test order."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def log_uniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> np.ndarray | float:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size))


def activations(rng: np.random.Generator, shape: list[int], dtype: str = "int8", n: int = SAMPLES) -> np.ndarray:
    """`n` stacked samples spanning the dtype's range (int16 mostly within +-8192, as calibrated data would)."""
    if dtype == "int16":
        return np.clip(rng.normal(0, 4000, (n, *shape[1:])), -32768, 32767).astype(np.int16)
    return rng.integers(-128, 128, (n, *shape[1:])).astype(np.int8)


def act_quant(rng: np.random.Generator, dtype: str) -> tuple[float, int]:
    """A random (scale, zero point); int16 activations are symmetric, as TFLite requires."""
    scale = float(log_uniform(rng, 0.005, 0.2))
    return (scale, 0) if dtype == "int16" else (scale, int(rng.integers(-40, 40)))


def out_quant_for(rng: np.random.Generator, real_std: float, dtype: str, activation: str = "NONE") -> tuple[float, int]:
    """An output quantization that covers about +-3 standard deviations of the real result."""
    qmax = QMAX[dtype]
    scale = 3 * real_std / qmax * float(rng.uniform(0.6, 1.6))
    if dtype == "int16":
        return scale, 0
    return scale, int(rng.integers(-110, -90)) if activation != "NONE" else int(rng.integers(-20, 20))


def add_weights(m: ModelBuilder, rng: np.random.Generator, name: str, shape: list[int], axis: int, per_channel: bool,
                weight_type: str = "int8", scale: float = 0.006) -> tuple[int, np.ndarray]:
    """Symmetric random weights (int8 or int4) quantized along `axis`; returns (tensor, scales per channel)."""
    wmax = 7 if weight_type == "int4" else 127
    data = rng.integers(-wmax, wmax + 1, shape).astype(np.int8)
    channels = shape[axis]
    lo, hi = scale / 3, scale * 3
    scales = log_uniform(rng, lo, hi, channels) if per_channel else np.full(channels, log_uniform(rng, lo, hi))
    t = m.tensor(name, shape, weight_type, data, scale=scales if per_channel else scales[:1], zero_point=0, axis=axis)
    return t, np.asarray(scales, dtype=np.float32)


def add_bias(m: ModelBuilder, rng: np.random.Generator, in_scale: float, w_scales: np.ndarray,
             dtype: str = "int32") -> int:
    """A bias quantized with scale in_scale * w_scale, as TFLite requires."""
    data = rng.integers(-3000, 3000, w_scales.size)
    return m.tensor("bias", [w_scales.size], dtype, data, scale=in_scale * w_scales.astype(np.float64), zero_point=0,
                    axis=0)


def out_size(size: int, kernel: int, stride: int, dilation: int, padding: int) -> int:
    """TFLite's ComputeOutSize."""
    effective = (kernel - 1) * dilation + 1
    return -(-size // stride) if padding == SAME else (size - effective + stride) // stride


# ---- int8 (and int4 / int16x8) CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED ----

CONV_CASES = [  # padding, stride, dilation, activation, per_channel
    (SAME, 1, 1, "NONE", True), (VALID, 1, 1, "NONE", True), (SAME, 2, 1, "RELU", True),
    (VALID, 2, 1, "RELU6", True), (SAME, 1, 2, "RELU", True), (VALID, 1, 2, "NONE", True),
    (SAME, 2, 1, "NONE", False),
]
ACT_WEIGHTS = [("int8", "int8"), ("int8", "int4"), ("int16", "int8")]


def _conv_model(rng: np.random.Generator, kind: str, act: str, weight_type: str, padding: int, stride: int,
                dilation: int, activation: str, per_channel: bool, multiplier: int = 1,
                bias_type: str | None = None) -> tuple[ModelBuilder, int, int, list[int]]:
    m = ModelBuilder()
    in_shape = [1, 11, 9, 3 if kind == "CONV_2D" else 4]
    kh, kw, out_c = 3, 2, 5
    oh = out_size(in_shape[1], kh, stride, dilation, padding)
    ow = out_size(in_shape[2], kw, stride, dilation, padding)
    s_in, z_in = act_quant(rng, act)
    x = m.tensor("x", in_shape, act, scale=s_in, zero_point=z_in)
    if kind == "CONV_2D":
        w, w_scales = add_weights(m, rng, "w", [out_c, kh, kw, in_shape[3]], 0, per_channel, weight_type)
        taps = kh * kw * in_shape[3]
    else:
        out_c = in_shape[3] * multiplier
        w, w_scales = add_weights(m, rng, "w", [1, kh, kw, out_c], 3, per_channel, weight_type)
        taps = kh * kw
    bias_type = bias_type or ("int64" if act == "int16" else "int32")
    b = add_bias(m, rng, s_in, w_scales, bias_type) if bias_type != "none" else -1
    x_std = 4000 if act == "int16" else 74
    w_std = (4.6 if weight_type == "int4" else 73) * float(np.mean(w_scales))
    s_out, z_out = out_quant_for(rng, s_in * x_std * w_std * math.sqrt(taps), act, activation)
    y = m.tensor("y", [1, oh, ow, out_c], act, scale=s_out, zero_point=z_out)
    options = dict(Padding=padding, StrideH=stride, StrideW=stride, DilationHFactor=dilation,
                   DilationWFactor=dilation, FusedActivationFunction=ACTIVATIONS[activation])
    if kind == "CONV_2D":
        m.op("CONV_2D", [x, w, b], [y], "Conv2DOptions", **options)
    else:
        m.op("DEPTHWISE_CONV_2D", [x, w, b], [y], "DepthwiseConv2DOptions", DepthMultiplier=multiplier, **options)
    return m, x, y, in_shape


@pytest.mark.parametrize("act,weight_type", ACT_WEIGHTS)
@pytest.mark.parametrize("padding,stride,dilation,activation,per_channel", CONV_CASES)
def test_conv_2d(tmp_path: Path, act: str, weight_type: str, padding: int, stride: int, dilation: int,
                 activation: str, per_channel: bool) -> None:
    rng = rng_for("conv", act, weight_type, padding, stride, dilation, activation, per_channel)
    m, x, y, in_shape = _conv_model(rng, "CONV_2D", act, weight_type, padding, stride, dilation, activation,
                                    per_channel)
    check(tmp_path, m, [x], y, [activations(rng, in_shape, act)])


@pytest.mark.parametrize("bias_type", ["int32", "none"])
def test_conv_2d_int16_narrow_accumulator(tmp_path: Path, bias_type: str) -> None:
    """16x8 CONV_2D: TFLM requantizes in 32 bits with an int32 bias, in 64 bits without a bias."""
    rng = rng_for("conv16", bias_type)
    m, x, y, in_shape = _conv_model(rng, "CONV_2D", "int16", "int8", SAME, 1, 1, "NONE", True, bias_type=bias_type)
    check(tmp_path, m, [x], y, [activations(rng, in_shape, "int16")])


@pytest.mark.parametrize("kind", ["DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_int16_int32_bias_refused(tmp_path: Path, kind: str) -> None:
    """TFLM's 16x8 DEPTHWISE_CONV_2D and FULLY_CONNECTED read the bias as int64: an int32 bias is an error."""
    m = ModelBuilder()
    shape = [1, 4, 4, 3] if kind == "DEPTHWISE_CONV_2D" else [1, 3]
    w_shape = [1, 3, 3, 3] if kind == "DEPTHWISE_CONV_2D" else [3, 3]
    x = m.tensor("x", shape, "int16", scale=0.01, zero_point=0)
    w = m.tensor("w", w_shape, "int8", np.ones(w_shape, np.int8), scale=[0.01] * 3, zero_point=0, axis=len(w_shape) - 1
                 if kind == "DEPTHWISE_CONV_2D" else 0)
    b = m.tensor("b", [3], "int32", np.zeros(3, np.int32), scale=[1e-4] * 3, zero_point=0)
    y = m.tensor("y", shape, "int16", scale=0.01, zero_point=0)
    if kind == "DEPTHWISE_CONV_2D":
        m.op(kind, [x, w, b], [y], "DepthwiseConv2DOptions", Padding=SAME, StrideH=1, StrideW=1, DepthMultiplier=1)
    else:
        m.op(kind, [x, w, b], [y], "FullyConnectedOptions")
    with pytest.raises(ModelError, match="int32 bias with int16 activations"):
        from_tflite_bytes(m.to_bytes([x], [y]))


@pytest.mark.parametrize("act,weight_type", ACT_WEIGHTS)
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("padding,stride,dilation,activation,per_channel", CONV_CASES[:5])
def test_depthwise_conv_2d(tmp_path: Path, act: str, weight_type: str, multiplier: int, padding: int, stride: int,
                           dilation: int, activation: str, per_channel: bool) -> None:
    rng = rng_for("dw", act, weight_type, multiplier, padding, stride, dilation, activation, per_channel)
    m, x, y, in_shape = _conv_model(rng, "DEPTHWISE_CONV_2D", act, weight_type, padding, stride, dilation,
                                    activation, per_channel, multiplier)
    check(tmp_path, m, [x], y, [activations(rng, in_shape, act)])


@pytest.mark.parametrize("act,weight_type", ACT_WEIGHTS)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("activation,with_bias", [("NONE", True), ("RELU", True), ("NONE", False)])
def test_fully_connected(tmp_path: Path, act: str, weight_type: str, per_channel: bool, activation: str,
                         with_bias: bool) -> None:
    rng = rng_for("fc", act, weight_type, per_channel, activation, with_bias)
    m = ModelBuilder()
    s_in, z_in = act_quant(rng, act)
    x = m.tensor("x", [1, 40], act, scale=s_in, zero_point=z_in)
    w, w_scales = add_weights(m, rng, "w", [12, 40], 0, per_channel, weight_type)
    b = add_bias(m, rng, s_in, w_scales, "int64" if act == "int16" else "int32") if with_bias else -1
    x_std = 4000 if act == "int16" else 74
    w_std = (4.6 if weight_type == "int4" else 73) * float(np.mean(w_scales))
    s_out, z_out = out_quant_for(rng, s_in * x_std * w_std * math.sqrt(40), act, activation)
    y = m.tensor("y", [1, 12], act, scale=s_out, zero_point=z_out)
    m.op("FULLY_CONNECTED", [x, w, b], [y], "FullyConnectedOptions", FusedActivationFunction=ACTIVATIONS[activation])
    # tflite-micro has no per-channel FULLY_CONNECTED with int4 weights (fully_connected_common.cc).
    check(tmp_path, m, [x], y, [activations(rng, [1, 40], act)], may_refuse=weight_type == "int4" and per_channel)


# ---- ADD and MUL ----

BROADCASTS = [([1, 4, 5, 6], [1, 4, 5, 6]), ([1, 4, 5, 6], [1, 1, 1, 6]), ([1, 4, 1, 6], [1, 1, 5, 6])]


@pytest.mark.parametrize("op", ["ADD", "MUL"])
@pytest.mark.parametrize("act", ["int8", "int16"])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=["same", "channel", "outer"])
@pytest.mark.parametrize("activation", ["NONE", "RELU"])
def test_add_mul(tmp_path: Path, op: str, act: str, shapes: tuple[list[int], list[int]], activation: str) -> None:
    rng = rng_for(op, act, shapes, activation)
    m = ModelBuilder()
    (s1, z1), (s2, z2) = act_quant(rng, act), act_quant(rng, act)
    a = m.tensor("a", shapes[0], act, scale=s1, zero_point=z1)
    b = m.tensor("b", shapes[1], act, scale=s2, zero_point=z2)
    out_shape = list(np.broadcast_shapes(tuple(shapes[0]), tuple(shapes[1])))
    x_std = 4000 if act == "int16" else 74
    real_std = x_std * (s1 + s2) if op == "ADD" else x_std * x_std * s1 * s2
    s_out, z_out = out_quant_for(rng, real_std, act, activation)
    y = m.tensor("y", out_shape, act, scale=s_out, zero_point=z_out)
    options = "AddOptions" if op == "ADD" else "MulOptions"
    fields = {"FusedActivationFunction": ACTIVATIONS[activation]}
    if op == "ADD" and act == "int16":
        fields["PotScaleInt16"] = False  # general 16-bit scales (the schema default `true` needs POT scales)
    m.op(op, [a, b], [y], options, **fields)
    check(tmp_path, m, [a, b], y, [activations(rng, shapes[0], act), activations(rng, shapes[1], act)])


# ---- pooling and MEAN ----

POOL_CASES = [  # kernel, stride, padding, activation
    (3, 2, SAME, "NONE"), (3, 1, SAME, "RELU"), (2, 2, VALID, "NONE"), (3, 2, VALID, "RELU6"),
]


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("act", ["int8", "int16"])
@pytest.mark.parametrize("kernel,stride,padding,activation", POOL_CASES)
def test_pool(tmp_path: Path, op: str, act: str, kernel: int, stride: int, padding: int, activation: str) -> None:
    rng = rng_for(op, act, kernel, stride, padding, activation)
    m = ModelBuilder()
    in_shape = [1, 9, 8, 5]
    s, z = act_quant(rng, act)
    x = m.tensor("x", in_shape, act, scale=s, zero_point=z)
    oh, ow = (out_size(in_shape[i], kernel, stride, 1, padding) for i in (1, 2))
    y = m.tensor("y", [1, oh, ow, 5], act, scale=s, zero_point=z)
    m.op(op, [x], [y], "Pool2DOptions", Padding=padding, StrideH=stride, StrideW=stride, FilterHeight=kernel,
         FilterWidth=kernel, FusedActivationFunction=ACTIVATIONS[activation])
    check(tmp_path, m, [x], y, [activations(rng, in_shape, act)])


@pytest.mark.parametrize("act", ["int8", "int16"])
@pytest.mark.parametrize("keepdims", [True, False])
@pytest.mark.parametrize("same_quant", [True, False])
@pytest.mark.parametrize("hw,axes", [((5, 5), [1, 2]), ((7, 3), [1, 2]), ((7, 3), [2]), ((4, 3), [3]),
                                     ((6, 5), [-1, 1])])
def test_mean(tmp_path: Path, act: str, keepdims: bool, same_quant: bool, hw: tuple[int, int],
              axes: list[int]) -> None:
    rng = rng_for("mean", act, keepdims, same_quant, hw, axes)
    m = ModelBuilder()
    in_shape = [1, *hw, 6]
    s, z = act_quant(rng, act)
    x = m.tensor("x", in_shape, act, scale=s, zero_point=z)
    reduced = {a % 4 for a in axes}
    out_shape = [1 if i in reduced else d for i, d in enumerate(in_shape) if keepdims or i not in reduced]
    axes_t = m.const("axes", axes)
    s_out, z_out = (s, z) if same_quant else out_quant_for(rng, 60 * s if act == "int8" else 3000 * s, act)
    y = m.tensor("y", out_shape, act, scale=s_out, zero_point=z_out)
    m.op("MEAN", [x, axes_t], [y], "ReducerOptions", KeepDims=keepdims)
    check(tmp_path, m, [x], y, [activations(rng, in_shape, act)])


# ---- data movement ----

@pytest.mark.parametrize("act", ["int8", "int16"])
def test_reshape(tmp_path: Path, act: str) -> None:
    rng = rng_for("reshape", act)
    m = ModelBuilder()
    s, z = act_quant(rng, act)
    x = m.tensor("x", [1, 4, 4, 3], act, scale=s, zero_point=z)
    shape = m.const("shape", [1, 48])
    y = m.tensor("y", [1, 48], act, scale=s, zero_point=z)
    m.op("RESHAPE", [x, shape], [y])
    check(tmp_path, m, [x], y, [activations(rng, [1, 4, 4, 3], act)])


@pytest.mark.parametrize("act", ["int8", "int16"])
@pytest.mark.parametrize("axis", [3, 1, -1])
def test_concatenation(tmp_path: Path, act: str, axis: int) -> None:
    rng = rng_for("concat", act, axis)
    m = ModelBuilder()
    s, z = act_quant(rng, act)
    shapes = [[1, 3, 4, 2], [1, 3, 4, 5]] if axis != 1 else [[1, 2, 4, 3], [1, 5, 4, 3]]
    a = m.tensor("a", shapes[0], act, scale=s, zero_point=z)
    b = m.tensor("b", shapes[1], act, scale=s, zero_point=z)
    out_shape = list(shapes[0])
    out_shape[axis] += shapes[1][axis]
    y = m.tensor("y", out_shape, act, scale=s, zero_point=z)
    m.op("CONCATENATION", [a, b], [y], "ConcatenationOptions", Axis=axis)
    check(tmp_path, m, [a, b], y, [activations(rng, shapes[0], act), activations(rng, shapes[1], act)])


@pytest.mark.parametrize("act", ["int8", "int16"])
def test_pad(tmp_path: Path, act: str) -> None:
    rng = rng_for("pad", act)
    m = ModelBuilder()
    s, z = act_quant(rng, act)
    x = m.tensor("x", [1, 4, 5, 3], act, scale=s, zero_point=z)
    pads = m.const("paddings", [[0, 0], [1, 2], [2, 1], [0, 0]])
    y = m.tensor("y", [1, 7, 8, 3], act, scale=s, zero_point=z)
    m.op("PAD", [x, pads], [y])
    check(tmp_path, m, [x], y, [activations(rng, [1, 4, 5, 3], act)])


@pytest.mark.parametrize("act", ["int8", "int16"])
@pytest.mark.parametrize("perm", [[0, 2, 1, 3], [0, 3, 1, 2]])
def test_transpose(tmp_path: Path, act: str, perm: list[int]) -> None:
    rng = rng_for("transpose", act, perm)
    m = ModelBuilder()
    s, z = act_quant(rng, act)
    in_shape = [1, 3, 4, 5]
    x = m.tensor("x", in_shape, act, scale=s, zero_point=z)
    p = m.const("perm", perm)
    y = m.tensor("y", [in_shape[i] for i in perm], act, scale=s, zero_point=z)
    m.op("TRANSPOSE", [x, p], [y])
    check(tmp_path, m, [x], y, [activations(rng, in_shape, act)])


# ---- activations ----

@pytest.mark.parametrize("beta,in_scale", [(1.0, 0.1), (1.0, 0.02), (1.0, 0.5), (0.5, 0.1), (2.0, 0.05)])
def test_softmax(tmp_path: Path, beta: float, in_scale: float) -> None:
    rng = rng_for("softmax", beta, in_scale)
    m = ModelBuilder()
    x = m.tensor("x", [1, 2, 10], "int8", scale=in_scale, zero_point=int(rng.integers(-30, 30)))
    y = m.tensor("y", [1, 2, 10], "int8", scale=1 / 256, zero_point=-128)
    m.op("SOFTMAX", [x], [y], "SoftmaxOptions", Beta=beta)
    check(tmp_path, m, [x], y, [activations(rng, [1, 2, 10], "int8")])


@pytest.mark.parametrize("op", ["RELU", "RELU6"])
@pytest.mark.parametrize("act", ["int8", "int16"])
@pytest.mark.parametrize("same_quant", [True, False])
def test_relu(tmp_path: Path, op: str, act: str, same_quant: bool) -> None:
    rng = rng_for(op, act, same_quant)
    m = ModelBuilder()
    s, z = act_quant(rng, act)
    s = s * 2 if op == "RELU6" and act == "int8" else s
    x = m.tensor("x", [1, 6, 7], act, scale=s, zero_point=z)
    s_out, z_out = (s, z) if same_quant else (s * float(rng.uniform(0.3, 0.9)), QMIN[act] + 5 if act == "int8" else 0)
    y = m.tensor("y", [1, 6, 7], act, scale=s_out, zero_point=z_out)
    m.op(op, [x], [y])
    check(tmp_path, m, [x], y, [activations(rng, [1, 6, 7], act)])


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("in_scale", [0.01, 0.05, 0.2, 1.0])
def test_logistic_tanh(tmp_path: Path, op: str, in_scale: float) -> None:
    rng = rng_for(op, in_scale)
    m = ModelBuilder()
    x = m.tensor("x", [1, 64], "int8", scale=in_scale, zero_point=int(rng.integers(-20, 20)))
    y = m.tensor("y", [1, 64], "int8", scale=1 / 256 if op == "LOGISTIC" else 1 / 128,
                 zero_point=-128 if op == "LOGISTIC" else 0)
    m.op(op, [x], [y])
    check(tmp_path, m, [x], y, [activations(rng, [1, 64], "int8")])


@pytest.mark.parametrize("op", ["SOFTMAX", "LOGISTIC", "TANH"])
def test_int16_table_activations_unsupported(op: str) -> None:
    """tflite-micro runs int16 SOFTMAX/LOGISTIC/TANH with lookup tables; edgepack refuses them in Prepare."""
    rng = rng_for("int16", op)
    m = ModelBuilder()
    x = m.tensor("x", [1, 16], "int16", scale=8 / 32768, zero_point=0)
    y = m.tensor("y", [1, 16], "int16", scale=1 / 32768, zero_point=0)
    m.op(op, [x], [y], "SoftmaxOptions" if op == "SOFTMAX" else None, **({"Beta": 1.0} if op == "SOFTMAX" else {}))
    model = m.to_bytes([x], [y])
    tflm_run(model, [activations(rng, [1, 16], "int16", n=2)])  # tflite-micro supports it...
    with pytest.raises(ModelError, match="int16"):  # ...edgepack does not (yet)
        from_tflite_bytes(model)


# ---- type conversion ----

@pytest.mark.parametrize("out", ["int8", "int16"])
def test_quantize_float(tmp_path: Path, out: str) -> None:
    rng = rng_for("quantize-float", out)
    m = ModelBuilder()
    x = m.tensor("x", [1, 50], "float32")
    s, z = act_quant(rng, out)
    y = m.tensor("y", [1, 50], out, scale=s, zero_point=z)
    m.op("QUANTIZE", [x], [y])
    real = rng.normal(0, 70 * s if out == "int8" else 3000 * s, (SAMPLES, 50)).astype(np.float32)
    real[0, :8] = np.float32(s) * (np.arange(8) + 0.5)  # exact halves: the rounding mode shows
    check(tmp_path, m, [x], y, [real])


@pytest.mark.parametrize("src,dst", [("int8", "int8"), ("int8", "int16"), ("int16", "int8"), ("int16", "int16")])
def test_requantize(tmp_path: Path, src: str, dst: str) -> None:
    rng = rng_for("requantize", src, dst)
    m = ModelBuilder()
    s, z = act_quant(rng, src)
    x = m.tensor("x", [1, 50], src, scale=s, zero_point=z)
    ratio = float(rng.uniform(0.4, 2.5)) * (256 if (src, dst) == ("int8", "int16") else 1) / \
        (256 if (src, dst) == ("int16", "int8") else 1)
    s_out, z_out = act_quant(rng, dst)
    y = m.tensor("y", [1, 50], dst, scale=s / ratio, zero_point=z_out)
    m.op("QUANTIZE", [x], [y])
    check(tmp_path, m, [x], y, [activations(rng, [1, 50], src)], may_refuse=True)


@pytest.mark.parametrize("act", ["int8", "int16"])
def test_dequantize(tmp_path: Path, act: str) -> None:
    rng = rng_for("dequantize", act)
    m = ModelBuilder()
    s, z = act_quant(rng, act)
    x = m.tensor("x", [1, 50], act, scale=s, zero_point=z)
    y = m.tensor("y", [1, 50], "float32")
    m.op("DEQUANTIZE", [x], [y])
    check(tmp_path, m, [x], y, [activations(rng, [1, 50], act)])


# ---- small multi-layer models ----

def _cnn(rng: np.random.Generator) -> tuple[ModelBuilder, int, int]:
    """conv 3x3/2 -> depthwise 3x3 -> pointwise -> average pool -> reshape -> fc -> softmax (MLPerf Tiny style)."""
    m = ModelBuilder()
    x = m.tensor("x", [1, 16, 12, 1], "int8", scale=0.6, zero_point=-10)
    layers = [("CONV_2D", [12, 3, 3, 1], 0, [1, 8, 6, 12], 2),  # kind, weights, channel axis, output, stride
              ("DEPTHWISE_CONV_2D", [1, 3, 3, 12], 3, [1, 8, 6, 12], 1),
              ("CONV_2D", [16, 1, 1, 12], 0, [1, 8, 6, 16], 1)]
    h, s_in = x, 0.6
    for i, (kind, w_shape, axis, out_shape, stride) in enumerate(layers):
        w, w_scales = add_weights(m, rng, f"w{i}", w_shape, axis, True)
        b = add_bias(m, rng, s_in, w_scales)
        taps = math.prod(w_shape[1:]) if kind == "CONV_2D" else 9
        s_out = float(s_in * 60 * 73 * np.mean(w_scales) * math.sqrt(taps) / 127)
        y = m.tensor(f"a{i}", out_shape, "int8", scale=s_out, zero_point=-128)
        options = dict(Padding=SAME, StrideH=stride, StrideW=stride, FusedActivationFunction=ACTIVATIONS["RELU"])
        if kind == "CONV_2D":
            m.op(kind, [h, w, b], [y], "Conv2DOptions", **options)
        else:
            m.op(kind, [h, w, b], [y], "DepthwiseConv2DOptions", DepthMultiplier=1, **options)
        h, s_in = y, s_out
    pooled = m.tensor("pooled", [1, 1, 1, 16], "int8", scale=s_in, zero_point=-128)
    m.op("AVERAGE_POOL_2D", [h], [pooled], "Pool2DOptions", Padding=VALID, StrideH=8, StrideW=6, FilterHeight=8,
         FilterWidth=6)
    flat = m.tensor("flat", [1, 16], "int8", scale=s_in, zero_point=-128)
    m.op("RESHAPE", [pooled, m.const("shape", [1, 16])], [flat])
    # Weights small enough that the logits span a few units: the softmax stays soft.
    w, w_scales = add_weights(m, rng, "fc_w", [10, 16], 0, True, scale=1.5 / (s_in * 45 * 73 * 4))
    b = add_bias(m, rng, s_in, w_scales)
    logits = m.tensor("logits", [1, 10], "int8", scale=0.05, zero_point=0)
    m.op("FULLY_CONNECTED", [flat, w, b], [logits], "FullyConnectedOptions")
    probs = m.tensor("probs", [1, 10], "int8", scale=1 / 256, zero_point=-128)
    m.op("SOFTMAX", [logits], [probs], "SoftmaxOptions", Beta=1.0)
    return m, x, probs


def _mlp(rng: np.random.Generator) -> tuple[ModelBuilder, int, int]:
    """fc 64 -> 32 relu -> 32 relu -> 8 with per-tensor weights (the MLPerf Tiny AD layout, smaller)."""
    m = ModelBuilder()
    h = x = m.tensor("x", [1, 64], "int8", scale=0.3, zero_point=5)
    s_in = 0.3
    for i, (n_in, n_out, act) in enumerate([(64, 32, "RELU"), (32, 32, "RELU"), (32, 8, "NONE")]):
        w, w_scales = add_weights(m, rng, f"w{i}", [n_out, n_in], 0, False)
        b = add_bias(m, rng, s_in, w_scales)
        s_out = float(s_in * 60 * 73 * w_scales[0] * math.sqrt(n_in) / 127)
        y = m.tensor(f"h{i}", [1, n_out], "int8", scale=s_out, zero_point=-128 if act == "RELU" else 3)
        m.op("FULLY_CONNECTED", [h, w, b], [y], "FullyConnectedOptions", FusedActivationFunction=ACTIVATIONS[act])
        h, s_in = y, s_out
    return m, x, h


@pytest.mark.parametrize("build", [_cnn, _mlp], ids=["cnn", "mlp"])
def test_small_models(tmp_path: Path, build) -> None:
    rng = rng_for("model", build.__name__)
    m, x, y = build(rng)
    shape = m.tensors[x].shape
    out = check(tmp_path, m, [x], y, [activations(rng, shape, n=50)])
    assert len(np.unique(out.reshape(len(out), -1), axis=0)) > 10  # the outputs depend on the input


# ---- the shared MLPerf Tiny models ----

MODELS = SHARED / "models"
needs_kws = pytest.mark.skipif(not (MODELS / "kws_ref_model.tflite").is_file()
                               or not (SHARED / "data" / "kws01_test.npz").is_file(),
                               reason=f"MLPerf Tiny KWS model or test data not found under {SHARED}")
needs_ad = pytest.mark.skipif(not (MODELS / "ad01_int8.tflite").is_file(),
                              reason=f"MLPerf Tiny AD model not found under {MODELS}")


def _compare_file(path: Path, x: np.ndarray) -> np.ndarray:
    """Golden interpreter vs tflite-micro on every sample of x ([N, ...] for a batch-1 model); returns outputs."""
    graph = from_tflite(path)
    expected = np.concatenate(tflm_run(path.read_bytes(), [x]))
    got = Interpreter(graph).run({graph.inputs[0]: x})[graph.outputs[0]]
    bad = np.flatnonzero((got != expected).any(axis=tuple(range(1, got.ndim))))
    assert bad.size == 0, f"{bad.size} of {len(x)} inputs differ, first {bad[0]}: {got[bad[0]]} vs {expected[bad[0]]}"
    return got


@pytest.mark.slow
@needs_kws
def test_kws_all_test_inputs() -> None:
    data = np.load(SHARED / "data" / "kws01_test.npz")
    x = data["x_int8"][:, 0]
    out = _compare_file(MODELS / "kws_ref_model.tflite", x)
    accuracy = float(np.mean(out.argmax(axis=1) == data["y"]))
    assert accuracy == pytest.approx(0.901, abs=1e-9)


@pytest.mark.slow
@needs_ad
def test_ad_random_inputs() -> None:
    x = np.random.default_rng(7).integers(-128, 128, (200, 640)).astype(np.int8)
    _compare_file(MODELS / "ad01_int8.tflite", x)


def test_tflm_refusal_is_reported() -> None:
    """A SOFTMAX whose int8 output is not quantized 1/256, -128: tflite-micro's message surfaces."""
    m = ModelBuilder()
    x = m.tensor("x", [1, 8], "int8", scale=0.05, zero_point=-3)
    y = m.tensor("y", [1, 8], "int8", scale=0.1, zero_point=5)
    m.op("SOFTMAX", [x], [y], "SoftmaxOptions", Beta=1.0)
    with pytest.raises(TflmRefusedError, match="zero_point != -128"):
        tflm_run(m.to_bytes([x], [y]), [np.zeros((1, 8), np.int8)])
    with pytest.raises(ModelError, match="zero point -128"):
        from_tflite_bytes(m.to_bytes([x], [y]))


def from_tflite_bytes(model: bytes) -> Interpreter:
    """An Interpreter for an in-memory model (through a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        return Interpreter(from_tflite(path))
