"""The Edge TPU analysis against Coral's documented rules (https://coral.ai/docs/edgetpu/models-intro/).

Each test's docstring quotes the rule it checks. Models are built in code with ModelBuilder (conftest.Chain)
or are the shared MLPerf Tiny models.
"""

from __future__ import annotations

import numpy as np
import pytest
from edgetpu_helpers import AD_FP32, AD_INT8, KWS_INT8, need

from edgepack.targets.edgetpu.check import analyze_file, analyze_tflite


def test_shared_int8_models_map_fully() -> None:
    """Rule "supported operations": KWS (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED,
    SOFTMAX 1-D) and AD (FULLY_CONNECTED with 1-D outputs) use only listed ops within their limitations, so all
    ops and all MACs map; their dynamic batch (signature -1) is one graph-level "static sizes" finding."""
    kws = analyze_file(need(KWS_INT8))
    assert (kws.edgetpu_ops, len(kws.ops), kws.first_cpu_op) == (13, 13, None)
    assert kws.total_macs == kws.edgetpu_macs == 2_656_768 and kws.mac_fraction == 1.0
    assert kws.edgetpu_param_bytes == 24_376 and kws.to_dict()["parameters_fit_cache"]
    assert [f.rule for f in kws.findings] == ["static-size"]
    ad = analyze_file(need(AD_INT8))
    assert (ad.edgetpu_ops, len(ad.ops), ad.total_macs, ad.edgetpu_param_bytes) == (10, 10, 264_192, 270_880)


def test_float_model_maps_nothing_and_int8_projection_maps_all() -> None:
    """Rule "tensor parameters are quantized (8-bit fixed-point numbers)": a float32 model maps no op, and the
    compiler stops at the first (rule "partition"); analysed as if quantized, AD maps fully with int8 weights."""
    a = analyze_file(need(AD_FP32))
    assert a.first_cpu_op == 0 and a.edgetpu_ops == 0 and a.mac_fraction == 0.0
    assert "is float32" in a.ops[0].reasons[0] and "rule: tensor parameters are quantized" in a.ops[0].reasons[0]
    assert any("--calib" in s for s in a.suggestions)
    projected = analyze_file(AD_FP32, assume_int8=True)
    assert projected.mac_fraction == 1.0 and projected.edgetpu_param_bytes == 270_880  # int8 weights, int32 biases


def test_tanh_in_the_middle_maps(chain) -> None:
    """Coral's table lists Tanh (and Logistic) with no limitation: an int8 TANH between two convs maps, and so
    does everything after it."""
    a = analyze_tflite(chain().conv().unary("TANH").conv().bytes())
    assert [v.placement for v in a.ops] == ["edgetpu"] * 3 and a.suggestions == []


def test_unsupported_op_in_the_middle_sends_the_rest_to_the_cpu(chain) -> None:
    """Rule "partition": "at the first unsupported operation ... that operation and everything after it execute on
    the CPU, even if supported operations occur later". HARD_SWISH is not in the table."""
    a = analyze_tflite(chain().conv().unary("HARD_SWISH").conv().conv().bytes())
    assert [v.placement for v in a.ops] == ["edgetpu", "cpu", "cpu", "cpu"]
    assert [v.supported for v in a.ops] == [True, False, True, True]
    assert a.first_cpu_op == 1 and "not in the Edge TPU's supported operations" in a.ops[1].reasons[0]
    assert "after the first unsupported op #1 (HARD_SWISH)" in a.ops[2].reasons[0]
    assert a.mac_fraction == pytest.approx(1 / 3)
    assert any(s.startswith("replace HARD_SWISH with RELU6") for s in a.suggestions)
    assert any("move it to the end of the graph" in s for s in a.suggestions)


def test_unsupported_op_at_the_end_keeps_every_mac_on_the_tpu(chain) -> None:
    """Rule "partition", the other way round: an unsupported op placed last leaves all earlier ops mapped."""
    a = analyze_tflite(chain().conv().conv().conv().unary("HARD_SWISH").bytes())
    assert [v.placement for v in a.ops] == ["edgetpu"] * 3 + ["cpu"]
    assert a.mac_fraction == 1.0
    assert not any("move it to the end" in s for s in a.suggestions)


def test_float_op_in_the_middle(chain) -> None:
    """Rule "tensor parameters are quantized": DEQUANTIZE is not in the table and a float32 LOGISTIC breaks the
    8-bit rule; the first of them is the partition point."""
    a = analyze_tflite(chain().conv().unary("DEQUANTIZE", "float32").unary("LOGISTIC", "float32")
                       .unary("QUANTIZE").conv().bytes())
    assert [v.placement for v in a.ops] == ["edgetpu", "cpu", "cpu", "cpu", "cpu"]
    assert "is float32" in a.ops[2].reasons[0] and "rule: tensor parameters are quantized" in a.ops[2].reasons[0]
    assert a.ops[1].op == "DEQUANTIZE" and not a.ops[1].supported
    assert any("keep the graph integer" in s for s in a.suggestions)


