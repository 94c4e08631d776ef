"""Best-of selection: time every backend of a bundle on this host and make the fastest the default.

Steps (`select_fastest`):

1. refuse unless this host's CPU architecture is the bundle target's (an x86-64 bundle on an x86-64
   host): latency measured elsewhere says nothing about the device;
2. verify each backend on the bundle's golden pairs within the tolerance the bundle states; a backend
   that fails, or whose library is missing here, is left out with the reason;
3. time one inference of the first golden sample on every remaining backend, in blocks of `BLOCK`
   runs taken round-robin (A x10, B x10, C x10, A x10, ...) after `warmup` untimed runs each, so that a
   slow drift of the machine (clock, other load) affects every backend alike while a thread pool that
   spins after its run (onnxruntime's, TVM's) mostly delays only its own block;
4. choose the lowest median latency (ties go to the earlier backend in `BACKENDS` order).

`select_and_record` then rewrites the bundle with `default_backend` set to the choice and the
measurements under `selection` (docs/bundle-format.md §2.11). On the device, the runtime uses the
recorded default if its library is installed and otherwise falls back in the order of
`edgepack.runtime.backends.BACKENDS`.

Usage: ``manifest = select_and_record("mlp.edgepack")`` (what `edgepack package --select fastest` calls)
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.runtime.backends import BACKENDS, backend_module, needs_board
from edgepack.runtime.backends.tvm import host_arch
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.session import Session
from edgepack.runtime.verify import verify

Progress = Callable[[str], None]
DEFAULT_RUNS = 100
DEFAULT_WARMUP = 10
BLOCK = 10


def _target_arch(manifest: dict[str, Any]) -> str | None:
    from edgepack.targets.linux.boards import TARGETS

    spec = TARGETS.get(manifest.get("target", ""))
    if spec is not None:
        return spec.arch
    return host_arch() if manifest.get("target") == "host" else None


def check_selectable(target: str) -> None:
    """Raise unless latencies measured on this host say something about `target`'s CPU (call it before
    packaging, so a refused --select leaves no bundle behind)."""
    arch = _target_arch({"target": target})
    if arch != host_arch():
        raise EdgepackError(f"cannot select the fastest backend for target {target!r} "
                            f"({arch or 'unknown CPU'}) on this {host_arch()} host: latency must be measured on the "
                            "device's CPU", hint="leave out --select, or package for x86-64 on an x86-64 host")


def _percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples) * 1e3, q)), 4)


def machine() -> str:
    """A one-line description of this host, recorded with the measurements."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{host_arch()}, {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def select_fastest(bundle_path: str | os.PathLike[str], manifest: dict[str, Any] | None = None,
                   backends: Sequence[str] | None = None, runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
                   threads: int | None = None, progress: Progress | None = None
                   ) -> tuple[str, dict[str, dict[str, Any]]]:
    """(fastest backend, backend -> {median_ms, p90_ms, runs} or {rejected: reason}) on this host.

    `backends` defaults to every backend of the bundle except `reference` (the golden oracle, timed only
    when it is the bundle's only backend) and `device`. See the module docstring.

    Usage: ``name, latencies = select_fastest("mlp.edgepack")``
    """
    say = progress or (lambda msg: None)
    if manifest is None:
        with Bundle.open(bundle_path) as bundle:
            manifest = bundle.manifest
    check_selectable(str(manifest.get("target", "")))
    offered = [b for b in manifest.get("backends", {}) if b in BACKENDS and not needs_board(b)]
    # The reference interpreter is the golden oracle, not a contender, unless asked for or alone.
    names = list(backends) if backends else [b for b in offered if b != "reference"] or offered
    if not names:
        raise EdgepackError(f"{bundle_path}: no backend to select from")
    results: dict[str, dict[str, Any]] = {}
    sessions: dict[str, Session] = {}
    try:
        for name in names:
            if not backend_module(name).available():
                results[name] = {"rejected": f"not installed here: {backend_module(name).missing_hint()}"}
                continue
            sess = Session(Bundle.open(bundle_path), name, threads)
            sessions[name] = sess
            report = verify(sess)
            if not report.passed:
                worst = max(report.outputs, key=lambda o: o.max_abs_diff / max(o.allowed, 1e-30))
                results[name] = {"rejected": f"disagrees with the golden outputs: {worst.name} max |diff| "
                                             f"{worst.max_abs_diff:.4g} > {worst.allowed:g} {worst.unit}"}
                sessions.pop(name).bundle.close()
                continue
            say(f"backend {name}: verified on {report.samples} golden pairs")
        if not sessions:
            raise EdgepackError(f"{bundle_path}: no backend passed its golden check here: "
                                + "; ".join(f"{n}: {r['rejected']}" for n, r in results.items()))
        first = {}
        for name, sess in sessions.items():
            inputs, _ = sess.bundle.golden()
            first[name] = {k: v[0] for k, v in inputs.items()}
        times: dict[str, list[float]] = {n: [] for n in sessions}
        say(f"timing {len(sessions)} backend(s): {runs} runs each in blocks of {BLOCK}, after {warmup} warm-up runs")
        for name, sess in sessions.items():
            for _ in range(warmup):
                sess.run(first[name])
        while any(len(t) < runs for t in times.values()):
            for name, sess in sessions.items():
                for _ in range(min(BLOCK, runs - len(times[name]))):
                    start = time.perf_counter()
                    sess.run(first[name])
                    times[name].append(time.perf_counter() - start)
        for name, samples in times.items():
            results[name] = {"median_ms": _percentile_ms(samples, 50), "p90_ms": _percentile_ms(samples, 90),
                             "runs": len(samples)}
    finally:
        for sess in sessions.values():
            sess.bundle.close()
    order = list(BACKENDS)
    chosen = min((n for n in results if "median_ms" in results[n]),
                 key=lambda n: (results[n]["median_ms"], order.index(n)))
    return chosen, {n: results[n] for n in names if n in results}


