"""A small TFLite flatbuffer writer, built on the `tflite` package's generated builder functions.

Used by the TFLite exporter (`tflite_export.py`) and by tests that build models in code.

A model is a list of tensors and a list of ops (one subgraph, schema version 3). Two ways to use it:

- `write_tflite(path, tensors, ops, inputs, outputs)` with `tensor(...)` records and op tuples
  `(op name, input indices, output indices, options table name or None, {field: value})`;
  tensor index -1 marks an absent optional input.
- `ModelBuilder`, which hands out tensor indices as you add tensors:

      m = ModelBuilder()
      x = m.tensor("x", [1, 8, 8, 3], "int8", scale=0.05, zero_point=-3)
      w = m.tensor("w", [4, 3, 3, 3], "int4", data=weights, scale=w_scales, zero_point=0, axis=0)
      y = m.tensor("y", [1, 8, 8, 4], "int8", scale=0.1, zero_point=5)
      m.op("CONV_2D", [x, w, -1], [y], "Conv2DOptions", Padding=SAME, StrideH=1, StrideW=1)
      data = m.to_bytes(inputs=[x], outputs=[y])

Constant data is given as a numpy array (or raw bytes); "int4" arrays are packed two values per byte,
low nibble first, as TFLite stores them. Buffers are 16-byte aligned, as TFLM expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# TensorType codes of the schema, by the IR's dtype names (plus the storage-only float16 and int4).
TENSOR_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7,
                "int8": 9, "int4": 17}
_NUMPY_DTYPES = {"float32": "<f4", "float16": "<f2", "int32": "<i4", "uint8": "u1", "int64": "<i8", "bool": "u1",
                 "int16": "<i2", "int8": "i1"}
# Padding enum of Conv2DOptions, DepthwiseConv2DOptions and Pool2DOptions.
SAME, VALID = 0, 1
# ActivationFunctionType enum (fused_activation_function).
ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


@dataclass
class TensorDef:
    """One tensor of the subgraph; `data` set makes it a constant with its own buffer."""

    name: str
    shape: list[int]
    dtype: str  # a TENSOR_TYPES key
    data: np.ndarray | bytes | None = None
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    axis: int = 0  # quantized_dimension
    signature: list[int] | None = None  # shape_signature, for dynamic dimensions (-1)


def tensor(name: str, shape: list[int], dtype: str, data: np.ndarray | bytes | None = None,
           scale: Any = None, zero_point: Any = None, axis: int = 0, signature: list[int] | None = None) -> TensorDef:
    """A TensorDef; a scalar scale/zero_point means per-tensor quantization (zero_point defaults to 0)."""
    if scale is not None:
        scale = [float(s) for s in np.atleast_1d(scale)]
        zp = np.atleast_1d(0 if zero_point is None else zero_point)
        zero_point = [int(z) for z in (np.broadcast_to(zp, len(scale)) if zp.size == 1 else zp)]
    return TensorDef(name, [int(d) for d in shape], dtype, data, scale, zero_point, axis, signature)


def pack_int4(values: np.ndarray) -> bytes:
    """Two's complement nibbles, two per byte, low nibble first (an odd count leaves the last high nibble 0)."""
    nibbles = (np.asarray(values, dtype=np.int8).reshape(-1) & 0x0F).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()


def _raw_bytes(t: TensorDef) -> bytes:
    if isinstance(t.data, bytes | bytearray):
        return bytes(t.data)
    if t.dtype == "int4":
        return pack_int4(t.data)  # type: ignore[arg-type]
    return np.ascontiguousarray(t.data, dtype=_NUMPY_DTYPES[t.dtype]).tobytes()


