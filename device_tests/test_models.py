"""Real models on the boards: packaged by edgepack, run over the serial link, compared with the golden model.

By default on the emulated Cortex-M4 (qemu-mps2-an386) and Cortex-M55 (qemu-mps3-an547) boards, each
with a bundle packaged for its own core:

- KWS (MLPerf Tiny kws_ref_model.tflite): all 1000 test inputs bit-identical to the golden interpreter,
  top-1 90.1 % (the EEMBC figure, FIELD-NOTES);
- AD (ad01_int8.tflite): 200 seeded random inputs bit-identical;
- mixed bit-widths: int4-weight and int16-activation layers bit-identical;
- a corrupted output is detected by `verify` (fault-injecting transport), never returned.

The models come from /work/shared/models (skipped with the reason when absent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from targets.mcu.test_kernels_support import act, bias, weights

import edgepack.runtime as rt
from edgepack.ir.graph import Graph, Node
from edgepack.ir.ops import Op
from edgepack.ir.tflite_export import to_tflite
from edgepack.packager.pipeline import package
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.serial_protocol import Cmd, DeviceError, Fault, FaultInjectingTransport
from edgepack.targets.mcu.flash import run_on_board, verify_on_board

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODELS, DATA = SHARED / "models", SHARED / "data"
BOARDS = {"qemu-mps2-an386": "cortex-m4", "qemu-mps3-an547": "cortex-m55"}
BOARD_PARAMS = [pytest.param(b, marks=pytest.mark.board(b), id=b) for b in BOARDS]
KWS_TOP1 = 0.901


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} not found (MLPerf Tiny models and the KWS test set live in ../shared)")
    return path


def package_for(board: str, model: Path, out: Path, **options) -> Path:  # noqa: ANN003
    """Package `model` for the board's core and board; the packager already runs the golden pairs on QEMU."""
    result = package(model, out, target=BOARDS[board], board=board, **options)
    device = result.manifest["backends"]["device"]
    assert device["tolerance"] == {"max_abs": 0, "unit": "lsb"} and device["measured"]["board"] == board
    return out