def selection_entry(chosen: str, latencies: dict[str, dict[str, Any]], threads: int | None) -> dict[str, Any]:
    """The manifest's `selection` object (docs/bundle-format.md §2.11)."""
    measured = {n: {k: v for k, v in r.items() if k in ("median_ms", "p90_ms")}
                for n, r in latencies.items() if "median_ms" in r}
    runs = next((r["runs"] for r in latencies.values() if "runs" in r), 0)
    entry: dict[str, Any] = {"method": "fastest", "chosen": chosen, "machine": machine(), "runs": runs,
                             "threads": threads, "latency": measured}
    rejected = {n: r["rejected"] for n, r in latencies.items() if "rejected" in r}
    if rejected:
        entry["rejected"] = rejected
    return entry


def record_selection(bundle_path: str | os.PathLike[str], chosen: str, latencies: dict[str, dict[str, Any]],
                     threads: int | None = None) -> dict[str, Any]:
    """Rewrite the bundle with `default_backend = chosen` and the `selection` entry; returns the new manifest."""
    from edgepack.packager.bundle_writer import write_bundle

    path = Path(bundle_path)
    with Bundle.open(path) as bundle:
        manifest = dict(bundle.manifest)
        golden_path = (manifest.get("golden") or {}).get("artifact")
        files = [(a["path"], a["role"], bundle.artifact(a["path"])) for a in manifest["artifacts"]
                 if a["path"] != golden_path]
        gin, gout = bundle.golden() if golden_path else (None, None)
    for key in ("format_version", "edgepack_version", "artifacts", "golden"):
        manifest.pop(key, None)
    manifest["default_backend"] = chosen
    manifest["selection"] = selection_entry(chosen, latencies, threads)
    write_bundle(path, manifest, files, gin, gout)
    with Bundle.open(path) as bundle:
        return bundle.manifest


def select_and_record(bundle_path: str | os.PathLike[str], backends: Sequence[str] | None = None,
                      runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP, threads: int | None = None,
                      progress: Progress | None = None) -> dict[str, Any]:
    """`select_fastest` then `record_selection`; returns the rewritten manifest.

    Usage: ``select_and_record(result.path, progress=print)["default_backend"]``
    """
    chosen, latencies = select_fastest(bundle_path, None, backends, runs, warmup, threads, progress)
    return record_selection(bundle_path, chosen, latencies, threads)
