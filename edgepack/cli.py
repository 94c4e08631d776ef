"""The `edgepack` command line: parses arguments and calls the modules; nothing else.

Results go to stdout (a table, or JSON with --json); progress, warnings and errors go to stderr.
Known errors exit with status 1 and one line (plus a hint); EDGEPACK_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgepack import __version__
from edgepack.errors import EdgepackError

app = typer.Typer(
    name="edgepack",
    help="Quantize, compile and bundle trained models for edge targets, then run and verify the bundles.\n\n"
         "Typical flow: edgepack check MODEL; edgepack quantize MODEL --calib C.npz -o Q.tflite; "
         "edgepack package MODEL --target host -o M.edgepack; "
         "edgepack verify M.edgepack; edgepack run M.edgepack --input X.npy",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Target to compile for; see 'edgepack targets'.")]
BackendOpt = Annotated[str | None, typer.Option(
    "--backend", "-b", help="Runtime backend: reference, litert or onnxruntime (default: the bundle's choice).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for the backend.")]
AcceleratorOpt = Annotated[bool, typer.Option(
    "--require-accelerator", help="Fail instead of falling back to the CPU when the accelerator (Edge TPU) is "
                                  "missing.")]
BoardOpt = Annotated[str | None, typer.Option(
    "--board", help="Board to build for or run on, e.g. qemu-mps2-an386 (emulated) or nucleo-l4r5zi; for FPGA "
                    "bundles sim (the RTL under Verilator) or icebreaker; see 'edgepack targets'.")]
PortOpt = Annotated[str | None, typer.Option(
    "--port", help="Serial port of a real board, e.g. /dev/ttyACM0 (emulated boards need none).")]
# Quantization options, shared by `quantize` and `package` (edgepack/quantize/options.py gives their meaning).
CalibOpt = Annotated[Path | None, typer.Option(
    "--calib", help="Calibration data: FILE.npz (arrays named after the inputs, or the first float array), "
                    "FILE.npy, or a DIR of .npy/.npz files (one sample or a stack each).")]
EvalOpt = Annotated[Path | None, typer.Option(
    "--eval", help="Evaluation data: FILE.npz with the inputs and integer labels 'y' (accuracy, --max-accuracy-drop). "
                   "Must not overlap the calibration data (warned).")]
BitsOpt = Annotated[str | None, typer.Option(
    "--bits", help="int8 (w8a8), int4 (w4a8), int16x8 (w8a16) or mixed (per layer, needs a budget). "
                   "Default: mixed with a budget, else int8.")]
MaxWeightsOpt = Annotated[float | None, typer.Option(
    "--max-weights-kb", min=0, help="Budget: weight + bias bytes, in KB (1024 bytes).")]
MaxRamOpt = Annotated[float | None, typer.Option(
    "--max-ram-kb", min=0, help="Budget: largest input + output activation bytes of any layer, in KB.")]
MaxDropOpt = Annotated[float | None, typer.Option(
    "--max-accuracy-drop", min=0, help="Budget: top-1 drop on --eval data, in percentage points (0.5 = 0.5 %).")]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="Write the report here: layers.txt, report.json, pareto.json, pareto.png.")]


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Python warnings raised inside (e.g. an Edge TPU bundle falling back to the CPU) become `warning:` lines."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        _warn(str(w.message))


def _progress(message: str) -> None:
    err.print(f"[dim]… {escape(message)}[/dim]")


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


@contextmanager
def _progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A (step, done, total) callback drawing one rich progress bar per step on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as bars:
        def update(step: str, done: int, total: int) -> None:
            if step == "quantize":  # per node of one model build: too quick to be worth a bar
                return
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)
        yield update


@contextmanager
def _nullbars() -> Iterator[None]:
    yield None


def _quantize_options(calib: Path | None, eval_data: Path | None, bits: str | None, max_weights_kb: float | None,
                      max_ram_kb: float | None, max_accuracy_drop: float | None, report: Path | None) -> Any:
    """QuantizeOptions from the flags, or None when no quantization flag was given (--calib is the switch)."""
    from edgepack.errors import QuantizationError
    from edgepack.quantize.options import QuantizeOptions

    given = [flag for flag, value in (("--eval", eval_data), ("--bits", bits), ("--max-weights-kb", max_weights_kb),
                                      ("--max-ram-kb", max_ram_kb), ("--max-accuracy-drop", max_accuracy_drop),
                                      ("--report", report)) if value is not None]
    if calib is None:
        if given:
            raise QuantizationError(f"{given[0]} needs --calib: quantization starts from calibration data",
                                    hint="add --calib FILE.npz (representative inputs of the float model)")
        return None
    return QuantizeOptions(calib, eval_data, bits, max_weights_kb, max_ram_kb, max_accuracy_drop, report)


def _print_quantization(summary: dict[str, Any]) -> None:
    alts = sorted({a for r in summary["layers"] for a in r.get("sensitivity", {})})
    table = Table("#", "layer", "op", "bits", "bytes", "int8 bytes", *(f"Δ {a}" for a in alts))
    for i, r in enumerate(summary["layers"]):
        name = r["layer"] if len(r["layer"]) <= 48 else "…" + r["layer"][-47:]
        sens = [f"{r['sensitivity'][a]:+.2e}" if a in r.get("sensitivity", {}) else "" for a in alts]
        table.add_row(str(i), name, r["op"], r["bits"], f"{r['weight_bytes']:,}", f"{r['int8_weight_bytes']:,}",
                      *sens)
    out.print(table)
    if alts:
        out.print("Δ: change of the output noise (vs float, calibration data) when only that layer is narrowed "
                  "from w8a8; larger means more sensitive")
    out.print(f"weights {summary['weight_bytes']:,} B = {summary['weight_ratio']:.1%} of int8 "
              f"({summary['int8_weight_bytes']:,} B); RAM proxy {summary['ram_bytes']:,} B; "
              f"bits {summary['bits']} for target {summary['target']}")
    if summary["accuracy"] is not None:
        out.print(f"top-1 on {summary['eval_samples']} eval samples (golden interpreter): "
                  f"float {summary['float_accuracy']:.2%}, quantized {summary['accuracy']:.2%}")
    if summary["calib_sqnr_db"] is not None:
        out.print(f"output SQNR vs float on {summary['calibration']['samples']} calibration samples: "
                  f"{summary['calib_sqnr_db']:.1f} dB")


@app.command()
def targets(json_out: JsonOpt = False) -> None:
    """List the targets and boards edgepack knows, with their constraints.

    Example: edgepack targets --json
    """
    from edgepack.targets import get_target, target_names

    rows = []
    for name in target_names():
        t = get_target(name)
        bits = sorted(getattr(t, "allowed_bits", ()))
        rows.append({"target": name, "description": t.description,
                     "allowed_bits": [{"weight_bits": w, "activation_bits": a} for w, a in bits],
                     "options": sorted(getattr(t, "compile_options", ())),
                     "boards": [{"name": b.name, "description": b.description, "emulated": b.emulated,
                                 "constraints": b.constraints} for b in t.boards]})
    if json_out:
        _print_json(rows)
        return
    table = Table("target", "board", "description")
    for r in rows:
        for b in r["boards"]:
            table.add_row(r["target"], b["name"] + (" (emulated)" if b["emulated"] else ""), r["description"])
    out.print(table)
    err.print("[dim]bit-widths each target executes and its options: edgepack targets --json[/dim]")


@app.command()
def check(
    model: Annotated[Path, typer.Argument(help="Model file (.tflite or .onnx).")],
    target: TargetOpt = "host",
    board: BoardOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import MODEL and list its ops, shapes, MACs and parameters, and every unsupported op at once.

    With --target (and --board) it also lists what that target cannot run or fit. Exits with status 1
    when anything is unsupported.

    Examples: edgepack check kws.tflite;  edgepack check model.onnx --json;
    edgepack check kws.tflite --target cortex-m4 --board nucleo-l4r5zi
    """
    from edgepack.errors import UnsupportedOpsError
    from edgepack.ir.loader import list_model_ops, load_model
    from edgepack.packager.pipeline import layer_table, tensor_spec
    from edgepack.targets import get_target

    ops = list_model_ops(model)
    unsupported = [o for o in ops if not o["supported"]]
    report: dict[str, Any] = {"model": str(model), "ops": ops, "unsupported": unsupported}
    if not unsupported:
        try:
            graph = load_model(model)
        except UnsupportedOpsError as exc:
            report["unsupported"] = [{"op": op, "count": n, "first_node": first, "reason": why, "supported": False}
                                     for op, n, first, why in exc.problems]
        else:
            layers = layer_table(graph)
            tgt = get_target(target)
            issues = (tgt.check(graph, board) if board is not None else tgt.check(graph)).issues  # type: ignore[call-arg]
            report.update(
                target=target,
                inputs=[tensor_spec(graph, n) for n in graph.inputs],
                outputs=[tensor_spec(graph, n) for n in graph.outputs],
                layers=[dict(row, output_shape=list(graph.tensor(n.outputs[0]).shape))
                        for row, n in zip(layers, graph.nodes, strict=True)],
                total_macs=sum(r["macs"] for r in layers), total_params=graph.param_count(),
                target_issues=[{"node": i.node, "op": i.op, "reason": i.reason, "fatal": i.fatal} for i in issues],
            )
            report["unsupported"] += [{"op": i.op, "count": 1, "first_node": i.node, "reason": i.reason,
                                       "supported": False} for i in issues if i.fatal]
    if json_out:
        _print_json(report)
    else:
        _print_check(report)
    if report["unsupported"]:
        raise typer.Exit(1)


