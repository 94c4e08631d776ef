"""Helpers for the Edge TPU tests: shared model paths, int8 models built in code (`Chain`), and the text of the
stand-in `edgetpu_compiler` (a test fixture, see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgepack.ir.tflite_writer import ModelBuilder, tensor

SHARED = Path("/work/shared")
KWS_INT8 = SHARED / "models" / "kws_ref_model.tflite"
AD_INT8 = SHARED / "models" / "ad01_int8.tflite"
AD_FP32 = SHARED / "models" / "ad01_fp32.tflite"
KWS_FLOAT_ONNX = SHARED / "models" / "kws_ref_model_float.onnx"
KWS_TEST = SHARED / "data" / "kws01_test.npz"


def need(path: Path) -> Path:
    """Skip when a shared MLPerf Tiny file is absent."""
    if not path.is_file():
        pytest.skip(f"{path} is not present (shared MLPerf Tiny files)")
    return path


class Chain:
    """An int8 NHWC model built op by op with ModelBuilder; `shape` is the current activation's shape."""

    def __init__(self, shape: tuple[int, ...] = (1, 8, 8, 4), dtype: str = "int8") -> None:
        self.m = ModelBuilder()
        self.rng = np.random.default_rng(0)
        self.shape = tuple(shape)
        self.x = self.input = self.act("input", shape, dtype)
        self.n = 0

    def act(self, name: str, shape: tuple[int, ...], dtype: str = "int8", signature: list[int] | None = None) -> int:
        q = {"scale": 0.05, "zero_point": -3} if dtype in ("int8", "uint8") else {}
        self.m.tensors.append(tensor(name, list(shape), dtype, signature=signature, **q))
        return len(self.m.tensors) - 1

    def _next(self, shape: tuple[int, ...], dtype: str = "int8", signature: list[int] | None = None) -> int:
        self.n += 1
        self.shape = tuple(shape)
        return self.act(f"t{self.n}", shape, dtype, signature)

    def conv(self, cout: int = 4, dilation: tuple[int, int] = (1, 1), act: int = 0) -> Chain:
        cin = self.shape[-1]
        w = self.m.tensor(f"w{self.n}", [cout, 3, 3, cin], "int8", self.rng.integers(-127, 128, (cout, 3, 3, cin)),
                          scale=np.full(cout, 0.01), zero_point=0, axis=0)
        b = self.m.tensor(f"b{self.n}", [cout], "int32", np.zeros(cout, np.int32), scale=np.full(cout, 0.0005))
        y = self._next((*self.shape[:-1], cout))
        self.m.op("CONV_2D", [self.x, w, b], [y], "Conv2DOptions", Padding=0, StrideH=1, StrideW=1,
                  DilationHFactor=dilation[0], DilationWFactor=dilation[1], FusedActivationFunction=act)
        self.x = y
        return self

    def fc(self, units: int, out_shape: tuple[int, ...] | None = None) -> Chain:
        cin = self.shape[-1]
        w = self.m.tensor(f"w{self.n}", [units, cin], "int8", self.rng.integers(-127, 128, (units, cin)),
                          scale=np.full(units, 0.01), zero_point=0, axis=0)
        b = self.m.tensor(f"b{self.n}", [units], "int32", np.zeros(units, np.int32), scale=np.full(units, 0.0005))
        y = self._next(out_shape or (1, units))
        self.m.op("FULLY_CONNECTED", [self.x, w, b], [y], "FullyConnectedOptions",
                  KeepNumDims=out_shape is not None and len(out_shape) > 2)
        self.x = y
        return self

    def unary(self, op: str, dtype: str = "int8", options: str | None = None, **fields: int) -> Chain:
        y = self._next(self.shape, dtype)
        self.m.op(op, [self.x], [y], options, **fields)
        self.x = y
        return self

    def reshape(self, shape: tuple[int, ...], signature: list[int] | None = None) -> Chain:
        s = self.m.const(f"s{self.n}", list(shape))
        y = self._next(shape, signature=signature)
        self.m.op("RESHAPE", [self.x, s], [y])
        self.x = y
        return self

    def mean(self, axes: list[int], keep: bool = True) -> Chain:
        a = self.m.const(f"a{self.n}", axes)
        shape = tuple(1 if i in axes else d for i, d in enumerate(self.shape))
        y = self._next(shape)
        self.m.op("MEAN", [self.x, a], [y], "ReducerOptions", KeepDims=keep)
        self.x = y
        return self

    def bytes(self) -> bytes:
        """The .tflite flatbuffer."""
        return self.m.to_bytes([self.input], [self.x])



STANDIN_SCRIPT = r'''#!{python}
"""Stand-in for Coral's edgetpu_compiler (test fixture): records argv, copies the model, prints a compiler-16 log."""
import os, shutil, sys
args = sys.argv[1:]
with open(os.environ["EDGETPU_STANDIN_ARGV"], "a") as f:
    f.write(" ".join(args) + "\n")
if args == ["--version"]:
    print("Edge TPU Compiler version 16.0.384591198")
    sys.exit(0)
out = args[args.index("-o") + 1]
model = args[-1]
mode = os.environ.get("EDGETPU_STANDIN_MODE", "ok")
print("Edge TPU Compiler version 16.0.384591198")
print("Started a compilation timeout timer of 180 seconds.")
if mode == "fail":
    print("ERROR: Didn't find op for builtin opcode 'HARD_SWISH' version '1'")
    print("Compilation failed!", file=sys.stderr)
    sys.exit(1)
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME
buf = open(model, "rb").read()
m = tflite.Model.GetRootAsModel(buf, 0)
sg = m.Subgraphs(0)
ops = [BUILTIN_OPCODE2NAME[max(m.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode(),
                               m.OperatorCodes(sg.Operators(i).OpcodeIndex()).DeprecatedBuiltinCode())]
       for i in range(sg.OperatorsLength())]
stem = os.path.splitext(os.path.basename(model))[0]
shutil.copyfile(model, os.path.join(out, stem + "_edgetpu.tflite"))
cpu = 1 if mode == "partial" else 0
rows = {{}}
for i, op in enumerate(ops):
    status = "Mapped to Edge TPU" if i < len(ops) - cpu else "Operation is working on an unsupported data type"
    rows[(op, status)] = rows.get((op, status), 0) + 1
lines = ["", "Model compiled successfully in 412 ms.", "",
         "Input model: " + model, "Input size: 52.67KiB",
         "Output model: " + os.path.join(out, stem + "_edgetpu.tflite"), "Output size: 120.29KiB",
         "On-chip memory used for caching model parameters: 33.25KiB",
         "On-chip memory remaining for caching model parameters: 7.98MiB",
         "Off-chip memory used for streaming uncached model parameters: 0.00B",
         "Number of Edge TPU subgraphs: 1", "Total number of operations: %d" % len(ops),
         "Operation log: " + os.path.join(out, stem + "_edgetpu.log"), ""]
if cpu:
    lines += ["Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of "
              "the model will instead run on the CPU, which is slower. If possible, consider updating your model "
              "to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.",
              "Number of operations that will run on Edge TPU: %d" % (len(ops) - cpu),
              "Number of operations that will run on CPU: %d" % cpu, ""]
lines += ["Operator                       Count      Status", ""]
lines += ["%-30s %-10d %s" % (op, n, status) for (op, status), n in rows.items()]
lines += ["Compilation child process completed within timeout period.", "Compilation succeeded! "]
text = "\n".join(lines)
print(text)
open(os.path.join(out, stem + "_edgetpu.log"), "w").write(text + "\n")
'''