def test_five_d_tensors(chain) -> None:
    """Rule "tensors are either 1-, 2-, or 3-dimensional. If a tensor has more than 3 dimensions, then only the 3
    innermost dimensions may have a size greater than 1": [1, 1, 8, 8, 4] is fine, [2, 1, 4, 8, 4] is not."""
    ok = analyze_tflite(chain().conv().reshape((1, 1, 8, 8, 4)).reshape((1, 8, 8, 4)).conv().bytes())
    assert ok.first_cpu_op is None
    bad = analyze_tflite(chain().conv().reshape((2, 1, 4, 8, 4)).reshape((1, 8, 8, 4)).conv().bytes())
    assert [v.placement for v in bad.ops] == ["edgetpu", "cpu", "cpu", "cpu"]
    assert "has shape [2, 1, 4, 8, 4]" in bad.ops[1].reasons[0] and "3 innermost" in bad.ops[1].reasons[0]
    assert any("only the 3 innermost dimensions exceed 1" in s for s in bad.suggestions)


def test_dynamic_shape(chain) -> None:
    """Rule "tensor sizes are constant at compile-time": a dynamic inner dimension (signature [1, -1, 8, 4]) does
    not map; a dynamic batch alone is a graph-level finding (edgepack exports batch 1)."""
    a = analyze_tflite(chain().conv().reshape((1, 8, 8, 4), signature=[1, -1, 8, 4]).conv().bytes())
    assert a.first_cpu_op == 1 and "dynamic size [1, -1, 8, 4]" in a.ops[1].reasons[0]
    assert any("static shapes" in s for s in a.suggestions)
    b = analyze_tflite(chain().conv().reshape((1, 8, 8, 4), signature=[-1, 8, 8, 4]).conv().bytes())
    assert b.first_cpu_op is None and [f.rule for f in b.findings] == ["static-size"]


@pytest.mark.parametrize("build, detail", [
    (lambda c: c().conv(dilation=(2, 1)), "dilation 2 (y) differs from 1 (x)"),
    (lambda c: c().conv().unary("MAX_POOL_2D", options="Pool2DOptions", Padding=0, StrideH=1, StrideW=1,
                                FilterHeight=1, FilterWidth=1, FusedActivationFunction=1), "fused activation RELU"),
    (lambda c: c().conv().reshape((1, 256)).fc(8, (1, 2, 4)), "output shape [1, 2, 4] is not one-dimensional"),
    (lambda c: c((2, 4, 4, 8)).mean([0]), "reduce the batch dimension"),
    (lambda c: c((1, 4, 4, 6)).mean([3]), "z-reduction over 6 channels, not a multiple of 4"),
    (lambda c: c((1, 2, 8)).unary("SOFTMAX", options="SoftmaxOptions", Beta=1.0), "input shape [1, 2, 8] is not 1-D"),
    (lambda c: c((1, 16_001)).unary("SOFTMAX", options="SoftmaxOptions", Beta=1.0), "16,001 elements (max 16,000)"),
])
def test_op_limitations(chain, build, detail) -> None:
    """Coral's per-op "known limitations" column: Conv2d "same dilation in x and y", MaxPool2d "no fused activation
    function", FullyConnected "output tensor is one-dimensional", Mean "no reduction in batch dimension; a
    z-reduction's z-dimension must be multiple of 4", Softmax "only 1-D input tensor with a max of 16,000"."""
    a = analyze_tflite(build(chain).bytes())
    last = a.ops[-1]
    assert last.placement == "cpu" and not last.supported
    assert detail in last.reasons[0] and "limitation" in last.reasons[0], last.reasons


def test_mean_over_xy_maps(chain) -> None:
    """Mean: reduction over x and y (not the batch) is within the documented limitation."""
    assert analyze_tflite(chain((1, 4, 4, 6)).mean([1, 2]).bytes()).first_cpu_op is None


def test_parameter_cache(chain) -> None:
    """Rule "parameter data caching": roughly 8 MB of SRAM; a 9 MB FULLY_CONNECTED streams the rest (non-fatal)."""
    a = analyze_tflite(chain((1, 3000)).fc(3000).bytes())
    assert a.edgetpu_param_bytes == 3000 * 3000 + 3000 * 4 and a.first_cpu_op is None
    assert not a.to_dict()["parameters_fit_cache"]
    (f,) = [f for f in a.findings if f.rule == "parameter-cache"]
    assert not f.fatal and "streamed from host memory" in f.message


def test_int16_activations_do_not_map(chain) -> None:
    """Rule "tensor parameters are quantized (8-bit fixed-point numbers)": an int16 (16x8) activation does not."""
    a = analyze_tflite(chain().conv().unary("RELU", "int16").bytes())
    assert a.first_cpu_op == 1 and "is int16" in a.ops[1].reasons[0]


def test_analysis_json_is_plain() -> None:
    """The bundle's report stores the analysis as JSON: rules with their links, per-op verdicts, summary figures."""
    import json

    d = analyze_file(need(KWS_INT8)).to_dict()
    json.dumps(d)
    assert d["rules"]["partition"]["doc"] == "https://coral.ai/docs/edgetpu/models-intro/#compiling"
    assert {o["placement"] for o in d["ops"]} == {"edgetpu"} and np.isclose(d["mac_fraction"], 1.0)