def _print_check(report: dict[str, Any]) -> None:
    if "layers" in report:
        for kind in ("inputs", "outputs"):
            for t in report[kind]:
                q = t["quant"]
                qs = f" scale {q['scale'][0]:.6g} zp {q['zero_point'][0]}" if q and len(q["scale"]) == 1 else ""
                out.print(f"{kind[:-1]:6} {t['name']}: {t['dtype']}{t['shape']}{qs}")
        table = Table("#", "op", "name", "output", "w bits", "a bits", "MACs", "params")
        for i, r in enumerate(report["layers"]):
            table.add_row(str(i), r["op"], r["name"][:48], str(r["output_shape"]), str(r["weight_bits"] or "-"),
                          str(r["activation_bits"]), f"{r['macs']:,}", f"{r['params']:,}")
        out.print(table)
        out.print(f"total: {report['total_macs']:,} MACs, {report['total_params']:,} parameters")
    else:
        table = Table("op", "count", "supported", "reason")
        for o in report["ops"]:
            table.add_row(o["op"], str(o["count"]), "yes" if o["supported"] else "NO", o.get("reason") or "")
        out.print(table)
    for note in report.get("target_issues", []):
        if not note["fatal"]:
            where = f"{note['op']} {note['node']}: " if note["node"] else ""
            err.print(f"note ({report['target']}): {where}{note['reason']}", highlight=False, markup=False)
    for u in report["unsupported"]:
        where = f"{u['op']} x{u['count']} (first: {u.get('first_node')}): " if u.get("op") else ""  # model-level
        err.print("[red]unsupported:[/red] " + escape(where + u["reason"]))


