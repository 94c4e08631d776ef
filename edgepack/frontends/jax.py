"""JAX frontend: `from_jax(fn, params, example_inputs) -> Path` writes a float .tflite with static shapes.

Two routes, both ending in a float TFLite file that `edgepack.ir.tflite.from_tflite` imports (edgepack's own
quantizer quantizes it later, with the user's calibration data):

- `jax2tf` (default): `jax.experimental.jax2tf.convert(f, with_gradient=False)` with native serialization
  (the StableHLO sits in one XlaCallModule op), wrapped in a `tf.function` with fixed `TensorSpec`s, then
  `tf.lite.TFLiteConverter.from_concrete_functions` without optimizations. Needs TensorFlow (extra `jax`).
- `litert`: `jax.export` to StableHLO, then litert-converter's `converter_api_ext`, without TensorFlow.
  That module is an unstable API, so this route always warns (`UnstableAPIWarning`).

The function is called as `fn(params, *inputs)` (`fn(*inputs)` when `params` is None). `example_inputs` is one
array (the input is named `input`), a tuple/list (`input_0`, ...) or a dict whose keys name the inputs (its
values are still passed positionally, in order). The outputs are one array (named `output`),
a tuple/list of arrays (`output_0`, ...) or a dict of arrays (named by the keys).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError, ModelError
from edgepack.frontends.common import (
    captured_stderr,
    check_name,
    converter_errors,
    default_names,
    finish,
    first_line,
    import_entry_point,
    name_tflite_io,
    output_path,
    quiet_tensorflow,
    require,
    static_shape,
)

ROUTES = ("jax2tf", "litert")
SIGNATURE = "serving_default"


class UnstableAPIWarning(UserWarning):
    """A conversion route relies on an API its authors may change without notice."""


@dataclass
class JaxEntry:
    """What an entry point gave: call `from_jax(entry.fn, entry.params, entry.example_inputs)`."""

    fn: Callable[..., Any]
    params: Any
    example_inputs: Any
    name: str


def from_jax(fn: Callable[..., Any], params: Any, example_inputs: Any, *, route: str = "jax2tf",
             out_path: str | os.PathLike[str] | None = None, name: str | None = None) -> Path:
    """Convert `fn(params, *example_inputs)` to a float .tflite with static shapes and named inputs.

    Usage: `path = from_jax(apply, params, np.zeros((1, 8, 8, 1), np.float32), out_path="cnn.tflite")`.
    Raises ModelError for a dynamic dimension (naming the input and dimension) or a failed conversion, and one
    UnsupportedOpsError listing every op edgepack cannot import. Without `out_path` a temporary file is used.
    """
    if route not in ROUTES:
        raise EdgepackError(f"route {route!r} is not a JAX conversion route; use one of {', '.join(ROUTES)}")
    jax = require("jax", "jax", "converting JAX functions")
    label = name or getattr(fn, "__name__", "fn")
    source = f"JAX function {label!r}"
    in_names, specs = _input_specs(jax, example_inputs, source)

    def call(*xs: Any) -> Any:
        return fn(*xs) if params is None else fn(params, *xs)

    try:
        out_tree = jax.eval_shape(call, *specs)
    except Exception as exc:
        raise ModelError(f"{source}: calling it with the example inputs failed ({type(exc).__name__}: "
                         f"{first_line(exc)})", hint="set EDGEPACK_DEBUG=1 for the traceback") from exc
    out_names = _output_names(out_tree, source)

    def flat(*xs: Any) -> list[Any]:
        out = call(*xs)
        if isinstance(out, dict):
            return [out[n] for n in out_names]
        return list(out) if isinstance(out, (list, tuple)) else [out]

    stem = re.sub(r"\W+", "_", label).strip("_") or "model"
    flat.__name__ = flat.__qualname__ = stem  # node names then read jit(<your function>)/op
    if route == "jax2tf":
        blob = _jax2tf(flat, in_names, specs, out_names, source)
    else:
        blob = _litert(jax, flat, in_names, specs, out_names, source)
    blob = name_tflite_io(blob, in_names, out_names)
    return finish(output_path(out_path, stem, ".tflite"), blob, source)


def _input_specs(jax: Any, example_inputs: Any, source: str) -> tuple[list[str], list[Any]]:
    """(input names, one jax.ShapeDtypeStruct per input)."""
    if isinstance(example_inputs, dict):
        names = [check_name(n, "input") for n in example_inputs]
        values = list(example_inputs.values())
    elif isinstance(example_inputs, (tuple, list)):
        values = list(example_inputs)
        names = default_names(len(values), "input")
    else:
        values, names = [example_inputs], ["input"]
    if not values:
        raise ModelError(f"{source}: no example inputs; give one array (or ShapeDtypeStruct) per input")
    specs = []
    for name, value in zip(names, values, strict=True):
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            value = np.asarray(value)
        shape = static_shape(value.shape, name, source)
        dtype = np.dtype(value.dtype)
        if dtype == np.float64:
            dtype = np.dtype(np.float32)  # JAX computes float64 inputs in float32 unless jax_enable_x64 is set
        specs.append(jax.ShapeDtypeStruct(shape, dtype))
    return names, specs


def _output_names(out_tree: Any, source: str) -> list[str]:
    def is_array(v: Any) -> bool:
        return hasattr(v, "shape") and hasattr(v, "dtype")

    if isinstance(out_tree, dict) and all(is_array(v) for v in out_tree.values()) and out_tree:
        return [check_name(n, "output") for n in out_tree]
    if isinstance(out_tree, (list, tuple)) and all(is_array(v) for v in out_tree) and out_tree:
        return default_names(len(out_tree), "output")
    if is_array(out_tree):
        return ["output"]
    raise ModelError(f"{source}: returns {type(out_tree).__name__}; it must return an array, a tuple of arrays "
                     "or a dict of arrays")


def _jax2tf(flat: Callable[..., list[Any]], in_names: list[str], specs: list[Any], out_names: list[str],
            source: str) -> bytes:
    tf = quiet_tensorflow()
    from jax.experimental import jax2tf

    tf_fn = jax2tf.convert(flat, with_gradient=False)

    def serve(*xs: Any) -> dict[str, Any]:
        return dict(zip(out_names, tf_fn(*xs), strict=True))

    module = tf.Module()  # the trackable object keeps the converter on its non-deprecated path
    module.serve = tf.function(serve, autograph=False, input_signature=[
        tf.TensorSpec(s.shape, tf.as_dtype(s.dtype), name=n) for n, s in zip(in_names, specs, strict=True)])
    error = None
    with captured_stderr() as log:  # the converter prints pages of MLIR diagnostics there
        try:
            concrete = module.serve.get_concrete_function()
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
            blob = bytes(converter.convert())  # no optimizations: edgepack's quantizer runs later
        except Exception as exc:
            error = exc
    if error is not None:
        raise ModelError(f"{source}: jax2tf/TFLite conversion failed: {converter_errors(error, log[0])}",
                         hint="rewrite that operation (docs/frontends.md lists what converts); "
                              "EDGEPACK_DEBUG=1 shows the converter's full message") from error
    return blob


def _litert(jax: Any, flat: Callable[..., list[Any]], in_names: list[str], specs: list[Any], out_names: list[str],
            source: str) -> bytes:
    warnings.warn("route='litert' converts with litert-converter's converter_api_ext, an unstable API that may "
                  "change in any release; use route='jax2tf' (TensorFlow) for a stable conversion",
                  UnstableAPIWarning, stacklevel=3)
    try:
        from litert_converter import converter_api_ext
        from litert_converter.mlir import ir, passmanager
    except ImportError as exc:
        raise EdgepackError(
            f"route='litert' needs the litert-converter package ({exc.msg}). edgepack does not install it: "
            "litert-converter 0.5.0 requires xdsl 0.28.0, which pins typing-extensions<4.13 and so conflicts with "
            "pydantic and apache-tvm-ffi; its converter module itself needs only numpy, flatbuffers, protobuf "
            "and ml_dtypes",
            hint="pip install --no-deps litert-converter==0.5.0, or use route='jax2tf'") from None
    error = None
    with captured_stderr() as log:
        try:
            from jax import export as jax_export

            exported = jax_export.export(jax.jit(flat))(*specs)
            context = ir.Context()
            converter_api_ext.prepare_mlir_context(context)
            with context:
                module = ir.Module.parse(exported.mlir_module())
                converter_api_ext.set_signature(module.operation, SIGNATURE, in_names, out_names)
                converter_api_ext.run_convert_to_tfl_passes(module, passmanager.PassManager(),
                                                            converter_api_ext.ConvertToTFLConfig())
                blob = bytes(converter_api_ext.export_flatbuffer_to_bytes(module.operation))
        except Exception as exc:
            error = exc
    if error is not None:
        raise ModelError(f"{source}: jax.export/litert-converter conversion failed: "
                         f"{converter_errors(error, log[0])}",
                         hint="try route='jax2tf'; EDGEPACK_DEBUG=1 shows the converter's full message") from error
    return blob


def entry_from_result(result: Any, example_shape: Sequence[int] | None, spec: str, name: str) -> JaxEntry:
    """Interpret what an entry-point function returned (see `load_entry_point`)."""
    if isinstance(result, tuple) and len(result) == 3:
        fn, params, examples = result
    elif isinstance(result, tuple) and len(result) == 2:
        (fn, params), examples = result, None
    elif callable(result):
        fn, params, examples = result, None, None
    else:
        raise ModelError(f"{spec} returned {type(result).__name__}; return (fn, params, example_inputs), "
                         "(fn, params) or fn", hint="see docs/frontends.md, 'Entry points'")
    if not callable(fn):
        raise ModelError(f"{spec}: the first returned value ({type(fn).__name__}) is not callable")
    if example_shape is not None:
        if isinstance(examples, (tuple, list, dict)) and len(examples) != 1:
            raise ModelError(f"{spec}: --example-shape sets one input, but {name}() returned {len(examples)} "
                             "example inputs", hint="drop --example-shape; the example inputs fix the shapes")
        key = next(iter(examples)) if isinstance(examples, dict) else "input"
        one = (examples[key] if isinstance(examples, dict) else examples[0] if isinstance(examples, (tuple, list))
               else examples)
        dtype = np.dtype(one.dtype) if one is not None and hasattr(one, "dtype") else np.dtype(np.float32)
        shape = static_shape(list(example_shape), key, spec)
        zeros = np.zeros(shape, np.float32 if dtype == np.float64 else dtype)
        examples = {key: zeros} if isinstance(examples, dict) else zeros
    elif examples is None:
        raise ModelError(f"{spec}: {name}() returned no example inputs, so the input shape is unknown",
                         hint="add --example-shape, e.g. --example-shape 1,8,8,1 (batch 1)")
    return JaxEntry(fn, params, examples, name)


def load_entry_point(spec: str, example_shape: Sequence[int] | None = None) -> JaxEntry:
    """Call the zero-argument function `spec` names ('module.py:function' or 'package.module:function').

    It returns `(fn, params, example_inputs)`, `(fn, params)` or `fn` (params closed over); the last two need
    `example_shape` (e.g. [1, 8, 8, 1]), which also overrides the shape of a single example input.
    Usage: `entry = load_entry_point("model.py:digits", [1, 8, 8, 1]); from_jax(entry.fn, entry.params,
    entry.example_inputs, name=entry.name)`.
    """
    result, name = import_entry_point(spec)
    return entry_from_result(result, example_shape, spec, name)
