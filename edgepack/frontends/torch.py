"""PyTorch frontend: `from_torch(module, example_inputs, out_path) -> Path` writes a float ONNX file (opset 17).

It runs `torch.onnx.export(..., dynamo=False)`: with torch 2.13 the TorchScript exporter works offline with
no other package, while the `torch.export`-based exporter (`dynamo=True`) also needs onnxscript. No
`dynamic_axes` are given, so every dimension keeps the example's size (static shapes, batch as given).
The module is exported in eval mode (BatchNorm folds into the convolution) and left in the mode it was in.

Users who export themselves need only the same one-liner:
`torch.onnx.export(model.eval(), (x,), "model.onnx", input_names=["input"], output_names=["output"],
opset_version=17, dynamo=False)`.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgepack.errors import ModelError
from edgepack.frontends.common import (
    check_name,
    converter_errors,
    default_names,
    finish,
    output_path,
    require,
    static_shape,
)

OPSET = 17


def from_torch(module: Any, example_inputs: Any, out_path: str | os.PathLike[str] | None = None, *,
               input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
               opset: int = OPSET) -> Path:
    """Export an `nn.Module` to a float .onnx with the example inputs' static shapes; check it imports.

    Usage: `path = from_torch(net, torch.zeros(1, 1, 8, 8), "net.onnx")`. `example_inputs` is a tensor or a
    tuple of tensors (positional arguments of `forward`). Inputs are named `input` (`input_0`, ... for
    several) and outputs `output` unless names are given.
    """
    torch = require("torch", "torch", "converting PyTorch models")
    require("onnx", "torch", "importing the exported ONNX model")
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}",
                         hint="for a .onnx file you exported yourself, package the file directly")
    label = type(module).__name__
    source = f"PyTorch module {label!r}"
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise ModelError(f"{source}: example_inputs must be a tensor or a tuple of tensors")
    in_names = [check_name(n, "input") for n in (input_names or default_names(len(args), "input"))]
    if len(in_names) != len(args):
        raise ModelError(f"{source}: {len(in_names)} input_names for {len(args)} example inputs")
    for name, arg in zip(in_names, args, strict=True):
        static_shape(tuple(arg.shape), name, source)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(*args)
        count = len(out) if isinstance(out, (tuple, list)) else 1
        out_names = [check_name(n, "output") for n in (output_names or default_names(count, "output"))]
        if len(out_names) != count:
            raise ModelError(f"{source}: {len(out_names)} output_names for {count} outputs")
        stem = re.sub(r"\W+", "_", label).strip("_") or "model"
        path = output_path(out_path, stem, ".onnx")
        with warnings.catch_warnings():
            # torch >= 2.9 warns that the TorchScript exporter is legacy; it is chosen on purpose (see above)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            torch.onnx.export(module, args, str(path), input_names=in_names, output_names=out_names,
                              opset_version=opset, dynamo=False, do_constant_folding=True)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{source}: torch.onnx.export failed ({type(exc).__name__}: {converter_errors(exc)})",
                         hint="set EDGEPACK_DEBUG=1 for the traceback") from exc
    finally:
        module.train(was_training)
    return finish(path, None, source)
