"""The user-facing quantization options (`edgepack quantize` and `edgepack package --calib`) and one driver.

`quantize_model(graph, options, target=..., allowed=...)` checks the flags against each other and against
what the target executes, loads the data, calibrates once, allocates bits (for `--bits mixed`, or for
the report), quantizes, evaluates and writes the report. The CLI and the packager both call it, so the
flags mean the same thing in both commands.

Bit choices: `int8` = w8a8, `int4` = w4a8 (int4 weights, int8 activations), `int16x8` = w8a16, `mixed` =
per-layer pairs from the target's allowed set, chosen under a budget (`--max-weights-kb`,
`--max-ram-kb`, `--max-accuracy-drop`). Without `--bits`, a budget means `mixed` and no budget `int8`.
KB are 1024 bytes; the accuracy drop is in percentage points of top-1 on `--eval` data.

Usage: `result = quantize_model(graph, QuantizeOptions(calib="calib.npz"), target="host", allowed=ALLOWED_LITERT)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import QuantizationError
from edgepack.ir.graph import Graph
from edgepack.quantize.allocate import Allocation, Budget, _point, allocate, layer_cost, ram_bytes
from edgepack.quantize.calibrate import Progress, calibrate
from edgepack.quantize.data import load_labelled, load_samples, overlap
from edgepack.quantize.evaluate import accuracy, quality, run_real
from edgepack.quantize.quantizer import quantize_graph, weight_bytes
from edgepack.quantize.report import write_report
from edgepack.quantize.scheme import W8A8, Bits, QuantConfig, layers

BITS = {"int8": (8, 8), "int4": (4, 8), "int16x8": (8, 16), "mixed": None}
KB = 1024


def pair(bits: Bits) -> str:
    """'w4a8' for (4, 8)."""
    return f"w{bits[0]}a{bits[1]}"


@dataclass
class QuantizeOptions:
    """What the user asked for; field names follow the CLI flags."""

    calib: str | Path
    eval: str | Path | None = None
    bits: str | None = None
    max_weights_kb: float | None = None
    max_ram_kb: float | None = None
    max_accuracy_drop: float | None = None  # percentage points
    report: str | Path | None = None

    def budget(self) -> Budget:
        """The budget in bytes and as a fraction."""
        return Budget(None if self.max_weights_kb is None else int(self.max_weights_kb * KB),
                      None if self.max_ram_kb is None else int(self.max_ram_kb * KB),
                      None if self.max_accuracy_drop is None else self.max_accuracy_drop / 100)

    def resolve_bits(self, target: str, allowed: frozenset[Bits]) -> str:
        """The bit choice after checking the flags; QuantizationError naming the conflicting flags."""
        flags = (("--max-weights-kb", self.max_weights_kb), ("--max-ram-kb", self.max_ram_kb),
                 ("--max-accuracy-drop", self.max_accuracy_drop))
        budgets = [flag for flag, value in flags if value is not None]
        bits = self.bits or ("mixed" if budgets else "int8")
        if bits not in BITS:
            raise QuantizationError(f"--bits {bits!r} is not a choice; use one of {', '.join(BITS)}")
        if bits != "mixed" and budgets:
            raise QuantizationError(f"{budgets[0]} conflicts with --bits {bits}: a budget chooses per-layer bits",
                                    hint=f"use --bits mixed with {budgets[0]}, or drop {budgets[0]} for uniform {bits}")
        if bits == "mixed" and not budgets:
            raise QuantizationError("--bits mixed needs a budget: --max-weights-kb, --max-ram-kb or "
                                    "--max-accuracy-drop", hint="e.g. --bits mixed --max-weights-kb 16")
        if self.max_accuracy_drop is not None and self.eval is None:
            raise QuantizationError("--max-accuracy-drop needs --eval FILE.npz (inputs plus labels 'y')",
                                    hint="add --eval, or use --max-weights-kb / --max-ram-kb instead")
        for flag, value in flags:
            if value is not None and value < 0:
                raise QuantizationError(f"{flag} must be >= 0, got {value}")
        names = ", ".join(pair(b) for b in sorted(allowed))
        if bits == "mixed":
            if W8A8 not in allowed:
                raise QuantizationError(f"--bits mixed starts from w8a8, which target {target} does not execute "
                                        f"(allowed: {names})")
            if len(allowed) == 1:
                raise QuantizationError(f"--bits mixed: target {target} executes only {names}; there is nothing to "
                                        "choose", hint="use --bits int8")
        elif BITS[bits] not in allowed:
            raise QuantizationError(f"--bits {bits} ({pair(BITS[bits])}) is not executable by target {target} "
                                    f"(allowed: {names})", hint=f"choose --bits from what --target {target} runs")
        return bits


@dataclass
class QuantizeResult:
    """The quantized graph and everything measured on the way."""

    qgraph: Graph
    bits: str
    target: str
    allowed: frozenset[Bits]
    config: QuantConfig
    calib: dict[str, np.ndarray]
    calib_file: str
    allocation: Allocation | None = None
    eval_samples: int | None = None
    float_accuracy: float | None = None
    accuracy: float | None = None
    calib_quality: dict[str, float] = field(default_factory=dict)
    weight_bytes: int = 0
    int8_weight_bytes: int = 0
    ram_bytes: int = 0
    seconds: float = 0.0
    report_paths: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (what `edgepack quantize --json` prints)."""
        return {"model": self.qgraph.name, "target": self.target, "bits": self.bits,
                "allowed_bits": [pair(b) for b in sorted(self.allowed)],
                "calibration": {"file": self.calib_file, "samples": len(next(iter(self.calib.values())))},
                "eval_samples": self.eval_samples, "float_accuracy": self.float_accuracy, "accuracy": self.accuracy,
                "calib_sqnr_db": self.calib_quality.get("sqnr_db"),
                "weight_bytes": self.weight_bytes, "int8_weight_bytes": self.int8_weight_bytes,
                "weight_ratio": self.weight_bytes / max(self.int8_weight_bytes, 1), "ram_bytes": self.ram_bytes,
                "seconds": round(self.seconds, 3), "layers": self.layers, "report": self.report_paths,
                "warnings": self.warnings}

    def manifest_entry(self, options: QuantizeOptions) -> dict[str, Any]:
        """The bundle manifest's `quantization` field (docs/bundle-format.md)."""
        budget = options.budget()
        return {"bits": self.bits, "allowed_bits": [pair(b) for b in sorted(self.allowed)],
                "layer_bits": {r["layer"]: r["bits"] for r in self.layers},
                "budget": {"max_weight_bytes": budget.max_weight_bytes, "max_ram_bytes": budget.max_ram_bytes,
                           "max_accuracy_drop": budget.max_accuracy_drop},
                "calibration": {"file": self.calib_file, "samples": len(next(iter(self.calib.values())))},
                "method": {"range_method": self.config.range_method, "weight_rounding": self.config.weight_rounding,
                           "bias_correction": self.config.bias_correction},
                "weight_bytes": self.weight_bytes, "int8_weight_bytes": self.int8_weight_bytes,
                "eval_samples": self.eval_samples, "float_accuracy": self.float_accuracy,
                "accuracy": self.accuracy}


