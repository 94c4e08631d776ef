"""`--kernels tvm`: float32 layers as Apache TVM-generated C kernels in the AOT model.c and arena.

The QEMU tests package float models for cortex-m4, run them on qemu-mps2-an386 and compare with the
golden float interpreter at 1e-4 (absolute).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgepack.errors import EdgepackError, UnsupportedOpsError
from edgepack.ir.graph import Graph, Node, Tensor
from edgepack.ir.ops import Op
from edgepack.ir.tflite_export import to_tflite
from edgepack.packager.pipeline import package
from edgepack.targets import get_target
from edgepack.targets.mcu import flash as board_ops
from edgepack.targets.mcu.build import toolchain_available
from edgepack.targets.mcu.check import check_graph
from edgepack.targets.mcu.lowering import Table
from edgepack.targets.mcu.memory_plan import check_no_overlap, plan
from edgepack.targets.mcu.qemu import qemu_available
from edgepack.targets.mcu.tvm_kernels import TvmCall, lower_tvm, tvm_missing, write_tvm_sources

MODELS = Path(__file__).resolve().parents[3].parent / "shared" / "models"
KWS_FLOAT = MODELS / "kws_ref_model_float.tflite"
KWS_INT8 = MODELS / "kws_ref_model.tflite"
FLOAT_ATOL = 1e-4
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]

needs_tvm = pytest.mark.skipif(tvm_missing() is not None, reason=f"TVM compiler unavailable: {tvm_missing()}")
needs_arm = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc not installed")
needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm not installed")
needs_kws = pytest.mark.skipif(not KWS_FLOAT.is_file(), reason=f"{KWS_FLOAT} not present")


def _t(name: str, shape: tuple[int, ...], data: np.ndarray | None = None) -> Tensor:
    return Tensor(name, shape, "float32", data=None if data is None else np.asarray(data, np.float32))


def small_float_cnn(seed: int = 0) -> Graph:
    """conv (stride 2, RELU6) -> dwconv (RELU) -> 1x1 conv -> residual add -> maxpool -> mean -> reshape -> fc
    -> relu -> softmax, all float32."""
    rng = np.random.default_rng(seed)

    def r(*s: int) -> np.ndarray:
        return rng.normal(0, 0.4, s).astype(np.float32)

    ts = [_t("x", (1, 12, 10, 2)), _t("w0", (8, 3, 3, 2), r(8, 3, 3, 2)), _t("b0", (8,), r(8)),
          _t("c0", (1, 6, 5, 8)), _t("w1", (1, 3, 3, 8), r(1, 3, 3, 8)), _t("b1", (8,), r(8)),
          _t("c1", (1, 6, 5, 8)), _t("w2", (8, 1, 1, 8), r(8, 1, 1, 8)), _t("b2", (8,), r(8)),
          _t("c2", (1, 6, 5, 8)), _t("s", (1, 6, 5, 8)), _t("m", (1, 3, 3, 8)), _t("a", (1, 1, 1, 8)),
          _t("f", (1, 8)), _t("w3", (10, 8), r(10, 8)), _t("b3", (10,), r(10)), _t("y", (1, 10)),
          _t("yr", (1, 10)), _t("out", (1, 10))]
    same = {"strides": [1, 1], "dilations": [1, 1]}
    nodes = [
        Node(Op.CONV_2D, "conv", ["x", "w0", "b0"], ["c0"],
             {"strides": [2, 2], "dilations": [1, 1], "pads": [0, 0, 1, 1], "activation": "RELU6"}),
        Node(Op.DEPTHWISE_CONV_2D, "dw", ["c0", "w1", "b1"], ["c1"],
             {**same, "pads": [1, 1, 1, 1], "activation": "RELU", "depth_multiplier": 1}),
        Node(Op.CONV_2D, "pw", ["c1", "w2", "b2"], ["c2"], {**same, "pads": [0, 0, 0, 0], "activation": "NONE"}),
        Node(Op.ADD, "residual", ["c2", "c0"], ["s"], {"activation": "NONE"}),
        Node(Op.MAX_POOL_2D, "maxpool", ["s"], ["m"],
             {"kernel": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 1], "activation": "NONE"}),
        Node(Op.MEAN, "mean", ["m"], ["a"], {"axes": [1, 2], "keepdims": True}),
        Node(Op.RESHAPE, "flat", ["a"], ["f"]),
        Node(Op.FULLY_CONNECTED, "fc", ["f", "w3", "b3"], ["y"], {"activation": "NONE"}),
        Node(Op.RELU, "relu", ["y"], ["yr"], {}),
        Node(Op.SOFTMAX, "softmax", ["yr"], ["out"], {"beta": 1.0}),
    ]
    return Graph("small_float_cnn", {t.name: t for t in ts}, nodes, ["x"], ["out"],
                 {"source_file": "small_float_cnn.tflite"})


def test_lowering_makes_one_tvm_call_per_layer_with_float_tables_and_a_planned_arena() -> None:
    g = small_float_cnn()
    calls = lower_tvm(g)
    assert [c.op for c in calls] == [n.op for n in g.nodes]
    assert calls[6].is_alias and not isinstance(calls[6], TvmCall)
    tvm_calls = [c for c in calls if isinstance(c, TvmCall)]
    assert [c.func for c in tvm_calls] == [f"ep_tvm_k{i:02d}" for i in range(9)]
    dw = tvm_calls[1]
    assert dw.params == [(1, 6, 5, 8), (3, 3, 8, 1), (8,), (1, 6, 5, 8)] and dw.spec["groups"] == 8
    assert all(a.ctype == "float" for c in tvm_calls for a in c.args if isinstance(a, Table))
    fc = tvm_calls[6]
    assert fc.params == [(1, 8), (8, 10), (10,), (1, 10)]  # weights transposed to [depth, outs]
    memory = plan(g, calls)
    check_no_overlap(memory)
    assert memory.location("x") == ("input", 0) and memory.location("out") == ("output", 0)


def test_identical_layers_share_one_kernel() -> None:
    g = small_float_cnn()
    g2 = Graph(g.name, dict(g.tensors), [*g.nodes[:2], Node(Op.DEPTHWISE_CONV_2D, "dw2", ["c1", "w1", "b1"], ["c2"],
                                                             g.nodes[1].attrs)], ["x"], ["c2"])
    funcs = [c.func for c in lower_tvm(g2) if isinstance(c, TvmCall)]
    assert funcs == ["ep_tvm_k00", "ep_tvm_k01", "ep_tvm_k01"]


def test_float_ops_without_a_tvm_lowering_are_refused_with_reasons() -> None:
    x, y = Tensor("x", (1, 4), "float32"), Tensor("y", (1, 4), "float32")
    g = Graph("t", {"x": x, "y": y}, [Node(Op.DEQUANTIZE, "dq", ["x"], ["y"])], ["x"], ["y"])
    with pytest.raises(UnsupportedOpsError):
        lower_tvm(g)


def test_float_graphs_check_with_tvm_by_default_and_native_names_the_way_out() -> None:
    g = small_float_cnn()
    assert get_target("cortex-m4").check(g).ok == (tvm_missing() is None)
    report = check_graph(g, "cortex-m4", None, "native")
    assert not report.ok and "--kernels tvm" in report.issues[0].reason


@needs_tvm
@needs_arm
def test_generated_sources_compile_warning_free_for_the_m4(tmp_path: Path) -> None:
    g = small_float_cnn()
    c_files, kernels = write_tvm_sources(g, "0" * 64, "cortex-m4", tmp_path)
    assert {p.name for p in c_files} == {"model.c", "tvm_kernels.c", "ep_tvm_runtime.c"}
    text = (tmp_path / "tvm_kernels.c").read_text()
    assert '#include "ep_tvm_ffi.h"' in text and '#include "tvm/' not in text
    assert "TVMBackendAllocWorkspace" not in text and "int64_t i" not in text  # no workspace, int32 loops
    model_c = (tmp_path / "model.c").read_text()
    assert "static DLTensor l00_tensors[4]" in model_c and "EP_TVM_CALL(__tvm_ffi_ep_tvm_k08, l09_args)" in model_c
    for c in c_files:
        subprocess.run(["arm-none-eabi-gcc", *M4_FLAGS, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
                        f"-I{tmp_path}", "-c", str(c), "-o", str(tmp_path / (c.stem + ".o"))], check=True)


def _package_and_verify(model: Path, out: Path, count: int) -> dict:
    manifest = package(model, out, target="cortex-m4", golden_count=count).manifest
    assert manifest["board"] == "qemu-mps2-an386" and manifest["memory"]["kernels"] == "tvm"
    device = manifest["backends"]["device"]
    assert device["tolerance"]["unit"] == "abs"
    report = board_ops.verify_on_board(out)
    assert report.passed and report.samples == count
    worst = max(o.max_abs_diff for o in report.outputs)
    assert worst <= FLOAT_ATOL, f"device vs golden float interpreter: max |diff| {worst}"
    return {"worst": worst, "instructions": report.instructions_per_inference}


@pytest.mark.slow
@needs_tvm
@needs_arm
@needs_qemu
def test_small_float_cnn_runs_on_the_emulated_m4_within_1e4(tmp_path: Path) -> None:
    model = tmp_path / "small_float_cnn.tflite"
    model.write_bytes(to_tflite(small_float_cnn()))
    got = _package_and_verify(model, tmp_path / "small.edgepack", 16)
    assert got["instructions"] > 0


@pytest.mark.slow
@needs_tvm
@needs_arm
@needs_qemu
@needs_kws
def test_kws_float_runs_on_the_emulated_m4_within_1e4(tmp_path: Path) -> None:
    got = _package_and_verify(KWS_FLOAT, tmp_path / "kws_float.edgepack", 16)
    assert got["instructions"] > 0


def small_int8_cnn(layer_bits: dict[str, tuple[int, int]] | None = None) -> Graph:
    """small_float_cnn quantized by edgepack on 64 seeded random inputs: int8, or per-layer `layer_bits`."""
    from edgepack.quantize.quantizer import quantize_graph
    from edgepack.quantize.scheme import QuantConfig

    x = np.random.default_rng(1).normal(0, 1, (64, 12, 10, 2)).astype(np.float32)
    return quantize_graph(small_float_cnn(), {"x": x}, QuantConfig(layer_bits=layer_bits or {}))


def test_int8_linear_layers_lower_to_tvm_and_the_rest_to_native_kernels() -> None:
    calls = lower_tvm(small_int8_cnn())
    kinds = {c.node: ("tvm" if isinstance(c, TvmCall) else c.kernel) for c in calls if not c.is_alias}
    assert {n for n, k in kinds.items() if k == "tvm"} == {"conv", "dw", "pw", "fc"}
    assert kinds["residual"] == "ep_add_s8" and kinds["softmax"] == "ep_softmax_s8"
    conv = next(c for c in calls if c.node == "conv")
    assert isinstance(conv, TvmCall) and conv.dtypes == ["int8", "int8", "int32", "int32", "int32", "int8"]
    assert [a.ctype for a in conv.args if isinstance(a, Table)] == ["int8_t", "int32_t", "int32_t", "int32_t"]


@pytest.mark.slow
@needs_tvm
@needs_arm
@needs_qemu
@pytest.mark.parametrize("layer_bits", [None, {"conv": (4, 8), "dw": (4, 8)}], ids=["int8", "int4-layers-native"])
def test_small_int8_cnn_through_tvm_is_bit_exact_on_the_emulated_m4(tmp_path: Path, layer_bits) -> None:
    graph = small_int8_cnn(layer_bits)
    if layer_bits:  # the int4 layers keep their native kernels, next to TVM ones
        kinds = {c.node: isinstance(c, TvmCall) for c in lower_tvm(graph)}
        assert not kinds["conv"] and not kinds["dw"] and kinds["pw"] and kinds["fc"]
    model = tmp_path / "small_int8_cnn.tflite"
    model.write_bytes(to_tflite(graph))
    out = tmp_path / "small_int8.edgepack"
    manifest = package(model, out, target="cortex-m4", golden_count=16, target_options={"kernels": "tvm"}).manifest
    assert manifest["memory"]["kernels"] == "tvm"
    assert manifest["backends"]["device"]["tolerance"] == {"max_abs": 0, "unit": "lsb"}
    report = board_ops.verify_on_board(out)
    assert report.passed and report.samples == 16
    assert max(o.max_abs_diff for o in report.outputs) == 0


@pytest.mark.slow
@needs_tvm
@needs_arm
@needs_qemu
@pytest.mark.skipif(not KWS_INT8.is_file(), reason=f"{KWS_INT8} not present")
def test_kws_int8_through_tvm_is_bit_exact_on_the_emulated_m4(tmp_path: Path) -> None:
    out = tmp_path / "kws_tvm.edgepack"
    package(KWS_INT8, out, target="cortex-m4", golden_count=50, target_options={"kernels": "tvm"})
    report = board_ops.verify_on_board(out)
    assert report.passed and report.samples == 50 and max(o.max_abs_diff for o in report.outputs) == 0
    print(f"\nKWS int8 with TVM kernels on qemu-mps2-an386: 50/50 bit-exact, "
          f"{report.instructions_per_inference:,} instructions per inference")


def test_native_kernels_refuse_float_graphs_in_compile() -> None:
    from edgepack.targets.mcu.compile import compile_model

    with pytest.raises(EdgepackError, match="--kernels tvm"):
        compile_model(small_float_cnn(), ("tflite", b"x"), {"kernels": "native"}, "cortex-m4")


def test_float_literals_read_back_exactly() -> None:
    from edgepack.targets.mcu.tvm_kernels import _float_literal

    assert [_float_literal(v) for v in (0.0, 1.0, -2.0, 1e20)] == ["0.0f", "1.0f", "-2.0f", "1e+20f"]
    v = np.float32(0.1)
    assert np.float32(float(_float_literal(v)[:-1])) == v
