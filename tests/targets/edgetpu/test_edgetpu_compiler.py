"""The compile step: `edgetpu_compiler` invocation and log parsing (with the stand-in on PATH), the exact
messages without it, and `compile_bundle` finishing a bundle later (`edgepack compile-edgetpu BUNDLE`)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from edgetpu_helpers import KWS_INT8, need

from edgepack.errors import EdgepackError
from edgepack.packager.pipeline import package
from edgepack.runtime import load
from edgepack.runtime.backends.edgetpu import AcceleratorUnavailableError, EdgeTpuFallbackWarning
from edgepack.runtime.bundle import Bundle
from edgepack.targets.edgetpu.compile import COMPILED_PATH, compile_bundle, package_message
from edgepack.targets.edgetpu.compiler import parse_log, parse_size, run_compiler

LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 731 ms.

Input model: net.tflite
Input size: 2.10MiB
Output model: net_edgetpu.tflite
Output size: 2.31MiB
On-chip memory used for caching model parameters: 1.50MiB
On-chip memory remaining for caching model parameters: 5.25MiB
Off-chip memory used for streaming uncached model parameters: 12.00KiB
Number of Edge TPU subgraphs: 1
Total number of operations: 20
Operation log: net_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will \
instead run on the CPU, which is slower.
Number of operations that will run on Edge TPU: 17
Number of operations that will run on CPU: 3

Operator                       Count      Status

CONV_2D                        15         Mapped to Edge TPU
QUANTIZE                       2          Mapped to Edge TPU
HARD_SWISH                     1          Operation not supported
CONV_2D                        2          More than one subgraph is not supported
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def test_parse_log() -> None:
    """Every field of a compiler-16 log with a partial mapping, sizes in bytes."""
    log = parse_log(LOG)
    assert (log.version, log.success, log.compile_ms) == ("16.0.384591198", True, 731)
    assert (log.on_chip_used_bytes, log.on_chip_remaining_bytes, log.off_chip_bytes) == (
        1_572_864, 5_505_024, 12_288)
    assert (log.subgraphs, log.total_ops, log.mapped_ops, log.cpu_ops) == (1, 20, 17, 3)
    assert log.operators[2] == {"op": "HARD_SWISH", "count": 1, "status": "Operation not supported"}
    assert len(log.operators) == 4 and log.to_dict()["edgetpu_ops"] == 17
    assert parse_size("0.00B") == 0 and parse_size("33.25KiB") == 34_048


def _package_kws(out: Path, **kwargs) -> dict:
    return package(need(KWS_INT8), out, target="edgetpu", golden_count=4, **kwargs).manifest


def test_package_runs_the_compiler_and_parses_its_log(standin_compiler: Path, tmp_path: Path) -> None:
    """With edgetpu_compiler on PATH, packaging runs `edgetpu_compiler -s -o OUTDIR model.tflite` and the bundle
    holds model_edgetpu.tflite, the compiler's log and its parsed figures; backend edgetpu points at it."""
    m = _package_kws(tmp_path / "kws.edgepack")
    (call,) = standin_compiler.read_text().splitlines()
    flag_s, flag_o, outdir, model = call.split()
    assert (flag_s, flag_o, Path(model).name, Path(outdir).name) == ("-s", "-o", "model.tflite", "out")
    paths = {a["path"]: a["role"] for a in m["artifacts"]}
    assert paths[COMPILED_PATH] == "edgetpu" and paths["reports/edgetpu_compiler.log"] == "report"
    assert m["backends"]["edgetpu"]["artifact"] == COMPILED_PATH and "note" not in m["backends"]["edgetpu"]
    with Bundle.open(tmp_path / "kws.edgepack") as b:
        doc = json.loads(b.artifact("reports/edgetpu.json"))
        summary = b.artifact("reports/edgetpu.txt").decode()
    c = doc["compiler"]
    assert c["command"] == ["edgetpu_compiler", "-s", "-o", "OUTDIR", "model.tflite"]
    assert (c["version"], c["total_ops"], c["edgetpu_ops"], c["cpu_ops"], c["subgraphs"]) == (
        "16.0.384591198", 13, 13, 0, 1)
    assert (c["on_chip_used_bytes"], c["off_chip_bytes"]) == (34_048, 0)
    assert "edgetpu_compiler 16.0.384591198: 13 of 13 ops mapped to the Edge TPU" in summary
    assert package_message(tmp_path / "kws.edgepack", m) is None
    # The compiled model is here but libedgetpu is not: the CPU model runs, with a warning naming the library.
    if os.path.exists("/usr/lib/x86_64-linux-gnu/libedgetpu.so.1"):
        pytest.skip("libedgetpu is installed here")
    with pytest.warns(EdgeTpuFallbackWarning, match=r"runs on the CPU: libedgetpu\.so\.1 could not be loaded"):
        sess = load(tmp_path / "kws.edgepack", backend="edgetpu")
    inputs, want = sess.bundle.golden()
    assert abs(sess.run(inputs)["Identity"].astype(int) - want["Identity"]).max() <= \
        m["backends"]["edgetpu"]["tolerance"]["max_abs"]