def _noop(step: str, done: int, total: int) -> None:
    return None


def quantize_model(graph: Graph, options: QuantizeOptions, *, target: str, allowed: frozenset[Bits],
                   progress: Progress | None = None, warn: Callable[[str], None] | None = None) -> QuantizeResult:
    """Quantize a float graph as `options` say, for a target that executes the pairs in `allowed`."""
    start = time.perf_counter()
    progress = progress or _noop
    if graph.is_quantized:
        raise QuantizationError(f"{graph.name}: the model is already quantized; --calib quantizes float models",
                                hint="pass the float model (.onnx or float .tflite), or drop --calib")
    bits = options.resolve_bits(target, frozenset(allowed))
    warnings: list[str] = []

    def warning(msg: str) -> None:
        warnings.append(msg)
        if warn is not None:
            warn(msg)

    calib = load_samples(options.calib, graph)
    evaluation = load_labelled(options.eval, graph) if options.eval is not None else None
    if evaluation is not None:
        shared = overlap(calib, evaluation[0])
        if shared:
            warning(f"{shared} of {len(evaluation[1])} evaluation samples in {options.eval} also appear in the "
                    f"calibration data {options.calib}; the accuracy measured on them is optimistic")
    base = QuantConfig(allowed=frozenset(allowed))
    cal = calibrate(graph, calib, progress=progress)
    alloc: Allocation | None = None
    if bits == "mixed" or options.report is not None:
        alloc = allocate(graph, calib, options.budget() if bits == "mixed" else None, base, calibration=cal,
                         eval_data=evaluation[0] if evaluation else None,
                         eval_labels=evaluation[1] if evaluation else None, progress=progress)
    if bits == "mixed":
        config = alloc.config(base)  # type: ignore[union-attr]
    else:
        w, a = BITS[bits]  # type: ignore[misc]
        config = QuantConfig(w_bits=w, a_bits=a, allowed=frozenset(allowed))
    qgraph = quantize_graph(graph, None, config, calibration=cal, progress=progress)
    result = QuantizeResult(qgraph, bits, target, frozenset(allowed), config, calib, str(options.calib), alloc)
    ref = run_real(graph, calib)[graph.outputs[0]]
    result.calib_quality = quality(ref, run_real(qgraph, calib)[graph.outputs[0]])
    if evaluation is not None:
        x_eval, y_eval = evaluation
        result.eval_samples = int(len(y_eval))
        result.float_accuracy = (alloc.float_accuracy if alloc is not None and alloc.float_accuracy is not None
                                 else accuracy(run_real(graph, x_eval)[graph.outputs[0]], y_eval))
        result.accuracy = accuracy(run_real(qgraph, x_eval)[graph.outputs[0]], y_eval)
    result.weight_bytes = weight_bytes(qgraph)
    result.int8_weight_bytes = sum(layer_cost(graph, n, W8A8)[0] for n in layers(graph))
    result.ram_bytes = ram_bytes(qgraph)
    result.layers = [{"layer": n.name, "op": n.op.value, "bits": pair(config.bits(n)),
                      "weight_bytes": layer_cost(graph, n, config.bits(n))[0],
                      "int8_weight_bytes": layer_cost(graph, n, W8A8)[0],
                      "sensitivity": ({pair(b): d for b, d in alloc.sensitivity.layers[n.name].delta.items()}
                                      if alloc is not None else {})} for n in layers(graph)]
    if alloc is not None and bits != "mixed":
        _choose_uniform(graph, alloc, config, result)
    if options.report is not None:
        result.report_paths = write_report(options.report, alloc, graph)  # type: ignore[arg-type]
    result.seconds = time.perf_counter() - start
    return result


def _choose_uniform(graph: Graph, alloc: Allocation, config: QuantConfig, result: QuantizeResult) -> None:
    """Make the report's chosen point the uniform model that was built (it may not be on the front)."""
    uniform = {n.name: config.bits(n) for n in layers(graph)}
    point = next((p for p in alloc.front if p.layer_bits == uniform), None)
    if point is not None:
        point.label = point.label if point.label.startswith("uniform") else f"uniform {result.bits}"
    else:
        point = _point(graph, uniform, alloc.sensitivity, f"uniform {result.bits}")
        point.weight_bytes, point.ram_bytes = result.weight_bytes, result.ram_bytes
        point.measured.update({f"calib_{k}": v for k, v in result.calib_quality.items()})
        if result.accuracy is not None:
            point.measured["eval_accuracy"] = result.accuracy
    alloc.chosen = point
