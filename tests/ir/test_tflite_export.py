"""The TFLite exporter: export -> re-import is lossless, and tflite-micro runs the export bit-exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgepack.errors import ModelError
from edgepack.ir.graph import Graph, Node, QuantParams, Tensor
from edgepack.ir.ops import Op
from edgepack.ir.reference import Interpreter
from edgepack.ir.tflite import from_tflite
from edgepack.ir.tflite_export import to_tflite

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "models"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared reference models not found at {SHARED}")


def _tflm(blob: bytes, xs: np.ndarray) -> np.ndarray:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="tflite-micro not installed")
    interp = runtime.Interpreter.from_bytes(blob)
    outs = []
    for x in xs:
        interp.set_input(x, 0)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return np.stack(outs)


def _inputs(graph: Graph, count: int) -> np.ndarray:
    t = graph.tensor(graph.inputs[0])
    rng = np.random.default_rng(0)
    if t.dtype == "float32":
        return rng.standard_normal((count, *t.shape)).astype(np.float32)
    return rng.integers(-128, 128, size=(count, *t.shape)).astype(t.dtype)


def _roundtrip(graph: Graph, tmp_path: Path, count: int = 8) -> None:
    blob = to_tflite(graph)
    path = tmp_path / "exported.tflite"
    path.write_bytes(blob)
    again = from_tflite(path)
    xs = _inputs(graph, count)
    flat = xs.reshape(-1, *xs.shape[2:])
    want = Interpreter(graph).run({graph.inputs[0]: flat})[graph.outputs[0]]
    got = Interpreter(again).run({again.inputs[0]: flat})[again.outputs[0]]
    np.testing.assert_array_equal(got, want)
    tflm = _tflm(blob, xs).reshape(want.shape)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(tflm, want, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(tflm, want)


@needs_shared
@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "ad01_int8.tflite", "kws_ref_model_float.tflite"])
def test_shared_models_roundtrip_and_run_in_tflm(model: str, tmp_path: Path) -> None:
    _roundtrip(from_tflite(SHARED / model), tmp_path)


def _conv_graph(pads: list[int], op: Op = Op.CONV_2D) -> Graph:
    rng = np.random.default_rng(1)
    q = QuantParams(np.float32(0.05), np.int64(3))
    w = rng.integers(-127, 128, size=(4, 3, 3, 2)).astype(np.int8)
    tensors = {
        "x": Tensor("x", (1, 6, 6, 2), "int8", q),
        "w": Tensor("w", w.shape, "int8", QuantParams(np.full(4, 0.01, np.float32), np.zeros(4), axis=0), w),
        "b": Tensor("b", (4,), "int32", QuantParams(np.full(4, 0.0005, np.float32), np.zeros(4), axis=0, bits=32),
                    rng.integers(-500, 500, 4).astype(np.int32)),
        "y": Tensor("y", (1, 6 + pads[0] + pads[2] - 2, 6 + pads[1] + pads[3] - 2, 4), "int8",
                    QuantParams(np.float32(0.2), np.int64(-5))),
    }
    node = Node(op, "conv", ["x", "w", "b"], ["y"], {"strides": [1, 1], "pads": pads, "activation": "RELU"})
    return Graph("conv", tensors, [node], ["x"], ["y"])


def test_asymmetric_pads_export_as_pad_then_valid_conv(tmp_path: Path) -> None:
    graph = _conv_graph([2, 0, 1, 1])
    ops = [n.op for n in from_tflite(_write(tmp_path, to_tflite(graph))).nodes]
    assert ops == [Op.PAD, Op.CONV_2D]
    _roundtrip(graph, tmp_path)


def test_same_pads_export_without_pad(tmp_path: Path) -> None:
    graph = _conv_graph([1, 1, 1, 1])
    assert [n.op for n in from_tflite(_write(tmp_path, to_tflite(graph))).nodes] == [Op.CONV_2D]
    _roundtrip(graph, tmp_path)


def test_pool_with_odd_pads_is_refused() -> None:
    q = QuantParams(np.float32(0.05), np.int64(3))
    tensors = {"x": Tensor("x", (1, 4, 4, 1), "int8", q), "y": Tensor("y", (1, 5, 4, 1), "int8", q)}
    node = Node(Op.MAX_POOL_2D, "pool", ["x"], ["y"], {"kernel": [2, 2], "strides": [1, 1], "pads": [2, 1, 0, 0]})
    with pytest.raises(ModelError, match="neither SAME nor VALID"):
        to_tflite(Graph("pool", tensors, [node], ["x"], ["y"]))


def _write(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "m.tflite"
    path.write_bytes(blob)
    return path
