"""Model frontends: turn JAX functions, Keras models and PyTorch modules into files edgepack imports.

- `from_jax(fn, params, example_inputs)` -> float .tflite (jax2tf native serialization + TFLite converter;
  `route="litert"` uses jax.export + litert-converter, an unstable API)
- `from_keras(path_or_model)` -> float .tflite with a static batch of 1
- `from_torch(module, example_inputs)` -> float .onnx (opset 17, static shapes)
- `prepare_model(spec)` -> the file `edgepack package` should import, for any of: a .tflite/.onnx file
  (returned as is), a .keras/.h5 file, or an entry point `module.py:function` (see `jax.load_entry_point`).

Every frontend checks the converted file with edgepack's importer and raises one UnsupportedOpsError that lists
every op it cannot import. TensorFlow, JAX and torch are imported only when a frontend is called.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgepack.errors import ModelError

__all__ = ["from_jax", "from_keras", "from_torch", "prepare_model", "is_entry_point"]

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def from_jax(fn: Any, params: Any, example_inputs: Any, **kwargs: Any) -> Path:
    """See `edgepack.frontends.jax.from_jax`."""
    from edgepack.frontends.jax import from_jax as convert

    return convert(fn, params, example_inputs, **kwargs)


def from_keras(path_or_model: Any, out_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Path:
    """See `edgepack.frontends.keras.from_keras`."""
    from edgepack.frontends.keras import from_keras as convert

    return convert(path_or_model, out_path, **kwargs)


def from_torch(module: Any, example_inputs: Any, out_path: str | os.PathLike[str] | None = None,
               **kwargs: Any) -> Path:
    """See `edgepack.frontends.torch.from_torch`."""
    from edgepack.frontends.torch import from_torch as convert

    return convert(module, example_inputs, out_path, **kwargs)


def is_entry_point(model: str | os.PathLike[str]) -> bool:
    """True for 'module.py:function' / 'package.module:function' (not an existing file, and has a ':')."""
    text = os.fspath(model)
    return ":" in text and not Path(text).exists() and text.rpartition(":")[2].isidentifier()


def prepare_model(model: str | os.PathLike[str], example_shape: Sequence[int] | None = None, *,
                  route: str = "jax2tf", out_dir: str | os.PathLike[str] | None = None) -> Path:
    """The .tflite/.onnx file to import for `model`, converting Keras files and entry points first.

    Usage: `path = prepare_model("examples/digits/model.py:model", [1, 8, 8, 1], out_dir=tmp)`. A .tflite or
    .onnx path is returned unchanged. An entry point's function may return a JAX triple/pair/function
    (`edgepack.frontends.jax.load_entry_point`), a `keras.Model`, or `(torch.nn.Module, example_inputs)`.
    Converted files are written to `out_dir` (default: a new temporary folder) as `<name>.tflite`/`.onnx`.
    """
    text = os.fspath(model)
    folder = Path(out_dir) if out_dir is not None else None
    if not is_entry_point(text):
        path = Path(text)
        if path.suffix.lower() in KERAS_SUFFIXES:
            shapes = [list(example_shape)] if example_shape is not None else None
            return from_keras(path, _out(folder, path.stem, ".tflite"), input_shapes=shapes)
        if example_shape is not None:
            raise ModelError(f"{path}: --example-shape applies to entry points (module.py:function) and Keras "
                             "files only", hint="a .tflite/.onnx file already fixes its input shapes")
        return path  # .tflite / .onnx (or an error from the importer for anything else)
    from edgepack.frontends.common import import_entry_point, static_shape
    from edgepack.frontends.jax import entry_from_result

    result, name = import_entry_point(text)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(result, torch.nn.Module):
        result = (result, None)
    if torch is not None and isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module):
        module, examples = result
        if example_shape is not None:
            examples = torch.zeros(static_shape(list(example_shape), "input", text))
        if examples is None:
            raise ModelError(f"{text}: {name}() returned a torch module without example inputs",
                             hint="return (module, example_inputs), or add --example-shape, e.g. 1,1,8,8")
        return from_torch(module, examples, _out(folder, name, ".onnx"))
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(result, keras.Model):
        shapes = [list(example_shape)] if example_shape is not None else None
        return from_keras(result, _out(folder, name, ".tflite"), input_shapes=shapes)
    entry = entry_from_result(result, example_shape, text, name)
    return from_jax(entry.fn, entry.params, entry.example_inputs, route=route, name=entry.name,
                    out_path=_out(folder, name, ".tflite"))


def _out(folder: Path | None, stem: str, suffix: str) -> Path | None:
    return None if folder is None else folder / f"{stem}{suffix}"
