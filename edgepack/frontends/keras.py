"""Keras frontend: `from_keras(path_or_model, out_path) -> Path` writes a float .tflite with a static batch of 1.

The model (a `.keras` or `.h5` file, or a `keras.Model`) is called in a `tf.function` whose `TensorSpec`s
fix every dimension, and converted with `tf.lite.TFLiteConverter.from_concrete_functions` without
optimizations. An open batch would add SHAPE/STRIDED_SLICE/PACK ops that MCU and Edge TPU targets reject.
Needs TensorFlow 2.21 with Keras 3 on the TensorFlow backend (`pip install 'edgepack[jax]'` installs it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError, ModelError
from edgepack.frontends.common import (
    captured_stderr,
    check_name,
    converter_errors,
    default_names,
    finish,
    name_tflite_io,
    output_path,
    quiet_tensorflow,
    require,
    static_shape,
)

SUFFIXES = (".keras", ".h5", ".hdf5")


def load_keras(path: str | os.PathLike[str]) -> Any:
    """Load a `.keras`/`.h5` file for inference (`compile=False`); ModelError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    if path.suffix.lower() not in SUFFIXES:
        raise ModelError(f"{path}: a Keras model file ends in {', '.join(SUFFIXES)}")
    keras = _keras()
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelError(f"{path}: Keras cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                         hint="custom layers must be importable and registered (keras.saving.register_keras_"
                              "serializable); set EDGEPACK_DEBUG=1 for the traceback") from exc


def _keras() -> Any:
    quiet_tensorflow()
    keras = require("keras", "jax", "converting Keras models")
    if keras.backend.backend() != "tensorflow":
        raise EdgepackError(f"converting Keras models needs Keras on the TensorFlow backend, not "
                            f"{keras.backend.backend()!r}", hint="set KERAS_BACKEND=tensorflow")
    return keras


def from_keras(path_or_model: Any, out_path: str | os.PathLike[str] | None = None, *,
               input_shapes: Sequence[Sequence[int]] | None = None) -> Path:
    """Convert a Keras model (file or object) to a float .tflite with every dimension static (batch 1).

    Usage: `path = from_keras("cnn.keras", "cnn.tflite")`. Inputs and outputs keep the model's names.
    `input_shapes` (full shapes, batch included) replaces the model's own when a dimension other than the
    batch is open, e.g. `input_shapes=[(1, 96, 96, 3)]`; otherwise such a model raises a ModelError naming
    the input and the dimension.
    """
    if isinstance(path_or_model, (str, os.PathLike)):
        model, label = load_keras(path_or_model), Path(path_or_model).name
        stem = Path(path_or_model).stem
    else:
        _keras()
        model, label = path_or_model, getattr(path_or_model, "name", "model")
        stem = re.sub(r"\W+", "_", label).strip("_") or "model"
    source = f"Keras model {label!r}"
    tf = quiet_tensorflow()
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ModelError(f"{source}: the model has no defined inputs (a subclassed or unbuilt model)",
                         hint="build it with keras.Input(shape=...) (a functional or Sequential model)")
    if input_shapes is not None and len(input_shapes) != len(inputs):
        raise ModelError(f"{source}: {len(input_shapes)} input_shapes for {len(inputs)} inputs")
    in_names = []
    specs = []
    for i, tensor in enumerate(inputs):
        name = check_name(getattr(tensor, "name", None) or f"input_{i}", "input")
        given = input_shapes[i] if input_shapes is not None else tuple(tensor.shape)
        shape = static_shape(given, name, source, batch_open=input_shapes is None)
        in_names.append(name)
        specs.append(tf.TensorSpec(shape, tf.as_dtype(tensor.dtype), name=name))
    outputs = list(getattr(model, "outputs", None) or [])
    out_names = list(getattr(model, "output_names", None) or default_names(max(len(outputs), 1), "output"))
    out_names = [check_name(n, "output") for n in out_names]

    def serve(*xs: Any) -> list[Any]:
        out = model(list(xs) if len(xs) > 1 else xs[0], training=False)
        if isinstance(out, dict):
            return [out[n] for n in out_names]
        return list(out) if isinstance(out, (list, tuple)) else [out]

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    error = None
    with captured_stderr() as log:  # the converter prints pages of MLIR diagnostics there
        try:
            concrete = tf.function(serve, autograph=False, input_signature=specs).get_concrete_function()
            # Frozen first: a converter given the model as trackable_obj keeps the weights as resource
            # variables (VAR_HANDLE/READ_VARIABLE ops) and BatchNorm unfolded.
            frozen = convert_variables_to_constants_v2(concrete)
            converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
            blob = bytes(converter.convert())  # no optimizations: edgepack's quantizer runs later
        except Exception as exc:
            error = exc
    if error is not None:
        raise ModelError(f"{source}: TFLite conversion failed: {converter_errors(error, log[0])}",
                         hint="EDGEPACK_DEBUG=1 shows the converter's full message") from error
    blob = name_tflite_io(blob, in_names, out_names)
    return finish(output_path(out_path, stem, ".tflite"), blob, source)
