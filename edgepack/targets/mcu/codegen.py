"""C code generator: a quantized Graph becomes `model.c` + `model.h` for the edgepack kernel library.

The generator decides everything (kernels, packed tables, arena offsets); the emitted C only states
the decisions: `static const` tables and parameter structs, one static arena, and a straight-line
list of `EP_CHECK(kernel(...))` calls, each under a one-line comment naming the layer. The
templates (`templates/model.c.in`, `model.h.in`) are real C files whose named slots (`{weights}`,
`{layer_calls}`, ...) are filled by `fill_template`.

C API of the result (the firmware depends on it): model.h defines EDGEPACK_MODEL_NAME,
EDGEPACK_MODEL_SHA256, EDGEPACK_ARENA_BYTES, EDGEPACK_INPUT_COUNT/OUTPUT_COUNT,
EDGEPACK_INPUT_BYTES/OUTPUT_BYTES (all inputs / outputs concatenated in graph order), per tensor
EDGEPACK_INPUTk_{NAME,DTYPE,SCALE,ZERO_POINT,BYTES,OFFSET} (and OUTPUTk_...), and declares
`int edgepack_model_run(const void *input, void *output)` (0 or an ep_status_t code).

Usage: `files = generate(graph, sha256, "cortex-m4"); sources = required_sources(graph, "cortex-m4")`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgepack import __version__
from edgepack.ir.graph import Graph
from edgepack.targets.mcu import kernel_lib
from edgepack.targets.mcu.lowering import (
    Buffer,
    Call,
    Int,
    Null,
    PointerList,
    Scratch,
    Struct,
    Table,
    lower,
    tables_of,
)
from edgepack.targets.mcu.memory_plan import MemoryPlan, plan

TEMPLATE_DIR = Path(__file__).with_name("templates")
_SLOT = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_PER_LINE = {"int8_t": 20, "int16_t": 14, "int32_t": 8, "int64_t": 6}
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}


def fill_template(name: str, **slots: str) -> str:
    """The template `name` with every `{slot}` replaced; ValueError on a missing or unused slot."""
    text = (TEMPLATE_DIR / name).read_text()
    names = set(_SLOT.findall(text))
    missing, unused = names - set(slots), set(slots) - names
    if missing or unused:
        raise ValueError(f"template {name}: missing slots {sorted(missing)}, unused values {sorted(unused)}")
    return _SLOT.sub(lambda m: slots[m.group(1)], text)


def _int_literal(v: int) -> str:
    v = int(v)
    if v == -(2**31):
        return "(-2147483647 - 1)"
    if v > 2**31 - 1 or v < -(2**31):
        return f"{v}LL"
    return str(v)


def _table_c(t: Table) -> str:
    values = np.asarray(t.values).ravel()
    per = _PER_LINE.get(t.ctype, 8)
    lines = [", ".join(_int_literal(v) for v in values[i:i + per]) for i in range(0, len(values), per)]
    body = ",\n    ".join(lines) if lines else "0"
    count = max(len(values), 1)
    return f"static const {t.ctype} {t.name}[{count}] EP_ALIGNED(4) = {{\n    {body}\n}};"


def _struct_c(s: Struct) -> str:
    fields = []
    for f, ctype in kernel_lib.STRUCTS[s.ctype]:
        v = s.values[f]
        if isinstance(v, Table):
            text = v.name
        elif ctype.endswith("]"):
            text = "{" + ", ".join(_int_literal(x) for x in v) + "}"
        else:
            text = _int_literal(v)
        fields.append(f".{f} = {text}")
    return f"static const {s.ctype} {s.name} = {{{', '.join(fields)}}};"


class _Emitter:
    def __init__(self, graph: Graph, memory: MemoryPlan) -> None:
        self.graph, self.memory = graph, memory

    def pointer(self, tensor: str, writable: bool) -> str:
        region, offset = self.memory.location(tensor)
        base = {"arena": "ep_arena", "input": "in", "output": "out"}[region]
        ctype = _CTYPE[self.graph.tensor(tensor).dtype]
        expr = f"{base} + {offset}"
        if ctype == "int8_t":
            return expr
        const = "" if writable else "const "
        return f"({const}{ctype} *)({const}void *)({expr})"

    def arg(self, call: Call, a: object) -> str:
        if isinstance(a, Struct):
            return f"&{a.name}"
        if isinstance(a, Table):
            return a.name
        if isinstance(a, Buffer):
            return self.pointer(a.tensor, writable=a.tensor == call.writes)
        if isinstance(a, PointerList):
            return "(const void *const[]){" + ", ".join(self.pointer(t, False) for t in a.tensors) + "}"
        if isinstance(a, Scratch):
            return f"ep_arena + {self.memory.scratch[call.index].offset}" if call.index in self.memory.scratch \
                else "NULL"
        if isinstance(a, Null):
            return "NULL"
        if isinstance(a, Int):
            return _int_literal(a.value)
        raise TypeError(f"unknown argument {a!r}")

    def call(self, call: Call) -> str:
        comment = f"    /* {call.summary}{': alias of its input, no code' if call.is_alias else ''} */"
        if call.is_alias:
            return comment
        args = ", ".join(self.arg(call, a) for a in call.args)
        return f"{comment}\n    EP_CHECK({call.kernel}({args}));"

    def data(self, call: Call) -> str:
        parts = [f"/* {call.summary} */"]
        parts += [_table_c(t) for t in tables_of(call)]
        parts += [_struct_c(a) for a in call.args if isinstance(a, Struct)]
        return "\n".join(parts)


def _header(graph: Graph, sha256: str, cpu: str) -> str:
    source = str(graph.metadata.get("source_file") or graph.name).replace("*/", "*_")
    return (f"/* Generated by edgepack {__version__} from {source} (sha256 {sha256[:12]}...) for {cpu}. "
            "Do not edit. */")


def _tensor_defines(graph: Graph, names: list[str], kind: str) -> str:
    lines, offset = [], 0
    for i, name in enumerate(names):
        t = graph.tensor(name)
        nbytes = t.size * np.dtype(t.dtype).itemsize
        scale = float(t.quant.scale[0]) if t.quant is not None else 0.0
        zp = int(t.quant.zero_point[0]) if t.quant is not None else 0
        p = f"EDGEPACK_{kind}{i}"
        safe = name.replace("\\", "\\\\").replace('"', '\\"')
        lines += [f'#define {p}_NAME "{safe}"', f'#define {p}_DTYPE "{t.dtype}"',
                  f"#define {p}_SCALE {float(np.float32(scale))!r}f",
                  f"#define {p}_ZERO_POINT {zp}", f"#define {p}_BYTES {nbytes}u", f"#define {p}_OFFSET {offset}u"]
        offset += nbytes
    return "\n".join(lines)


def _io_bytes(graph: Graph, names: list[str]) -> int:
    return sum(graph.tensor(n).size * np.dtype(graph.tensor(n).dtype).itemsize for n in names)


def generate(graph: Graph, source_sha256: str, cpu: str) -> dict[str, str]:
    """{'model.c': ..., 'model.h': ...} for `graph` (quantized) on `cpu` (see kernel_lib.CPU_DSP)."""
    if not re.fullmatch(r"[0-9a-f]{64}", source_sha256):
        raise ValueError(f"source_sha256 must be 64 lowercase hex digits, got {source_sha256!r}")
    calls = lower(graph, cpu)
    memory = plan(graph, calls, cpu)
    emit = _Emitter(graph, memory)
    header = _header(graph, source_sha256, cpu)
    weights = "\n\n".join(emit.data(c) for c in calls if not c.is_alias)
    model_c = fill_template("model.c.in", header=header, weights=weights,
                            layer_calls="\n".join(emit.call(c) for c in calls))
    defines = _tensor_defines(graph, graph.inputs, "INPUT") + "\n\n" + _tensor_defines(graph, graph.outputs, "OUTPUT")
    model_h = fill_template(
        "model.h.in", header=header, model_name=graph.name.replace('"', "'"), sha256=source_sha256, cpu=cpu,
        arena_bytes=str(max(memory.arena_bytes, 16)), input_count=str(len(graph.inputs)),
        output_count=str(len(graph.outputs)), input_bytes=str(max(_io_bytes(graph, graph.inputs), 1)),
        output_bytes=str(max(_io_bytes(graph, graph.outputs), 1)), tensor_defines=defines)
    return {"model.c": model_c, "model.h": model_h}


def required_sources(graph: Graph, cpu: str) -> list[str]:
    """Kernel library files (C sources, then headers) that the generated model.c needs."""
    return kernel_lib.sources_for({c.kernel for c in lower(graph, cpu) if c.kernel})


def write_sources(graph: Graph, source_sha256: str, cpu: str, dest: Path) -> list[Path]:
    """Write model.c, model.h and the needed kernel files into `dest`; returns the C sources to compile."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in generate(graph, source_sha256, cpu).items():
        (dest / name).write_text(text)
    c_files = [dest / "model.c"]
    for name in required_sources(graph, cpu):
        (dest / name).write_bytes((kernel_lib.KERNEL_DIR / name).read_bytes())
        if name.endswith(".c"):
            c_files.append(dest / name)
    return c_files