def reference_outputs(bundle: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The golden interpreter's outputs (the bundle's reference backend)."""
    session = rt.load(bundle, backend="reference")
    try:
        return session.run(inputs)
    finally:
        session.bundle.close()


def manifest_of(bundle: Path) -> dict:
    with Bundle.open(bundle) as b:
        return b.manifest


def assert_identical(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name, w in want.items():
        bad = np.flatnonzero((got[name] != w).reshape(len(w), -1).any(axis=1))
        assert bad.size == 0, f"output {name!r}: {bad.size} of {len(w)} samples differ, first sample {bad[0]}"


@pytest.fixture(scope="module")
def kws_data() -> dict[str, np.ndarray]:
    data = np.load(need(DATA / "kws01_test.npz"))
    return {"x": data["x_int8"].reshape(-1, 1, 49, 10, 1), "y": data["y"]}


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARD_PARAMS)
def test_kws_1000_inputs_bit_identical_top1_90_1(board: str, kws_data: dict[str, np.ndarray], tmp_path: Path) -> None:
    bundle = package_for(board, need(MODELS / "kws_ref_model.tflite"), tmp_path / "kws.edgepack", golden_count=16)
    inputs = {"input_1": kws_data["x"]}
    want = reference_outputs(bundle, inputs)
    run = run_on_board(bundle, inputs, board)
    assert_identical(run.outputs, want)
    top1 = float(np.mean(run.outputs[next(iter(want))].reshape(1000, -1).argmax(1) == kws_data["y"]))
    assert round(top1, 3) == KWS_TOP1, top1
    print(f"{board}: KWS 1000/1000 bit-identical, top-1 {top1:.1%}, "
          f"{np.median(run.ticks) * 1e9 / run.clock_hz:,.0f} instructions per inference (median, qemu -icount shift=0)")


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARD_PARAMS)
def test_ad_200_random_inputs_bit_identical(board: str, tmp_path: Path) -> None:
    bundle = package_for(board, need(MODELS / "ad01_int8.tflite"), tmp_path / "ad.edgepack", golden_count=8)
    spec = manifest_of(bundle)["inputs"][0]
    rng = np.random.default_rng(2024)
    inputs = {spec["name"]: rng.integers(-128, 128, size=(200, *spec["shape"])).astype(spec["dtype"])}
    want = reference_outputs(bundle, inputs)
    run = run_on_board(bundle, inputs, board)
    assert_identical(run.outputs, want)
    print(f"{board}: AD 200/200 bit-identical, {np.median(run.ticks) * 1e9 / run.clock_hz:,.0f} instructions per "
          "inference (median, qemu -icount shift=0)")


def two_width_graph() -> Graph:
    """Two paths: an int8 FC with int4 weights, and an int16-activation FC (16x8) with int8 weights."""
    rng = np.random.default_rng(11)
    t = [act("a", (1, 24), "int8", rng), weights("w4", (16, 24), 0, rng, bits=4), bias("b4", 16, rng),
         act("y4", (1, 16), "int8", rng), act("x16", (1, 20), "int16", rng), weights("w8", (12, 20), 0, rng),
         bias("b16", 12, rng, wide=True), act("y16", (1, 12), "int16", rng)]
    # TFLM requires per-tensor int4 FC weights (quantize/scheme.py): keep one scale
    t[1].quant.scale = t[1].quant.scale[:1].copy()
    t[1].quant.zero_point = t[1].quant.zero_point[:1].copy()
    t[1].quant.axis = None
    nodes = [Node(Op.FULLY_CONNECTED, "fc_w4a8", ["a", "w4", "b4"], ["y4"], {"activation": "RELU"}),
             Node(Op.FULLY_CONNECTED, "fc_w8a16", ["x16", "w8", "b16"], ["y16"], {"activation": "NONE"})]
    return Graph("two_widths", {x.name: x for x in t}, nodes, ["a", "x16"], ["y4", "y16"])


@pytest.mark.parametrize("board", BOARD_PARAMS)
def test_int4_weights_and_int16_activations_bit_exact(board: str, tmp_path: Path) -> None:
    model = tmp_path / "two_widths.tflite"
    model.write_bytes(to_tflite(two_width_graph()))
    bundle = package_for(board, model, tmp_path / "mixed.edgepack", golden_count=50)
    report = verify_on_board(bundle, board)
    assert report.passed and report.samples == 50, report.to_dict()
    layers = sorted((row["weight_bits"], row["activation_bits"]) for row in manifest_of(bundle)["layers"])
    assert layers == [(4, 8), (8, 16)]


def quantized_kws(path: Path, bits_by_index: dict[int, tuple[int, int]]) -> Path:
    """KWS float ONNX quantized by edgepack (100 calibration inputs), layer i at bits_by_index[i], else w8a8."""
    from edgepack.ir.loader import load_model
    from edgepack.quantize.quantizer import quantize_graph
    from edgepack.quantize.scheme import QuantConfig

    graph = load_model(need(MODELS / "kws_ref_model_float.onnx"))
    calib = np.load(need(DATA / "kws01_test.npz"))["x_float"][:100].reshape(-1, 1, 49, 10, 1)
    bits = {graph.nodes[i].name: b for i, b in bits_by_index.items()}
    path.write_bytes(to_tflite(quantize_graph(graph, {graph.inputs[0]: calib}, QuantConfig(layer_bits=bits))))
    return path


@pytest.mark.board("qemu-mps2-an386")
def test_kws_with_int4_layers_bit_exact(tmp_path: Path) -> None:
    model = quantized_kws(tmp_path / "kws_w4.tflite", {i: (4, 8) for i in (1, 2, 3, 4)})
    bundle = package_for("qemu-mps2-an386", model, tmp_path / "kws_w4.edgepack", golden_count=30)
    report = verify_on_board(bundle)
    assert report.passed and report.samples == 30
    widths = {row["weight_bits"] for row in manifest_of(bundle)["layers"] if row["weight_bits"]}
    assert widths == {4, 8}


@pytest.mark.parametrize("board", BOARD_PARAMS)
def test_kws_with_int4_and_int16_layers_bit_exact(board: str, tmp_path: Path) -> None:
    """The quantizer puts QUANTIZE (int8 <-> int16 requantize) nodes between the a8 and a16 layers."""
    model = quantized_kws(tmp_path / "kws_mixed.tflite", {1: (4, 8), 2: (4, 8), 5: (8, 16), 6: (8, 16), 7: (8, 16)})
    bundle = package_for(board, model, tmp_path / "kws_mixed.edgepack", golden_count=30)
    report = verify_on_board(bundle, board)
    assert report.passed and report.samples == 30
    layers = manifest_of(bundle)["layers"]
    assert sum(row["op"] == "QUANTIZE" for row in layers) == 2, layers
    assert {(row["weight_bits"], row["activation_bits"]) for row in layers if row["weight_bits"]} == \
        {(4, 8), (8, 8), (8, 16)}


@pytest.mark.board("qemu-mps3-an547")
def test_verify_detects_a_corrupted_output_and_recovers_a_corrupted_frame(tmp_path: Path) -> None:
    bundle = package_for("qemu-mps3-an547", need(MODELS / "ad01_int8.tflite"), tmp_path / "ad.edgepack",
                         golden_count=5)
    # payload bytes changed and the frame CRC recomputed: only the output CRC-32 can tell, on every read
    forge = Fault("forge", "rx", cmd=Cmd.READ_OUTPUT, nth=None, offset=11)
    with pytest.raises(DeviceError, match="does not match the device's CRC-32"):
        verify_on_board(bundle, transport_wrapper=lambda t: FaultInjectingTransport(t, [forge]))
    # one flipped bit on the wire: the frame CRC catches it, the client retries, verify passes
    flip = Fault("flip", "rx", cmd=Cmd.READ_OUTPUT, nth=2, offset=40)
    wrapped: list[FaultInjectingTransport] = []

    def wrap(t):  # noqa: ANN001, ANN202
        wrapped.append(FaultInjectingTransport(t, [flip]))
        return wrapped[0]

    report = verify_on_board(bundle, transport_wrapper=wrap)
    assert report.passed and wrapped[0].injected == 1
