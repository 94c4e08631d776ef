"""The `edgepack` command line: parses arguments and calls the modules; nothing else.

Results go to stdout (a table, or JSON with --json); progress, warnings and errors go to stderr.
Known errors exit with status 1 and one line (plus a hint); EDGEPACK_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import json
import os
import sys
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
         "Typical flow: edgepack check MODEL; edgepack package MODEL --target host -o M.edgepack; "
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


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _progress(message: str) -> None:
    err.print(f"[dim]… {escape(message)}[/dim]")


@app.command()
def targets(json_out: JsonOpt = False) -> None:
    """List the targets and boards edgepack knows, with their constraints.

    Example: edgepack targets --json
    """
    from edgepack.targets import get_target, target_names

    rows = []
    for name in target_names():
        t = get_target(name)
        rows.append({"target": name, "description": t.description,
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


@app.command()
def check(
    model: Annotated[Path, typer.Argument(help="Model file (.tflite or .onnx).")],
    target: TargetOpt = "host",
    json_out: JsonOpt = False,
) -> None:
    """Import MODEL and list its ops, shapes, MACs and parameters, and every unsupported op at once.

    Exits with status 1 when anything is unsupported.

    Examples: edgepack check kws.tflite;  edgepack check model.onnx --json
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
            issues = get_target(target).check(graph).issues
            report.update(
                target=target,
                inputs=[tensor_spec(graph, n) for n in graph.inputs],
                outputs=[tensor_spec(graph, n) for n in graph.outputs],
                layers=[dict(row, output_shape=list(graph.tensor(n.outputs[0]).shape))
                        for row, n in zip(layers, graph.nodes, strict=True)],
                total_macs=sum(r["macs"] for r in layers), total_params=graph.param_count(),
                target_issues=[{"node": i.node, "op": i.op, "reason": i.reason} for i in issues],
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
    for u in report["unsupported"]:
        err.print("[red]unsupported:[/red] " + escape(f"{u['op']} x{u['count']} (first: {u.get('first_node')}): "
                                                        f"{u['reason']}"))


@app.command()
def package(
    model: Annotated[Path, typer.Argument(help="Model file (.tflite or .onnx).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle file to write (NAME.edgepack).")],
    target: TargetOpt = "host",
    golden: Annotated[Path | None, typer.Option(
        help="Golden inputs (.npz with arrays named after the inputs, or .npy), stacked [N, ...]; "
             "default: seeded random inputs.")] = None,
    golden_count: Annotated[int, typer.Option(min=1, max=10000, help="How many golden pairs to store.")] = 16,
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Backends to include (repeatable); default: all the target offers.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Import MODEL, compile it for a target and write one verified bundle.

    Every backend in the bundle is run on the golden pairs before the bundle is final; the tolerance
    it met is recorded (0 LSB for the reference interpreter).

    Examples: edgepack package kws.tflite --target host -o kws.edgepack;
    edgepack package mlp.onnx -o mlp.edgepack --golden test.npz --golden-count 32
    """
    from edgepack.packager.pipeline import package as run_package

    if output.suffix != ".edgepack":
        err.print(f"[yellow]warning:[/yellow] bundle file names usually end in .edgepack (got {output.name})")
    result = run_package(model, output, target=target, golden=golden, golden_count=golden_count,
                         backends=backend or None, progress=_progress)
    m = result.manifest
    if json_out:
        _print_json({"bundle": str(result.path), "manifest": m})
        return
    out.print(f"wrote {result.path} ({result.path.stat().st_size:,} bytes) for target {m['target']}")
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
    dequantize: Annotated[bool, typer.Option(help="Dequantize integer outputs to real values.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run a bundle on inputs from a file and print (or save) the outputs.

    Examples: edgepack run kws.edgepack --input x.npy;  edgepack run kws.edgepack -i test.npz -o y.npz
    """
    import edgepack.runtime as rt
    from edgepack.runtime.tensors import read_input_file

    sess = rt.load(bundle, backend=backend, threads=threads)
    inputs = read_input_file(input, sess.inputs)
    err.print(f"[dim]backend {sess.backend}[/dim]")
    results = sess.run(inputs, dequantize=dequantize)
    if output is not None:
        try:
            np.savez(output, **results)
        except OSError as exc:
            raise EdgepackError(f"{output}: cannot write the outputs: {exc.strerror or exc}") from exc
        err.print(f"wrote {output}")
    if json_out:
        _print_json({"backend": sess.backend, "outputs": results})
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
    json_out: JsonOpt = False,
) -> None:
    """Run the bundle's golden inputs on each backend and compare with the golden outputs.

    Exits with status 1 if any backend exceeds the tolerance the bundle states.

    Examples: edgepack verify kws.edgepack;  edgepack verify kws.edgepack -b reference --json
    """
    import edgepack.runtime as rt
    from edgepack.errors import BackendUnavailableError
    from edgepack.runtime.backends import BACKENDS, backend_module
    from edgepack.runtime.bundle import Bundle

    with Bundle.open(bundle) as b:
        b.verify_all()
        offered = list(b.manifest["backends"])
    names = backend or [n for n in offered if n in BACKENDS and backend_module(n).available()]
    if not names:  # passing with nothing verified would hide the problem
        raise BackendUnavailableError(f"{bundle}: none of the bundle's backends ({', '.join(offered)}) can run here",
                                      hint="; ".join(f"{n}: {backend_module(n).missing_hint()}"
                                                     for n in offered if n in BACKENDS) or None)
    reports = []
    for name in names:
        sess = rt.load(bundle, backend=name, threads=threads)
        try:
            reports.append(rt.verify(sess))
        finally:
            sess.bundle.close()
    skipped = [n for n in offered if n not in names]
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
            why = backend_module(n).missing_hint() if n in BACKENDS else "unknown to this edgepack version"
            err.print(f"[yellow]skipped backend {n}:[/yellow] {why}")
    if not all(r.passed for r in reports):
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