@app.command()
def quantize(
    model: Annotated[Path, typer.Argument(help="Float model file (.onnx or float .tflite).")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Quantized model to write: OUT.tflite or OUT.onnx (QDQ).")],
    calib: CalibOpt = None,
    eval_data: EvalOpt = None,
    target: TargetOpt = "host",
    bits: BitsOpt = None,
    max_weights_kb: MaxWeightsOpt = None,
    max_ram_kb: MaxRamOpt = None,
    max_accuracy_drop: MaxDropOpt = None,
    report: ReportOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Quantize a float MODEL with calibration data, for what --target executes, and write OUT.

    Weights are symmetric per output channel, activations asymmetric per tensor, biases int32 (TFLite/TFLM
    conventions). With --bits mixed each layer gets the narrowest pair the target runs and the budget allows.
    Progress goes to stderr; the per-layer table (or --json) to stdout.

    Examples:

      edgepack quantize kws.onnx --calib calib.npz -o kws_int8.tflite

      edgepack quantize kws.onnx --calib calib.npz --eval test.npz --max-weights-kb 14 --report out/ -o kws_mixed.tflite

      edgepack quantize kws.onnx --calib calib_dir/ --eval test.npz --max-accuracy-drop 0.5 -o kws.onnx --json
    """
    from edgepack.errors import QuantizationError
    from edgepack.ir.loader import load_model
    from edgepack.quantize.options import quantize_model
    from edgepack.targets import get_target

    options = _quantize_options(calib, eval_data, bits, max_weights_kb, max_ram_kb, max_accuracy_drop, report)
    if options is None:
        raise QuantizationError("edgepack quantize needs --calib FILE.npz|DIR (representative inputs)",
                                hint="e.g. edgepack quantize model.onnx --calib calib.npz -o model_int8.tflite")
    suffix = output.suffix.lower()
    if suffix not in (".tflite", ".onnx"):
        raise QuantizationError(f"-o {output}: write a .tflite or an .onnx file (got {output.suffix or 'no suffix'!r})")
    tgt = get_target(target)
    allowed = getattr(tgt, "allowed_bits", None)
    if allowed is None:
        raise QuantizationError(f"target {target} does not declare which bit-widths it executes (allowed_bits)",
                                hint="the target plug-in must set allowed_bits; pick another --target")
    options.resolve_bits(target, allowed)  # flag errors before the model is even read
    graph = load_model(model)
    with _progress_bars() as bars:
        result = quantize_model(graph, options, target=target, allowed=allowed, progress=bars, warn=_warn)
    if suffix == ".tflite":
        from edgepack.ir.tflite_export import to_tflite

        blob = to_tflite(result.qgraph)
    else:
        from edgepack.ir.onnx_export import to_onnx

        blob = to_onnx(result.qgraph)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(blob)
    except OSError as exc:
        raise QuantizationError(f"{output}: cannot write the model: {exc.strerror or exc}") from exc
    summary = dict(result.summary(), output=str(output), output_bytes=len(blob))
    if json_out:
        _print_json(summary)
        return
    _print_quantization(summary)
    out.print(f"wrote {output} ({len(blob):,} bytes) in {result.seconds:.1f} s")
    for name, path in result.report_paths.items():
        out.print(f"  report {name:6} {path}")


@contextlib.contextmanager
def _source_model(model: str, example_shape: str | None, jax_route: str) -> Iterator[Path]:
    """The .tflite/.onnx to import for MODEL: converted first for Keras files and module.py:function entry points."""
    import tempfile
    import warnings

    from edgepack.frontends import prepare_model

    shape = None
    if example_shape is not None:
        try:
            shape = [int(d) for d in example_shape.split(",")]
        except ValueError:
            raise EdgepackError(f"--example-shape {example_shape!r}: expected integers separated by commas",
                                hint="e.g. --example-shape 1,8,8,1") from None
    with tempfile.TemporaryDirectory(prefix="edgepack-") as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = prepare_model(model, shape, route=jax_route, out_dir=tmp)
        for w in caught:
            _warn(str(w.message))
        yield Path(source)


@app.command()
def package(
    model: Annotated[str, typer.Argument(help=(
        "Model: a .tflite or .onnx file, a Keras .keras/.h5 file, or a JAX/Keras/PyTorch entry point "
        "module.py:function (see docs/frontends.md)."))],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle file to write (NAME.edgepack).")],
    target: TargetOpt = "host",
    example_shape: Annotated[str | None, typer.Option(
        "--example-shape", help="Static input shape for an entry point or Keras file, e.g. 1,8,8,1.")] = None,
    jax_route: Annotated[str, typer.Option(
        "--jax-route", help="JAX conversion: jax2tf (default, TensorFlow) or litert (no TensorFlow; unstable API).")
    ] = "jax2tf",
    golden: Annotated[Path | None, typer.Option(
        help="Golden inputs (.npz with arrays named after the inputs, or .npy), stacked [N, ...]; "
             "default: seeded random inputs.")] = None,
    golden_count: Annotated[int, typer.Option(min=1, max=10000, help="How many golden pairs to store.")] = 16,
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Backends to include (repeatable); default: all the target offers.")] = None,
    board: BoardOpt = None,
    select: Annotated[str | None, typer.Option(
        "--select", help="'fastest': time each backend on this host (Linux targets whose CPU is this host's) "
                         "and record the fastest verified one as the bundle's default.")] = None,
    threads: ThreadsOpt = None,
    io_dtype: Annotated[str | None, typer.Option(
        "--io-dtype", help="Edge TPU model input/output type: int8 (default) or uint8.")] = None,
    kernels: Annotated[str | None, typer.Option(
        "--kernels", help="Cortex-M kernels: native (edgepack's C kernels; the default for quantized models) or "
                          "tvm (layers generated by Apache TVM: every layer of a float32 model, the default "
                          "there; the int8 conv, depthwise and FC layers of a quantized one).")] = None,
    fpga_arch: Annotated[str | None, typer.Option(
        "--fpga-arch", help="FPGA architecture: engine (edgepack's int8 engine), unrolled (da4ml, tiny MLPs) or "
                            "auto (default: unrolled when the graph allows it, else engine).")] = None,
    calib: CalibOpt = None,
    eval_data: EvalOpt = None,
    bits: BitsOpt = None,
    max_weights_kb: MaxWeightsOpt = None,
    max_ram_kb: MaxRamOpt = None,
    max_accuracy_drop: MaxDropOpt = None,
    report: ReportOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import MODEL, compile it for a target and write one verified bundle.

    Every backend in the bundle is run on the golden pairs before the bundle is final; the tolerance
    it met is recorded (0 LSB for the reference interpreter). With --calib, a float MODEL is quantized
    first (same options as 'edgepack quantize'); the golden inputs then default to calibration samples.

    Examples: edgepack package kws.tflite --target host -o kws.edgepack;
    edgepack package mlp.onnx -o mlp.edgepack --golden test.npz --golden-count 32;
    edgepack package kws_float.onnx --calib calib.npz --bits mixed --max-weights-kb 14 -o kws.edgepack;
    edgepack package kws.tflite --target cortex-m4 --board qemu-mps2-an386 -o kws_m4.edgepack;
    edgepack package model.py:make --example-shape 1,8,8,1 --calib calib.npz -o m.edgepack;
    edgepack package kws.tflite --target x86-64 --select fastest -o kws_x86.edgepack;
    edgepack package kws.tflite --target ice40-up5k --fpga-arch engine -o kws_fpga.edgepack
    """
    if select not in (None, "fastest"):
        raise EdgepackError(f"--select {select!r}: the only selection is 'fastest'")
    if kernels not in (None, "native", "tvm"):
        raise EdgepackError(f"--kernels {kernels!r}: choose native or tvm")
    if fpga_arch not in (None, "auto", "engine", "unrolled"):
        raise EdgepackError(f"--fpga-arch {fpga_arch!r}: choose auto, engine or unrolled")
    target_options = {k: v for k, v in (("kernels", kernels), ("fpga_arch", fpga_arch)) if v is not None}
    if select == "fastest":
        from edgepack.targets.linux.select import check_selectable

        check_selectable(target)  # before the long steps: a refused selection must leave no bundle behind
    from edgepack.packager.pipeline import package as run_package

    if output.suffix != ".edgepack":
        _warn(f"bundle file names usually end in .edgepack (got {output.name})")
    options = _quantize_options(calib, eval_data, bits, max_weights_kb, max_ram_kb, max_accuracy_drop, report)
    with _source_model(model, example_shape, jax_route) as source, \
            (_progress_bars() if options is not None else _nullbars()) as bars:
        result = run_package(source, output, target=target, golden=golden, golden_count=golden_count,
                             backends=backend or None, board=board, io_dtype=io_dtype, progress=_progress,
                             quantize=options, target_options=target_options,
                             quant_progress=bars, warn=_warn)
    m = result.manifest
    if select == "fastest":
        from edgepack.targets.linux.select import select_and_record

        m = select_and_record(result.path, threads=threads, progress=_progress)
    if m["target"] == "edgetpu":
        from edgepack.targets.edgetpu.compile import package_message

        message = package_message(result.path, m)
        if message:
            err.print(message, highlight=False, markup=False)
    if json_out:
        _print_json({"bundle": str(result.path), "manifest": m})
        return
    out.print(f"wrote {result.path} ({result.path.stat().st_size:,} bytes) for target {m['target']}")
    if m.get("selection"):
        lat = m["selection"]["latency"]
        out.print(f"  default backend {m['default_backend']} (median latency here: "
                  + ", ".join(f"{k} {v['median_ms']:.3f} ms" for k, v in lat.items()) + ")")
    q = m.get("quantization")
    if q:
        out.print(f"  quantized {q['bits']}: {q['weight_bytes']:,} weight bytes "
                  f"({q['weight_bytes'] / max(q['int8_weight_bytes'], 1):.1%} of int8)"
                  + (f", top-1 {q['accuracy']:.2%} (float {q['float_accuracy']:.2%})" if q.get("accuracy") is not None
                     else ""))
    for name, spec in m["backends"].items():
        tol = spec["tolerance"]
        out.print(f"  backend {name:12} verified on {m['golden']['count']} golden pairs, "
                  f"tolerance {tol['max_abs']} {tol['unit']}" + (f" + rtol {tol['rtol']}" if tol.get("rtol") else ""))


@app.command()
def inspect(
    bundle: Annotated[Path, typer.Argument(help="Bundle file (.edgepack).")],
    json_out: JsonOpt = False,
) -> None:
    """Show a bundle's manifest: model, target, inputs/outputs, artifacts, backends and per-layer table.

    Example: edgepack inspect kws.edgepack --json
    """
    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle) as b:
        b.verify_all()
        m = b.manifest
    if json_out:
        _print_json(m)
        return
    out.print(f"{bundle}: format {m['format_version']}, edgepack {m['edgepack_version']}, created {m['created']}")
    src = m["model"]
    out.print(f"model {src['name']} from {src['source_file']} (sha256 {src['source_sha256'][:16]}…)")
    out.print(f"target {m['target']}" + (f", board {m['board']}" if m.get("board") else ""))
    for kind in ("inputs", "outputs"):
        for t in m[kind]:
            out.print(f"  {kind[:-1]:6} {t['name']}: {t['dtype']}{t['shape']}")
    table = Table("artifact", "role", "bytes", "sha256")
    for a in m["artifacts"]:
        table.add_row(a["path"], a["role"], f"{a['size']:,}", a["sha256"][:16] + "…")
    out.print(table)
    backends = Table("backend", "artifact", "tolerance", "default")
    for name, spec in m["backends"].items():
        tol = spec.get("tolerance", {})
        backends.add_row(name, spec.get("artifact", ""), f"{tol.get('max_abs')} {tol.get('unit', '')}",
                         "yes" if name == m.get("default_backend") else "")
    out.print(backends)
    layers = Table("#", "op", "name", "w bits", "a bits", "MACs", "params")
    for i, r in enumerate(m.get("layers", [])):
        layers.add_row(str(i), r["op"], r["name"][:48], str(r["weight_bits"] or "-"), str(r["activation_bits"]),
                       f"{r['macs']:,}", f"{r['params']:,}")
    out.print(layers)
    if m.get("memory"):
        out.print(f"memory: {m['memory']}")


@app.command()
def run(
    bundle: Annotated[Path, typer.Argument(help="Bundle file (.edgepack).")],
    input: Annotated[Path, typer.Option("--input", "-i", help=(
        "Input .npy (single-input models) or .npz (arrays named after the inputs). One sample, or a stack "
        "with one more leading axis. Float values for an integer input are quantized."))],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the outputs to this .npz.")] = None,
    backend: BackendOpt = None,
    threads: ThreadsOpt = None,
    board: BoardOpt = None,
    port: PortOpt = None,
    require_accelerator: AcceleratorOpt = False,
    dequantize: Annotated[bool, typer.Option(help="Dequantize integer outputs to real values.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run a bundle on inputs from a file and print (or save) the outputs.

    With --board the inputs run on the board over the serial link (an emulated board is started and
    stopped for you; a real board needs --port and firmware flashed with 'edgepack flash').

    Examples: edgepack run kws.edgepack --input x.npy;  edgepack run kws.edgepack -i test.npz -o y.npz;
    edgepack run kws_m4.edgepack -i x.npy --board qemu-mps2-an386;  edgepack run kws_fpga.edgepack -i x.npz --board sim
    """
    import edgepack.runtime as rt
    from edgepack.runtime.tensors import read_input_file

    if output is not None and output.suffix != ".npz":  # np.savez would append .npz: another file than named
        raise EdgepackError(f"--output {output}: outputs are written as .npz", hint=f"use {output.with_suffix('.npz')}")
    if not input.is_file():  # before a backend or board is opened (read_input_file checks it again)
        raise EdgepackError(f"{input}: no such file", hint="give a .npy or .npz file")
    if board is not None or port is not None:
        if backend is not None:
            raise EdgepackError("--backend and --board both pick where the model runs",
                                hint="use --board (and --port) for a board, or --backend for this computer")
        from edgepack.runtime.bundle import Bundle
        from edgepack.runtime.tensors import TensorInfo
        from edgepack.targets.board_session import run_connected

        with Bundle.open(bundle) as b:
            infos = [TensorInfo.from_manifest(spec) for spec in b.manifest["inputs"]]
            tgt = _board_target(b.manifest)
        inputs = read_input_file(input, infos)
        with tgt.connect(bundle, board, port) as connected:
            board_run = run_connected(bundle, connected, inputs, dequantize=dequantize)
        results, where, ran = board_run.outputs, f"board {board_run.board}", {"backend": "device",
                                                                               "board": board_run.board}
        if board_run.ticks:
            err.print(f"[dim]{len(board_run.ticks)} invoke(s), median {int(np.median(board_run.ticks)):,} "
                      f"ticks at {board_run.clock_hz / 1e6:g} MHz ({connected.timing_source})[/dim]")
    else:
        with _warnings_to_stderr():
            sess = rt.load(bundle, backend=backend, threads=threads, require_accelerator=require_accelerator)
        inputs = read_input_file(input, sess.inputs)
        results, where, ran = sess.run(inputs, dequantize=dequantize), f"backend {sess.backend}", {
            "backend": sess.backend}
    err.print(f"[dim]{where}[/dim]")
    if output is not None:
        try:
            np.savez(output, **results)
        except OSError as exc:
            raise EdgepackError(f"{output}: cannot write the outputs: {exc.strerror or exc}") from exc
        err.print(f"wrote {output}")
    if json_out:
        _print_json({**ran, "outputs": results})
        return
    for name, arr in results.items():
        out.print(f"{name}: {arr.dtype}{list(arr.shape)}")
        if arr.ndim >= 2 and arr.shape[-1] > 1:
            top = arr.reshape(-1, arr.shape[-1]).argmax(axis=-1)
            out.print(f"  argmax: {top[:32].tolist()}{' …' if top.size > 32 else ''}")
        if output is None:
            with np.printoptions(threshold=64, precision=5):
                out.print(f"  {arr}")


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="Bundle file (.edgepack).")],
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Backend(s) to verify (repeatable); default: every backend available here.")] = None,
    threads: ThreadsOpt = None,
    board: BoardOpt = None,
    port: PortOpt = None,
    require_accelerator: AcceleratorOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Run the bundle's golden inputs on each backend (or on a board) and compare with the golden outputs.

    Exits with status 1 if any backend exceeds the tolerance the bundle states. With --board the golden
    pairs run on the board (bit-exact check) and the ticks per inference are reported.

    Examples: edgepack verify kws.edgepack;  edgepack verify kws.edgepack -b reference --json;
    edgepack verify kws_m4.edgepack --board qemu-mps2-an386;  edgepack verify kws_fpga.edgepack --board sim
    """
    import edgepack.runtime as rt
    from edgepack.errors import BackendUnavailableError, BundleIncompatibleError
    from edgepack.runtime.backends import BACKENDS, backend_module, needs_board
    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle) as b:
        b.verify_all()
        offered = list(b.manifest["backends"])
    if board is not None or port is not None:
        if backend:
            raise EdgepackError("--backend and --board both pick where the golden pairs run",
                                hint="use --board (and --port) for a board, or --backend for this computer")
        _verify_on_board(bundle, board, port, json_out)
        return
    names = backend or [n for n in offered if n in BACKENDS and not needs_board(n) and backend_module(n).available()]
    if not names:  # passing with nothing verified would hide the problem
        raise BackendUnavailableError(f"{bundle}: none of the bundle's backends ({', '.join(offered)}) can run here",
                                      hint="; ".join(f"{n}: {backend_module(n).missing_hint()}"
                                                     for n in offered if n in BACKENDS) or None)
    reports = []
    incompatible: dict[str, str] = {}
    for name in names:
        try:
            with _warnings_to_stderr():
                sess = rt.load(bundle, backend=name, threads=threads, require_accelerator=require_accelerator)
        except BundleIncompatibleError as exc:
            if backend:  # asked for by name: that is an error, not a skip
                raise
            incompatible[name] = exc.message  # e.g. a shared object built for another CPU
            continue
        try:
            reports.append(rt.verify(sess))
        finally:
            sess.bundle.close()
    if not reports:
        raise BackendUnavailableError(f"{bundle}: no backend of the bundle can run here: "
                                      + "; ".join(f"{k}: {v}" for k, v in incompatible.items()))
    skipped = [n for n in offered if n not in names or n in incompatible]
    if json_out:
        _print_json({"bundle": str(bundle), "passed": all(r.passed for r in reports),
                     "reports": [r.to_dict() for r in reports], "skipped": skipped})
    else:
        table = Table("backend", "output", "samples", "max |diff|", "tolerance", "top-1 agree", "result")
        for r in reports:
            for o in r.outputs:
                exact = o.unit == "lsb" and o.max_abs_diff == 0
                table.add_row(r.backend, o.name, str(r.samples),
                              "bit-exact" if exact else f"{o.max_abs_diff:.4g} {o.unit}",
                              f"{o.allowed:g} {o.unit}" + (f" + rtol {o.rtol:g}" if o.rtol else ""),
                              f"{o.top1_agreement:.1%}" if o.top1_agreement is not None else "-",
                              "[green]pass[/green]" if o.passed else "[red]FAIL[/red]")
        out.print(table)
        for n in skipped:
            if n in incompatible:
                why = incompatible[n]
            elif n in BACKENDS and needs_board(n):
                why = "runs on a board: add --board (and --port for a real board)"
            else:
                why = backend_module(n).missing_hint() if n in BACKENDS else "unknown to this edgepack version"
            err.print(f"[yellow]skipped backend {n}:[/yellow] {why}")
    if not all(r.passed for r in reports):
        raise typer.Exit(1)


def _board_target(manifest: dict[str, Any]) -> Any:
    """The bundle's target, if it has boards (EdgepackError naming the targets that do otherwise)."""
    from edgepack.targets import get_target, target_names

    tgt = get_target(manifest["target"])
    if not hasattr(tgt, "connect"):
        with_boards = [n for n in target_names() if hasattr(get_target(n), "connect")]
        raise EdgepackError(f"the bundle is for target {manifest['target']!r}, which has no boards to run on",
                            hint="use --backend for this computer; boards exist for " + ", ".join(with_boards))
    return tgt


def _verify_on_board(bundle: Path, board: str | None, port: str | None, json_out: bool) -> None:
    from edgepack.runtime.bundle import Bundle
    from edgepack.targets.board_session import verify_connected

    with Bundle.open(bundle) as b:
        tgt = _board_target(b.manifest)
    with tgt.connect(bundle, board, port) as connected:
        report = verify_connected(bundle, connected)
    if json_out:
        _print_json({"bundle": str(bundle), "passed": report.passed, "reports": [report.to_dict()], "skipped": []})
    else:
        table = Table("board", "output", "samples", "max |diff|", "top-1 agree", "result")
        for o in report.outputs:
            table.add_row(report.board, o.name, str(report.samples),
                          "bit-exact" if o.max_abs_diff == 0 else f"{o.max_abs_diff:.4g} {o.unit}",
                          f"{o.top1_agreement:.1%}" if o.top1_agreement is not None else "-",
                          "[green]pass[/green]" if o.passed else "[red]FAIL[/red]")
        out.print(table)
        instructions = report.instructions_per_inference
        timing = (f"{instructions:,} instructions per inference" if instructions is not None
                  else f"{report.ticks_per_inference:,} cycles = {report.ms_per_inference:.3f} ms per inference")
        out.print(f"{timing} ({report.timing_source}); {report.seconds:.1f} s in all, link included")
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def flash(
    bundle: Annotated[Path, typer.Argument(help="Bundle file built for a Cortex-M or FPGA target.")],
    board: BoardOpt = None,
    port: PortOpt = None,
) -> None:
    """Put the bundle's firmware (Cortex-M) or bitstream (FPGA) on a board.

    A real Cortex-M board is flashed with pyOCD, an iCE40 board with openFPGALoader; talk to it afterwards
    with --port. An emulated board (qemu-*, or sim for FPGA bundles) is started and keeps running, printing
    its serial port, until you press Ctrl-C.

    Examples: edgepack flash kws_m4.edgepack --board nucleo-l4r5zi;
    edgepack flash kws_m4.edgepack --board qemu-mps2-an386;
    edgepack flash kws_fpga.edgepack --board icebreaker;  edgepack flash kws_fpga.edgepack --board sim
    """
    import time

    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle) as b:
        tgt = _board_target(b.manifest)
    flashed = tgt.flash(bundle, board, port)
    with flashed:
        if not flashed.emulated:
            out.print(f"flashed {flashed.name}: {' '.join(flashed.command)}")
            return
        out.print(f"{flashed.name} is running the bundle; serial port {flashed.port}")
        err.print("press Ctrl-C to stop the emulator")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            err.print("stopped")


@app.command("compile-edgetpu")
def compile_edgetpu(
    bundle: Annotated[Path, typer.Argument(help="Bundle file packaged with --target edgetpu.")],
    compiler: Annotated[str, typer.Option(help="The Edge TPU compiler command.")] = "edgetpu_compiler",
    json_out: JsonOpt = False,
) -> None:
    """Compile an Edge TPU bundle's int8 model with edgetpu_compiler and add the result to the bundle.

    For bundles packaged where the compiler was missing; run it where Coral's compiler is installed.

    Example: edgepack compile-edgetpu kws_tpu.edgepack
    """
    from edgepack.targets.edgetpu.compile import compile_bundle

    m = compile_bundle(bundle, compiler=compiler)
    if json_out:
        _print_json(m)
        return
    out.print(f"compiled {bundle} with {compiler}; artifacts: " + ", ".join(a["path"] for a in m["artifacts"]))


@app.command()
def deploy(
    bundle: Annotated[Path, typer.Argument(help="Bundle file (.edgepack) for a Linux target (e.g. rpi4).")],
    ssh: Annotated[str, typer.Option("--ssh", help="The board: user@host.")],
    remote_edgepack: Annotated[str, typer.Option(
        help="The edgepack command on the board (pip install edgepack there).")] = "edgepack",
    remote_dir: Annotated[str, typer.Option(help="Folder on the board for bundles.")] = "edgepack-bundles",
    port: Annotated[int | None, typer.Option("--port", help="SSH port.")] = None,
    identity: Annotated[Path | None, typer.Option("--identity", "-i", help="SSH private key.")] = None,
    ssh_option: Annotated[list[str] | None, typer.Option(
        "--ssh-option", help="Extra ssh/scp -o option (repeatable), e.g. StrictHostKeyChecking=accept-new.")] = None,
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Backend(s) to verify on the board (repeatable); default: all available there.")
    ] = None,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy a bundle to a board over SSH and run 'edgepack verify' there.

    Examples: edgepack deploy kws_rpi4.edgepack --ssh pi@raspberrypi.local;
    edgepack deploy kws_rpi4.edgepack --ssh pi@10.0.0.5 -i ~/.ssh/id_ed25519 --backend litert
    """
    from edgepack.targets.linux.deploy import deploy as run_deploy

    result = run_deploy(bundle, ssh, remote_dir=remote_dir, remote_edgepack=remote_edgepack, port=port,
                        identity=identity, ssh_options=ssh_option or (), backends=backend or None,
                        threads=threads, progress=_progress)
    if json_out:
        _print_json({"target": result.target, "remote_path": result.remote_path, "passed": result.passed,
                     "report": result.report})
    else:
        table = Table("backend", "output", "samples", "max |diff|", "tolerance", "result")
        for r in result.report.get("reports", []):
            for o in r["outputs"]:
                table.add_row(r["backend"], o["name"], str(r["samples"]), f"{o['max_abs_diff']:.4g} {o['unit']}",
                              f"{o['allowed']:g} {o['unit']}",
                              "[green]pass[/green]" if o["passed"] else "[red]FAIL[/red]")
        out.print(f"{result.target}:{result.remote_path}")
        out.print(table)
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the edgepack version.

    Example: edgepack version
    """
    out.print(__version__)


def main() -> None:
    """Console entry point: run the app and turn known errors into one-line messages with exit code 1."""
    try:
        app()
    except EdgepackError as exc:
        if os.environ.get("EDGEPACK_DEBUG") == "1":
            raise
        # escape: messages quote user paths and tensor names, which may contain [brackets] rich reads as markup
        err.print(f"[red]Error:[/red] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"[cyan]Hint:[/cyan] {escape(exc.hint)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
