"""The packaging pipeline: import -> [quantize] -> target.check -> target.compile -> golden pairs -> verify -> bundle.

With `quantize` options the float model is quantized first, for the pairs the target declares in
`allowed_bits` (`edgepack.quantize.options`); the manifest then records the choice under `quantization`
and the golden inputs default to calibration samples.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack import __version__
from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph
from edgepack.ir.loader import load_model, model_format
from edgepack.ir.ops import WEIGHTED_OPS
from edgepack.ir.reference import Interpreter
from edgepack.packager import golden as golden_data
from edgepack.packager.bundle_writer import write_bundle
from edgepack.quantize.options import QuantizeOptions, quantize_model
from edgepack.runtime.backends import backend_module, needs_board
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.session import Session
from edgepack.runtime.tensors import TensorInfo
from edgepack.runtime.verify import compare
from edgepack.targets import get_target

# Float backends must agree with the golden float interpreter within this (documented in docs/).
FLOAT_TOLERANCE = {"max_abs": 1e-3, "rtol": 1e-3, "unit": "abs"}
# The reference interpreter against itself: float32 sums may be ordered differently on another machine
# (numpy's BLAS build), a few ULPs; integer graphs are exact.
REFERENCE_FLOAT_TOLERANCE = {"max_abs": 1e-5, "rtol": 1e-5, "unit": "abs"}
TOOLS = ("numpy", "onnx", "onnxruntime", "ai-edge-litert", "tflite", "apache-tvm")

Progress = Callable[[str], None]


@dataclass
class PackageResult:
    """What `package` wrote and measured."""

    path: Path
    manifest: dict[str, Any]


def _tool_versions() -> dict[str, str]:
    versions = {"edgepack": __version__}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def tensor_spec(graph: Graph, name: str) -> dict[str, Any]:
    """Manifest entry for a graph input or output."""
    t = graph.tensor(name)
    return {"name": name, "shape": list(t.shape), "dtype": t.dtype, "quant": t.quant.to_dict() if t.quant else None}


def layer_table(graph: Graph) -> list[dict[str, Any]]:
    """Per-node rows: op, weight and activation bit-widths, MACs and parameter count."""
    rows = []
    for node in graph.nodes:
        weight_bits = None
        params = 0
        if node.op in WEIGHTED_OPS:
            w = graph.tensor(node.inputs[1])
            weight_bits = w.quant.bits if w.quant else 32
        params = sum(graph.tensor(n).size for n in node.inputs if n and graph.tensor(n).is_const)
        out = graph.tensor(node.outputs[0])
        act_bits = out.quant.bits if out.quant else np.dtype(out.dtype).itemsize * 8
        rows.append({"name": node.name, "op": node.op.value, "weight_bits": weight_bits,
                     "activation_bits": act_bits, "macs": graph.macs(node), "params": params})
    return rows


def _tolerance(backend: str, graph: Graph, measured: float) -> dict[str, Any]:
    """The tolerance a backend is recorded with; its unit follows the output dtype, as `verify.compare` does."""
    unit = "lsb" if all(graph.tensor(n).dtype != "float32" for n in graph.outputs) else "abs"
    if not graph.is_quantized:
        return dict(REFERENCE_FLOAT_TOLERANCE) if backend == "reference" else dict(FLOAT_TOLERANCE)
    if backend == "reference":
        return {"max_abs": 0, "unit": unit}
    # Integer graphs: what the backend measured (LiteRT's kernels are not TFLM-exact), in LSB or, for
    # float (dequantized) outputs, in real units.
    return {"max_abs": int(measured) if unit == "lsb" else float(measured), "unit": unit}


def package(model: str | os.PathLike[str], out: str | os.PathLike[str], target: str = "host",
            golden: str | os.PathLike[str] | None = None, golden_count: int = golden_data.DEFAULT_COUNT,
            backends: list[str] | None = None, progress: Progress | None = None,
            quantize: QuantizeOptions | None = None, quant_progress: Callable[[str, int, int], None] | None = None,
            warn: Callable[[str], None] | None = None, board: str | None = None,
            io_dtype: str | None = None, target_options: dict[str, Any] | None = None) -> PackageResult:
    """Package `model` for `target` into the bundle `out` and verify every backend on the golden pairs.

    `target_options` go to the target's compile step as they are, e.g. ``{"kernels": "tvm"}`` (Cortex-M) or
    ``{"fpga_arch": "engine"}`` (FPGA); a target refuses an option it does not know.

    Usage: ``package("kws.tflite", "kws.edgepack", target="host")``;
    ``package("kws.onnx", "kws.edgepack", quantize=QuantizeOptions(calib="calib.npz"))``
    """
    say = progress or (lambda msg: None)
    model = Path(model)
    fmt = model_format(model)
    source = model.read_bytes()
    tgt = get_target(target)
    allowed = getattr(tgt, "allowed_bits", None)
    if quantize is not None:
        if allowed is None:
            raise EdgepackError(f"target {target} does not declare which bit-widths it executes (allowed_bits)",
                                hint="the target plug-in must set allowed_bits; pick another --target")
        quantize.resolve_bits(target, allowed)  # flag errors before the long steps
    unknown = sorted(set(target_options or {}) - set(getattr(tgt, "compile_options", ())))
    if unknown:
        def flag(name: str) -> str:
            return f"{name} (--{name.replace('_', '-')})"

        known = sorted(getattr(tgt, "compile_options", ()))
        raise EdgepackError(f"target {target} has no option {', '.join(map(flag, unknown))}",
                            hint=f"options of {target}: {', '.join(map(flag, known)) or 'none'}")
    say(f"importing {model.name} ({fmt}, {len(source):,} bytes)")
    graph = load_model(model)
    quantized = None
    if quantize is not None:
        say(f"quantizing for target {target} with calibration data {quantize.calib}")
        quantized = quantize_model(graph, quantize, target=target, allowed=allowed, progress=quant_progress,
                                   warn=warn)
        graph = quantized.qgraph
    if hasattr(tgt, "prepare"):  # a target's last rewrite of the graph, e.g. the Edge TPU's uint8 model I/O
        graph = tgt.prepare(graph, {"io_dtype": io_dtype})
    elif io_dtype is not None:
        raise EdgepackError(f"--io-dtype does not apply to target {target}", hint="it is an edgetpu option")
    report = tgt.check(graph, board) if board is not None else tgt.check(graph)
    if not report.ok:
        first = next(i for i in report.issues if i.fatal)
        where = f"node {first.node!r} ({first.op}) is" if first.node else "the model is"
        raise EdgepackError(
            f"{model.name}: {where} not supported by target {target}: {first.reason}",
            hint=f"run 'edgepack check {model} --target {target}' for the full report")
    say(f"compiling for {target}")
    arts = tgt.compile(graph, (fmt, source), {**(target_options or {}), "backends": backends, "board": board})

    infos = [TensorInfo.from_manifest(tensor_spec(graph, n)) for n in graph.inputs]
    if golden is not None:
        inputs = golden_data.take(golden_data.load_samples(golden, infos), golden_count)
    elif quantized is not None:  # real-valued calibration samples, quantized as a session quantizes them
        inputs = golden_data.coerce_samples(golden_data.take(quantized.calib, golden_count), infos)
    else:
        inputs = golden_data.random_samples(graph, golden_count)
    count = len(next(iter(inputs.values())))
    if count == 0:
        raise EdgepackError(f"{golden or 'golden_count=0'}: no samples to use as golden inputs",
                            hint="give at least one sample")
    say(f"computing {count} golden pairs with the reference interpreter")
    # One sample at a time, as a Session runs them: a batch-1 graph cannot always take a merged batch
    # (a Concat with a constant, a Reshape to a fixed shape), and per-sample sums match the runtime's order.
    interpreter = Interpreter(graph)
    per_sample = [interpreter.run({k: v[i] for k, v in inputs.items()}) for i in range(count)]
    outputs = {k: np.stack([r[k] for r in per_sample]) for k in graph.outputs}

    manifest: dict[str, Any] = {
        "target": target, "board": arts.board,
        "model": {"name": graph.name, "source_file": model.name, "source_format": fmt,
                  "source_sha256": hashlib.sha256(source).hexdigest()},
        "inputs": [tensor_spec(graph, n) for n in graph.inputs],
        "outputs": [tensor_spec(graph, n) for n in graph.outputs],
        "layers": layer_table(graph),
        "tools": _tool_versions(),
        "backends": {name: dict(spec, tolerance=_tolerance(name, graph, 0))
                     for name, spec in arts.backends.items()},
        "default_backend": arts.default_backend,
    }
    if arts.memory:
        manifest["memory"] = arts.memory
    if quantized is not None:
        manifest["quantization"] = quantized.manifest_entry(quantize)  # type: ignore[arg-type]
    files = [(a.path, a.role, a.data) for a in arts.files]
    out = Path(out)
    # Verify every non-reference backend on a trial bundle first; only a verified bundle reaches `out`.
    trial = out.with_name(f".{out.name}.unverified")
    try:
        write_bundle(trial, manifest, files, inputs, outputs)
        for name, value in _measure_backends(trial, manifest, outputs, graph.is_quantized, say, tgt).items():
            manifest["backends"][name]["tolerance"] = _tolerance(name, graph, value)
    finally:
        trial.unlink(missing_ok=True)
    write_bundle(out, manifest, files, inputs, outputs)
    with Bundle.open(out) as bundle:  # the manifest as written: artifacts, golden, versions, created
        return PackageResult(out, bundle.manifest)


def _measure_backends(path: Path, manifest: dict[str, Any], want: dict[str, np.ndarray], quantized: bool,
                      say: Progress, tgt: Any = None) -> dict[str, float]:
    """Largest |diff| of each non-reference backend; float graphs must meet FLOAT_TOLERANCE.

    A backend that needs a board (`device`) is run by the target's `run_golden(backend, path, say)`, which
    returns its outputs and fields for its manifest entry, or (None, fields) when no board is reachable
    while packaging (a real board): that backend keeps the declared tolerance.
    """
    measured: dict[str, float] = {}
    for name in manifest["backends"]:
        if name == "reference":
            continue
        if not backend_module(name).available():
            raise EdgepackError(f"cannot verify backend {name!r}: {backend_module(name).missing_hint()}",
                                hint="install it, or leave it out with --backend")
        say(f"verifying backend {name} on the golden pairs")
        if needs_board(name) or not getattr(tgt, "runs_on_host", lambda _name: True)(name):
            got, fields = tgt.run_golden(name, path, say)
            manifest["backends"][name].update(fields)
            if got is None:
                continue
        else:
            with Bundle.open(path) as bundle:
                sess = Session(bundle, name)
                inputs, _ = bundle.golden()
                got = sess.run(inputs)
        worst = 0.0
        for spec in manifest["outputs"]:
            tol = FLOAT_TOLERANCE if not quantized else {"max_abs": float("inf"), "rtol": 0.0}
            check = compare(spec["name"], got[spec["name"]], want[spec["name"]], tol["max_abs"], tol["rtol"])
            if not check.passed:
                raise EdgepackError(f"backend {name} disagrees with the golden model on output {spec['name']!r}: "
                                    f"max |diff| {check.max_abs_diff:.3g} exceeds atol {tol['max_abs']} + "
                                    f"rtol {tol['rtol']}", hint="leave the backend out with --backend")
            worst = max(worst, check.max_abs_diff)
        measured[name] = worst
    return measured
