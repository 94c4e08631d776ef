"""The closed op set of edgepack's graph IR.

Layout is NHWC everywhere; importers convert. Semantics follow TensorFlow Lite (Micro) so that
quantized graphs execute with TFLM's integer arithmetic (see `edgepack.ir.reference`).

Inputs and attributes per op (attributes are JSON values; `activation` is an `Activation` name):

- CONV_2D            in [x NHWC, w OHWI, bias?]; strides [sh, sw], dilations [dh, dw],
                     pads [top, left, bottom, right], activation
- DEPTHWISE_CONV_2D  in [x NHWC, w 1HW(C*M), bias?]; strides, dilations, pads, depth_multiplier, activation
- FULLY_CONNECTED    in [x (..., I), w [O, I], bias?]; activation. x is flattened to [-1, I]; the
                     output tensor's shape gives the result's shape (keep_num_dims or not)
- ADD, MUL           in [a, b] with numpy broadcasting; activation
- AVERAGE_POOL_2D    in [x]; kernel [kh, kw], strides, pads, activation; padding is excluded from the count
- MAX_POOL_2D        in [x]; kernel, strides, pads, activation
- MEAN               in [x]; axes [..], keepdims (bool)
- RESHAPE            in [x]; the output tensor's shape is the new shape
- CONCATENATION      in [x0, x1, ...]; axis, activation
- PAD                in [x]; pads [[before, after], ...] per dim; the pad value is real 0 (the zero point)
- TRANSPOSE          in [x]; perm [..] (numpy.transpose order); importers use it at NCHW model edges
- SOFTMAX            in [x]; beta; over the last axis
- RELU, RELU6        in [x]
- CLIP               in [x]; min, max (real values)
- LOGISTIC, TANH     in [x]
- QUANTIZE           in [x float or int]; output quantization from the output tensor
- DEQUANTIZE         in [x int]; float32 output

Quantized CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED nodes made by the quantizer also carry
`requant: {"multiplier": [..], "shift": [..]}` (per output channel), the values the golden
interpreter's Prepare derives, stored once so targets read them instead of recomputing.
"""

from __future__ import annotations

from enum import StrEnum


class Op(StrEnum):
    """Every op the IR, the golden interpreter and the targets know."""

    # linear layers with weights
    CONV_2D = "CONV_2D"
    DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"
    FULLY_CONNECTED = "FULLY_CONNECTED"
    # elementwise binary
    ADD = "ADD"
    MUL = "MUL"
    # pooling and reductions
    AVERAGE_POOL_2D = "AVERAGE_POOL_2D"
    MAX_POOL_2D = "MAX_POOL_2D"
    MEAN = "MEAN"
    # data movement
    RESHAPE = "RESHAPE"
    CONCATENATION = "CONCATENATION"
    PAD = "PAD"
    TRANSPOSE = "TRANSPOSE"
    # activations
    SOFTMAX = "SOFTMAX"
    RELU = "RELU"
    RELU6 = "RELU6"
    CLIP = "CLIP"
    LOGISTIC = "LOGISTIC"
    TANH = "TANH"
    # type conversion
    QUANTIZE = "QUANTIZE"
    DEQUANTIZE = "DEQUANTIZE"


class Activation(StrEnum):
    """Activations fused into the op before it (TFLite's fused_activation_function)."""

    NONE = "NONE"
    RELU = "RELU"
    RELU6 = "RELU6"
    RELU_N1_TO_1 = "RELU_N1_TO_1"


# Ops whose second input is a weight tensor (and third an optional bias).
WEIGHTED_OPS = frozenset({Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED})
# Ops that carry a fused `activation` attribute.
FUSED_ACTIVATION_OPS = frozenset(
    {Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED, Op.ADD, Op.MUL,
     Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D, Op.CONCATENATION}
)
# Ops that only move or reinterpret data: quantization passes through unchanged.
DATA_MOVEMENT_OPS = frozenset({Op.RESHAPE, Op.CONCATENATION, Op.PAD, Op.TRANSPOSE, Op.MAX_POOL_2D})
