"""Tests for `edgepack.ir.onnx`: tiny models built in code and the MLPerf Tiny models, each checked against
onnxruntime through the golden reference interpreter; broken files and unsupported ops."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import onnx_models  # noqa: E402  (tests/ir is on sys.path: pytest's rootdir-relative "prepend" import mode)
from onnx import helper  # noqa: E402

from edgepack.errors import EdgepackError, ModelError, UnsupportedOpsError  # noqa: E402
from edgepack.ir import Graph, Op  # noqa: E402
from edgepack.ir import onnx as onnx_import  # noqa: E402
from edgepack.ir.onnx import from_onnx, list_ops  # noqa: E402

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def _model_path(name: str) -> Path:
    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"shared model {name} not found at {path}")
    return path


def _inputs(model: onnx.ModelProto, graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(graph.tensor(name).shape).astype(np.float32) for name in graph.inputs}


def assert_matches_onnxruntime(model: onnx.ModelProto | Path, rtol: float = 1e-4, atol: float = 1e-5) -> Graph:
    """Import `model`, run it with the reference interpreter and onnxruntime (CPU) on seeded inputs, compare."""
    reference = pytest.importorskip("edgepack.ir.reference")
    graph = from_onnx(model)
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == graph.inputs
    assert [o.name for o in session.get_outputs()] == graph.outputs
    for seed in range(2):
        feeds = _inputs(model, graph, seed)
        want = dict(zip(graph.outputs, session.run(None, feeds), strict=True))
        got = reference.run(graph, feeds)
        for name in graph.outputs:
            assert got[name].shape == want[name].shape, f"{name}: shape {got[name].shape} != {want[name].shape}"
            err = float(np.max(np.abs(got[name].astype(np.float64) - want[name])))
            assert np.allclose(got[name], want[name], rtol=rtol, atol=atol), f"{name}: max abs error {err:.3g}"
    return graph


def _ops(graph: Graph) -> list[str]:
    return [n.op.value for n in graph.nodes]


# -- numeric checks against onnxruntime ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(onnx_models.ALL_FLOAT))
def test_tiny_model_matches_onnxruntime(name: str) -> None:
    assert_matches_onnxruntime(onnx_models.ALL_FLOAT[name]())


def test_cnn_folds_batchnorm_and_fuses_relu() -> None:
    graph = from_onnx(onnx_models.cnn())
    assert _ops(graph) == ["TRANSPOSE", "CONV_2D", "MAX_POOL_2D", "TRANSPOSE", "RESHAPE", "FULLY_CONNECTED",
                           "SOFTMAX"]
    conv = graph.nodes[1]
    assert conv.attrs["activation"] == "RELU"
    assert graph.tensor(conv.inputs[1]).shape == (8, 3, 3, 3)  # OHWI
    assert graph.tensor("x").shape == (1, 3, 12, 10) and graph.tensor("probs").shape == (1, 10)
    assert graph.metadata == {"source_format": "onnx", "source_file": None, "opset": 17}


def test_depthwise_layout_and_relu6() -> None:
    graph = from_onnx(onnx_models.depthwise())
    dw = next(n for n in graph.nodes if n.op is Op.DEPTHWISE_CONV_2D)
    assert dw.attrs["depth_multiplier"] == 2 and dw.attrs["activation"] == "RELU6"
    assert graph.tensor(dw.inputs[1]).shape == (1, 3, 3, 8)
    assert dw.attrs["pads"] == [1, 1, 1, 1]  # SAME_UPPER, 9x7 input, stride 2: total pad 2 per axis


def test_mlp_folds_bias_and_fixes_batch() -> None:
    graph = from_onnx(onnx_models.mlp())
    assert _ops(graph) == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert graph.nodes[0].attrs["activation"] == "RELU"
    assert graph.tensor("x").shape == (1, 20) and graph.outputs == ["y"]


def test_nhwc_model_needs_no_transpose() -> None:
    graph = from_onnx(onnx_models.nhwc_io())
    assert "TRANSPOSE" not in _ops(graph)
    assert _ops(graph) == ["CONV_2D", "MUL", "ADD", "ADD"]
    assert graph.nodes[-1].attrs["activation"] == "RELU"
    assert graph.tensor(graph.nodes[1].inputs[1]).shape == (1, 1, 1, 4)  # BN scale permuted for NHWC


def test_shape_subgraph_is_folded() -> None:
    graph = from_onnx(onnx_models.shape_reshape())
    assert _ops(graph) == ["TRANSPOSE", "CONV_2D", "TRANSPOSE", "RESHAPE", "FULLY_CONNECTED"]
    rows = {(r["op"], r["reason"]): r["count"] for r in list_ops(_save(onnx_models.shape_reshape()))}
    assert rows[("Shape", "folded into a constant")] == 1


def _save(model: onnx.ModelProto, tmp: Path | None = None) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp() if tmp is None else tmp) / f"{model.graph.name}.onnx"
    onnx.save(model, path)
    return path


def test_file_import_metadata(tmp_path: Path) -> None:
    graph = from_onnx(_save(onnx_models.clip(), tmp_path))
    assert graph.name == "clip"
    assert graph.metadata == {"source_format": "onnx", "source_file": "clip.onnx", "opset": 17}
    assert [n.op.value for n in graph.nodes][-1] == "CLIP"
    assert any(n.attrs.get("activation") == "RELU_N1_TO_1" for n in graph.nodes)


def test_graph_roundtrips_through_dict() -> None:
    graph = from_onnx(onnx_models.cnn())
    desc, arrays = graph.to_dict()
    Graph.from_dict(desc, arrays)


@pytest.mark.parametrize("name, shape", [("kws_ref_model_float.onnx", (1, 49, 10, 1)), ("ad01_fp32.onnx", (1, 640))])
def test_mlperf_tiny_model_matches_onnxruntime(name: str, shape: tuple[int, ...]) -> None:
    path = _model_path(name)
    graph = assert_matches_onnxruntime(path, rtol=1e-3, atol=1e-3)
    assert graph.tensor(graph.inputs[0]).shape == shape
    assert "TRANSPOSE" not in _ops(graph)


def test_kws_structure() -> None:
    graph = from_onnx(_model_path("kws_ref_model_float.onnx"))
    assert _ops(graph) == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"] * 1 + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 3 + [
        "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert all(n.attrs["activation"] == "RELU" for n in graph.nodes[:9])
    assert graph.outputs == ["Identity"] and graph.tensor("Identity").shape == (1, 12)


# -- errors -------------------------------------------------------------------------------------------------------

def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="garbage.onnx"):
        from_onnx(path)


def test_truncated_file(tmp_path: Path) -> None:
    data = onnx_models.cnn().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.onnx"):
        from_onnx(path)
    with pytest.raises(ModelError, match="cut.onnx"):
        list_ops(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nope.onnx"):
        from_onnx(tmp_path / "nope.onnx")


def test_unsupported_ops_listed_at_once(tmp_path: Path) -> None:
    path = _save(onnx_models.unsupported(), tmp_path)
    with pytest.raises(UnsupportedOpsError) as info:
        from_onnx(path)
    problems = {op: (count, first, why) for op, count, first, why in info.value.problems}
    assert set(problems) == {"Conv", "Resize", "Erf"}
    assert problems["Resize"][:2] == (2, "up1")
    assert problems["Erf"][:2] == (1, "erf")
    assert problems["Conv"][1] == "gconv" and "group=2" in problems["Conv"][2]
    assert str(path) in info.value.message and info.value.hint


def test_list_ops_reports_without_raising(tmp_path: Path) -> None:
    rows = list_ops(_save(onnx_models.unsupported(), tmp_path))
    by_op = {(r["op"], r["supported"]): r for r in rows}
    assert by_op[("Resize", False)]["count"] == 2
    assert by_op[("Relu", True)]["count"] == 1
    assert "grouped convolution" in by_op[("Conv", False)]["reason"]


def test_unsupported_variants() -> None:
    w = onnx_models.Weights()
    nodes = [
        helper.make_node("Conv", ["x", w.rand("c_w", 2, 2, 1, 1)], ["c"]),
        helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("Softmax", ["p"], ["s"], axis=1),
        helper.make_node("Sub", ["s", "x"], ["y"]),
    ]
    with pytest.raises(UnsupportedOpsError) as info:
        from_onnx(onnx_models.make_model(nodes, {"x": [1, 2, 4, 4]}, ["y"], w))
    reasons = {op: why for op, _, _, why in info.value.problems}
    assert "count_include_pad" in reasons["AveragePool"]
    assert "last axis" in reasons["Softmax"]
    assert "Sub" in reasons


def test_custom_domain_and_opset() -> None:
    node = helper.make_node("Foo", ["x"], ["y"], domain="com.example")
    model = onnx_models.make_model([node], {"x": [1, 4]}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpsError, match="com.example::Foo"):
        from_onnx(model)
    old = onnx_models.make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 4]}, ["y"], opset=11)
    with pytest.raises(ModelError, match="opset 11"):
        from_onnx(old)


def test_dynamic_dimension_names_tensor() -> None:
    model = onnx_models.make_model([helper.make_node("Relu", ["x"], ["y"])], {"features": ["n", "width"]}, ["y"])
    model.graph.input[0].name = "x"
    with pytest.raises(ModelError, match="'x'"):
        from_onnx(model)


def test_external_data_refused(tmp_path: Path) -> None:
    model = onnx_models.mlp()
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.bin", size_threshold=0)
    with pytest.raises(ModelError, match="external"):
        from_onnx(tmp_path / "ext.onnx")


def test_missing_onnx_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(EdgepackError, match="needs the onnx package") as info:
        from_onnx("model.onnx")
    assert "edgepack[onnx]" in (info.value.hint or "")


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(onnx_models.mlp(), tmp_path)
    monkeypatch.setattr(onnx_import, "MAX_FILE_BYTES", 100)
    with pytest.raises(ModelError, match="limit"):
        from_onnx(path)


def test_callers_model_is_not_modified() -> None:
    model = onnx_models.mlp()
    before = model.SerializeToString()
    from_onnx(model)
    assert model.SerializeToString() == before


def test_constant_output() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"]),
             helper.make_node("Constant", [], ["k"], value=helper.make_tensor("v", 1, [2], [1.0, 2.0]))]
    graph = assert_matches_onnxruntime(onnx_models.make_model(nodes, {"x": [1, 3]}, ["y", "k"]))
    assert graph.tensor("k").is_const