def model_bytes(tensors: list[TensorDef], ops: list[tuple], inputs: list[int], outputs: list[int],
                description_text: str = "edgepack") -> bytes:
    """Serialize one subgraph to a .tflite flatbuffer (see the module docstring for the op tuples)."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)

    def int_vector(values: list[int], dtype: Any = np.int32) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

    def table_vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def byte_vector(data: bytes) -> int:
        b.StartVector(1, len(data), 16)
        b.head -= len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        return b.EndVector()

    tflite.BufferStart(b)
    buffers = [tflite.BufferEnd(b)]  # buffer 0: the empty sentinel every tensor without data points to
    tensor_offsets = []
    for t in tensors:
        buffer_index = 0
        if t.data is not None:
            data = byte_vector(_raw_bytes(t))
            tflite.BufferStart(b)
            tflite.BufferAddData(b, data)
            buffers.append(tflite.BufferEnd(b))
            buffer_index = len(buffers) - 1
        quant = None
        if t.scale is not None:
            scale = b.CreateNumpyVector(np.asarray(t.scale, dtype=np.float32))
            zp = int_vector(t.zero_point, np.int64)  # type: ignore[arg-type]
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
            quant = tflite.QuantizationParametersEnd(b)
        name, shape = b.CreateString(t.name), int_vector(t.shape)
        signature = int_vector(t.signature) if t.signature else None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        tflite.TensorAddType(b, TENSOR_TYPES[t.dtype])
        tflite.TensorAddBuffer(b, buffer_index)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))

    codes = sorted({getattr(tflite.BuiltinOperator, op[0]) for op in ops})
    code_offsets = []
    for code in codes:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))  # 127: "see builtin_code"
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        code_offsets.append(tflite.OperatorCodeEnd(b))

    op_offsets = []
    for name, op_inputs, op_outputs, options, fields in ops:
        opts = None
        if options:
            getattr(tflite, f"{options}Start")(b)
            for key, value in fields.items():
                getattr(tflite, f"{options}Add{key}")(b, value)
            opts = getattr(tflite, f"{options}End")(b)
        vin, vout = int_vector(op_inputs), int_vector(op_outputs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(getattr(tflite.BuiltinOperator, name)))
        tflite.OperatorAddInputs(b, vin)
        tflite.OperatorAddOutputs(b, vout)
        if opts is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, options))
            tflite.OperatorAddBuiltinOptions(b, opts)
        op_offsets.append(tflite.OperatorEnd(b))

    vtensors, vinputs, voutputs, vops = table_vector(tensor_offsets), int_vector(inputs), int_vector(outputs), \
        table_vector(op_offsets)
    subgraph_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, vtensors)
    tflite.SubGraphAddInputs(b, vinputs)
    tflite.SubGraphAddOutputs(b, voutputs)
    tflite.SubGraphAddOperators(b, vops)
    tflite.SubGraphAddName(b, subgraph_name)
    subgraph = tflite.SubGraphEnd(b)
    vcodes, vsubgraphs, vbuffers = table_vector(code_offsets), table_vector([subgraph]), table_vector(buffers)
    description = b.CreateString(description_text)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, vcodes)
    tflite.ModelAddSubgraphs(b, vsubgraphs)
    tflite.ModelAddBuffers(b, vbuffers)
    tflite.ModelAddDescription(b, description)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def write_tflite(path: Path, tensors: list[TensorDef], ops: list[tuple], inputs: list[int],
                 outputs: list[int]) -> Path:
    """`model_bytes` written to `path`; returns `path`."""
    path.write_bytes(model_bytes(tensors, ops, inputs, outputs))
    return path


class ModelBuilder:
    """Collects tensors and ops, handing out tensor indices; see the module docstring."""

    def __init__(self) -> None:
        self.tensors: list[TensorDef] = []
        self.ops: list[tuple] = []

    def tensor(self, name: str, shape: list[int], dtype: str, data: np.ndarray | bytes | None = None,
               scale: Any = None, zero_point: Any = None, axis: int = 0) -> int:
        """Add a tensor (arguments as for `tensor`) and return its index."""
        self.tensors.append(tensor(name, shape, dtype, data, scale, zero_point, axis))
        return len(self.tensors) - 1

    def const(self, name: str, values: Any, dtype: str = "int32") -> int:
        """Add an unquantized constant (shapes, axes, paddings, permutations) and return its index."""
        data = np.asarray(values, dtype=_NUMPY_DTYPES[dtype])
        return self.tensor(name, list(data.shape), dtype, data)

    def op(self, name: str, inputs: list[int], outputs: list[int], options: str | None = None, **fields: Any) -> None:
        """Append the builtin op `name` (a tflite.BuiltinOperator name) with its options table fields."""
        self.ops.append((name, list(inputs), list(outputs), options, fields))

    def to_bytes(self, inputs: list[int], outputs: list[int], description: str = "edgepack") -> bytes:
        """The .tflite flatbuffer."""
        return model_bytes(self.tensors, self.ops, inputs, outputs, description)