def test_partial_mapping_and_failure(standin_compiler: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parsed log reports ops left on the CPU; a failing compiler is an error quoting the end of its output."""
    blob = need(KWS_INT8).read_bytes()
    monkeypatch.setenv("EDGETPU_STANDIN_MODE", "partial")
    res = run_compiler(blob)
    assert (res.log.total_ops, res.log.mapped_ops, res.log.cpu_ops) == (13, 12, 1)
    assert res.log.operators[-1]["status"] == "Operation is working on an unsupported data type"
    monkeypatch.setenv("EDGETPU_STANDIN_MODE", "fail")
    with pytest.raises(EdgepackError) as info:
        run_compiler(blob)
    assert info.value.message.startswith("edgetpu_compiler failed on model.tflite (exit status 1): ")
    assert "Didn't find op for builtin opcode 'HARD_SWISH'" in info.value.message


EXPECTED = """edgetpu_compiler is not on PATH, so {b} holds the CPU-runnable int8 model (model.tflite) and \
the Edge TPU analysis (reports/edgetpu.json), not a model compiled for the Edge TPU.
To compile it, on a Debian-based x86-64 machine install Coral's compiler:
  curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -
  echo "deb https://packages.cloud.google.com/apt coral-edgetpu-stable main" | sudo tee \
/etc/apt/sources.list.d/coral-edgetpu.list
  sudo apt-get update
  sudo apt-get install edgetpu-compiler
then run:
  edgepack compile-edgetpu {b}"""


def test_without_the_compiler_the_messages_are_exact(no_compiler: None, tmp_path: Path) -> None:
    """No compiler: the bundle keeps the CPU model + analysis, says so in the manifest and in what package prints."""
    out = tmp_path / "kws.edgepack"
    m = _package_kws(out)
    assert COMPILED_PATH not in {a["path"] for a in m["artifacts"]}
    assert m["backends"]["edgetpu"]["artifact"] == "model.tflite"
    assert m["backends"]["edgetpu"]["note"] == (
        "not compiled for the Edge TPU (edgetpu_compiler is not on PATH): runs model.tflite on the CPU until "
        "'edgepack compile-edgetpu BUNDLE' adds model_edgetpu.tflite")
    assert package_message(out, m) == EXPECTED.format(b=out)
    with Bundle.open(out) as b:
        doc = json.loads(b.artifact("reports/edgetpu.json"))
    assert doc["compiler"] is None and doc["not_compiled"] == "edgetpu_compiler is not on PATH"
    assert doc["compile_elsewhere"]["then"] == "edgepack compile-edgetpu BUNDLE"
    with pytest.raises(EdgepackError) as info:
        compile_bundle(out)
    assert info.value.message == f"edgetpu_compiler is not on PATH; cannot compile {out} here"
    assert info.value.hint.startswith("on a Debian-based x86-64 machine: curl https://packages.cloud.google.com/")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeTpuFallbackWarning)
        with pytest.raises(AcceleratorUnavailableError, match="the Edge TPU cannot be used here: the bundle has no "
                                                              "model compiled for the Edge TPU"):
            from edgepack.runtime.backends.edgetpu import load as load_edgetpu

            with Bundle.open(out) as b:
                load_edgetpu(b, None, None, require_accelerator=True)


def test_compile_bundle_later(standin_compiler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`compile_bundle` (edgepack compile-edgetpu) adds the compiled model to a bundle packaged without the
    compiler, atomically, keeping every other artifact and the golden pairs."""
    out = tmp_path / "kws.edgepack"
    path_with_standin = os.environ["PATH"]
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    before = _package_kws(out)
    monkeypatch.setenv("PATH", path_with_standin)
    after = compile_bundle(out)
    assert standin_compiler.read_text().count("-s -o ") == 1
    kept = {a["path"]: a["sha256"] for a in before["artifacts"] if not a["path"].startswith("reports/")}
    assert kept.items() <= {a["path"]: a["sha256"] for a in after["artifacts"]}.items()
    e = after["backends"]["edgetpu"]
    assert e["artifact"] == COMPILED_PATH and "note" not in e and e["tolerance"] == before["backends"]["edgetpu"][
        "tolerance"]
    assert e["verified_on"].startswith("LiteRT CPU on model.tflite while packaging; model_edgetpu.tflite added by "
                                       "edgetpu_compiler 16.0.384591198")
    assert after["tools"]["edgetpu_compiler"] == "16.0.384591198" and after["golden"]["count"] == 4
    assert package_message(out, after) is None
    with Bundle.open(out) as b:
        b.verify_all()
        assert json.loads(b.artifact("reports/edgetpu.json"))["compiler"]["edgetpu_ops"] == 13
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".kws*"))
