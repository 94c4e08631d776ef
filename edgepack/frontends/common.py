"""What the frontends share: missing-extra errors, static-shape checks, I/O naming, the support check.

Every frontend ends the same way (`finish`): the converted file is written, its graph inputs and outputs are
renamed to the names the user gave, and edgepack's own importer lists the file's ops, so that every op it
cannot import is reported at once in one `UnsupportedOpsError`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import operator
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from edgepack.errors import EdgepackError, ModelError, UnsupportedOpsError

# Input and output names become TensorFlow op names, manifest entries and .npz keys.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import `module` or raise an EdgepackError naming the extra that installs it.

    Usage: `tf = require("tensorflow", "jax", "converting JAX functions")`.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EdgepackError(f"{what} needs {module.split('.')[0]} ({exc.msg})",
                            hint=f"install it with: pip install 'edgepack[{extra}]'") from None


def quiet_tensorflow() -> ModuleType:
    """Import TensorFlow (extra `jax`) with its C++ INFO/WARNING logs off unless the user set a level."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's banner is logged before TF reads the level; edgepack only converts with TF, it computes nothing
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return require("tensorflow", "jax", "converting to TFLite with TensorFlow")


def check_name(name: object, kind: str) -> str:
    """`name` if it is a usable tensor name (letters, digits, '_', '.', '-'; a letter first), else ModelError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ModelError(f"{kind} name {name!r} is not usable: use letters, digits, '_', '.' or '-', "
                         "starting with a letter")
    return name


def default_names(count: int, base: str) -> list[str]:
    """['input'] for one tensor, ['input_0', 'input_1', ...] for several."""
    return [base] if count == 1 else [f"{base}_{i}" for i in range(count)]


def static_shape(shape: Sequence[Any], name: str, source: str, batch_open: bool = False) -> tuple[int, ...]:
    """`shape` as ints >= 1; ModelError naming the input and the dimension otherwise.

    With `batch_open`, an unknown dimension 0 (None or -1, Keras' open batch) becomes 1: edgepack runs one
    sample at a time, and an open batch adds SHAPE/STRIDED_SLICE/PACK ops that MCU and Edge TPU targets reject.
    """
    dims = list(shape)
    if batch_open and dims and (dims[0] is None or dims[0] == -1):
        dims[0] = 1
    for axis, dim in enumerate(dims):
        try:
            size = None if isinstance(dim, bool) else operator.index(dim)  # ints and numpy ints, not symbols
        except Exception:  # jax's symbolic dimensions refuse __index__ with their own error types
            size = None
        if size is None or size < 1:
            kind = "an empty" if dim == 0 else "a dynamic"
            raise ModelError(f"{source}: input {name!r} has {kind} dimension {axis} ({dim}) in shape "
                             f"{_show(shape)}; edgepack exports static shapes only",
                             hint="give a fixed size for every dimension (batch 1), e.g. --example-shape 1,8,8,1")
    return tuple(operator.index(d) for d in dims)


def _show(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def output_path(out_path: str | os.PathLike[str] | None, stem: str, suffix: str) -> Path:
    """`out_path` as a Path (its folder created), or a fresh temporary file `<stem><suffix>`."""
    if out_path is None:
        return Path(tempfile.mkdtemp(prefix="edgepack-")) / f"{stem}{suffix}"
    path = Path(out_path)
    if path.suffix.lower() != suffix:
        raise ModelError(f"{path}: the converted model is a {suffix} file; name it *{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 300 characters."""
    return (str(exc).strip().splitlines() or [""])[0][:300]


# MLIR locations name the user's function and line: callsite("g"("/path/model.py":11:11) at ...)
_FRAME = re.compile(r'"([^"()]+)"\("([^"]+)":(\d+):\d+\)')
_NOISE = ("failed while converting", "illegal op still exists")
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # edgepack's own frames are not the user's source


def converter_errors(exc: BaseException, text: str = "") -> str:
    """The distinct 'error:' lines of an MLIR/TFLite converter failure (from the exception and the captured
    stderr `text`), each with the first user source line its MLIR location names; the rest is noise."""
    found: dict[str, str] = {}  # message -> message with its location
    for line in (str(exc) + "\n" + text).splitlines():
        if "error:" not in line:
            continue
        where, message = line.split("error:", 1)
        message = message.strip().rstrip(".:")
        if not message or any(n in message for n in _NOISE):
            continue
        frames = [(fn, file, ln) for fn, file, ln in _FRAME.findall(where)
                  if "site-packages" not in file and not file.startswith(_PACKAGE_DIR)]
        if frames:
            fn, file, ln = frames[0]
            found[message] = f"{message} (in {fn.split('.')[-1]}, {Path(file).name}:{ln})"
        else:
            found.setdefault(message, message)
    return "; ".join(list(found.values())[:4]) or first_line(exc)


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Send file descriptor 2 to a temporary file while converting (the MLIR converters print pages of
    diagnostics there); the list yielded receives the text when the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    text: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield text
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text.append(tmp.read().decode("utf-8", "replace"))


def _tflite_schema() -> ModuleType:
    """The TFLite flatbuffer object API (ai-edge-litert ships it; TensorFlow too)."""
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise EdgepackError("renaming TFLite tensors needs ai-edge-litert", hint="pip install ai-edge-litert")


def name_tflite_io(blob: bytes, inputs: list[str], outputs: list[str]) -> bytes:
    """The model with subgraph 0's inputs and outputs named `inputs`/`outputs` and in that order.

    The converters name graph I/O tensors after TensorFlow internals ('serving_default_image:0',
    'StatefulPartitionedCall:0', 'Identity'). With a SignatureDef, its keys (the user's names) say which
    tensor is which; without one, inputs already carry their TensorSpec names and outputs are in order.
    """
    if len(set(inputs + outputs)) != len(inputs) + len(outputs):
        raise ModelError(f"input and output names must all differ: inputs {inputs}, outputs {outputs}")
    schema = _tflite_schema()
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(bytearray(blob), 0)
    if model.signatureDefs:
        sig = model.signatureDefs[0]
        graph = model.subgraphs[sig.subgraphIndex]
        found = {"in": {_s(t.name): t.tensorIndex for t in sig.inputs or []},
                 "out": {_s(t.name): t.tensorIndex for t in sig.outputs or []}}
    else:
        graph = model.subgraphs[0]
        found = {"in": {_s(graph.tensors[i].name).split(":")[0]: int(i) for i in graph.inputs},
                 "out": dict(zip(outputs, [int(i) for i in graph.outputs], strict=False))}
    for kind, names in (("in", inputs), ("out", outputs)):
        if sorted(found[kind]) != sorted(names):
            raise ModelError(f"the converted model has {kind}puts {sorted(found[kind])}, expected {sorted(names)}")
    taken = {_s(t.name) for t in graph.tensors} - set(inputs) - set(outputs)
    for name in inputs + outputs:
        if name in taken:
            raise ModelError(f"the name {name!r} is already used by an inner tensor of the converted model",
                             hint="pick other input/output names")
    order = {"in": [found["in"][n] for n in inputs], "out": [found["out"][n] for n in outputs]}
    for kind, names in (("in", inputs), ("out", outputs)):
        for name, index in zip(names, order[kind], strict=True):
            graph.tensors[index].name = name.encode()
    graph.inputs, graph.outputs = order["in"], order["out"]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def finish(path: Path, blob: bytes | None, source: str) -> Path:
    """Write `blob` (if given) to `path`, then refuse the file with one UnsupportedOpsError when edgepack's
    importer cannot read every op in it. Returns `path`."""
    if blob is not None:
        path.write_bytes(blob)
    from edgepack.ir.loader import list_model_ops

    rows = [r for r in list_model_ops(path) if not r["supported"]]
    if rows:
        err = UnsupportedOpsError(f"{source} (converted to {path})",
                                  [(r["op"], r["count"], r["first_node"], r["reason"]) for r in rows])
        err.hint = ("the first node's name points at the source operation; rewrite it with supported ops "
                    "(see docs/frontends.md), or run 'edgepack check' on the converted file for every op")
        raise err
    return path


def import_entry_point(spec: str) -> tuple[Any, str]:
    """Call the zero-argument function named by `spec` ('path/to/module.py:function' or 'package.module:function')
    and return (its result, the function's name).

    Usage: `result, name = import_entry_point("examples/digits/model.py:model")`.
    """
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr.isidentifier():
        raise ModelError(f"{spec!r} is not an entry point; write module.py:function or package.module:function")
    if module_part.endswith(".py"):
        file = Path(module_part)
        if not file.is_file():
            raise ModelError(f"{spec}: no such file {file}")
        name = f"_edgepack_entry_{file.stem}"
        module_spec = importlib.util.spec_from_file_location(name, file)
        if module_spec is None or module_spec.loader is None:
            raise ModelError(f"{spec}: cannot load {file} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        folder = str(file.resolve().parent)
        sys.path.insert(0, folder)  # so the file can import its neighbours
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelError(f"{spec}: importing {file} failed ({type(exc).__name__}: {exc})",
                             hint="set EDGEPACK_DEBUG=1 for the traceback") from exc
        finally:
            sys.path.remove(folder)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise ModelError(f"{spec}: cannot import module {module_part!r} ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ModelError(f"{spec}: {module_part} has no function {attr!r}"
                         + (f"; it defines {', '.join(found)}" if found else ""))
    try:
        return fn(), attr
    except Exception as exc:
        raise ModelError(f"{spec}: calling {attr}() failed ({type(exc).__name__}: {exc})",
                         hint="set EDGEPACK_DEBUG=1 for the traceback") from exc
