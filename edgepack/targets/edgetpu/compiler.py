"""Running `edgetpu_compiler` and reading its log.

The compiler is not on PyPI nor in Debian: Coral ships it in its own apt repository, for x86-64 Debian
derivatives only (https://coral.ai/docs/edgetpu/compiler/#system-requirements). edgepack calls it as

    edgetpu_compiler -s -o OUTDIR model.tflite

(`-s`: print the operation table; `-o`: output directory), which writes `OUTDIR/model_edgetpu.tflite` and
`OUTDIR/model_edgetpu.log`, and prints a summary such as::

    Edge TPU Compiler version 16.0.384591198
    Model compiled successfully in 1151 ms.
    ...
    On-chip memory used for caching model parameters: 3.74MiB
    On-chip memory remaining for caching model parameters: 3.04MiB
    Off-chip memory used for streaming uncached model parameters: 0.00B
    Number of Edge TPU subgraphs: 1
    Total number of operations: 72
    ...
    Number of operations that will run on Edge TPU: 71      (only when some ops run on the CPU)
    Number of operations that will run on CPU: 1
    Operator                       Count      Status
    CONV_2D                        35         Mapped to Edge TPU
    ...

`parse_log` turns that text into a `CompilerLog`; `run_compiler` runs the tool and returns the compiled
model with its parsed log.

Usage: ``result = run_compiler(tflite_bytes); result.log.mapped_ops``
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError
from edgepack.targets.edgetpu.boards import CORAL_APT

COMPILER = "edgetpu_compiler"
TIMEOUT_SECONDS = 600
INSTALL_COMMANDS = (*CORAL_APT, "sudo apt-get install edgetpu-compiler")
"""Coral's commands installing the compiler (Debian-based x86-64; https://coral.ai/docs/edgetpu/compiler/)."""

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_MEMORY = {
    "on_chip_used_bytes": "On-chip memory used for caching model parameters",
    "on_chip_remaining_bytes": "On-chip memory remaining for caching model parameters",
    "off_chip_bytes": "Off-chip memory used for streaming uncached model parameters",
}
_COUNTS = {
    "subgraphs": "Number of Edge TPU subgraphs",
    "total_ops": "Total number of operations",
    "edgetpu_ops": "Number of operations that will run on Edge TPU",
    "cpu_ops": "Number of operations that will run on CPU",
}
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*(?::\S+)?)\s+(\d+)\s+(\S.*?)\s*$")
MAPPED = "Mapped to Edge TPU"


@dataclass
class CompilerLog:
    """What one `edgetpu_compiler` run reported."""

    version: str | None = None
    success: bool = False
    compile_ms: int | None = None
    on_chip_used_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    off_chip_bytes: int | None = None
    subgraphs: int | None = None
    total_ops: int | None = None
    edgetpu_ops: int | None = None
    cpu_ops: int | None = None
    operators: list[dict[str, Any]] = field(default_factory=list)  # {op, count, status}

    @property
    def mapped_ops(self) -> int:
        """Ops mapped to the Edge TPU: the summary line when printed, else the table's 'Mapped' rows."""
        if self.edgetpu_ops is not None:
            return self.edgetpu_ops
        if self.operators:
            return sum(r["count"] for r in self.operators if r["status"] == MAPPED)
        return self.total_ops or 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (reports/edgetpu.json `compiler`)."""
        return {"version": self.version, "success": self.success, "compile_ms": self.compile_ms,
                "on_chip_used_bytes": self.on_chip_used_bytes, "on_chip_remaining_bytes": self.on_chip_remaining_bytes,
                "off_chip_bytes": self.off_chip_bytes, "subgraphs": self.subgraphs, "total_ops": self.total_ops,
                "edgetpu_ops": self.mapped_ops,
                "cpu_ops": self.cpu_ops if self.cpu_ops is not None else (self.total_ops or 0) - self.mapped_ops,
                "operators": self.operators}


def parse_size(text: str) -> int:
    """'3.74MiB' -> bytes (the compiler prints B, KiB, MiB, GiB with two decimals)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(B|KiB|MiB|GiB)\s*", text)
    if not m:
        raise ValueError(f"not a compiler size: {text!r}")
    return round(float(m.group(1)) * _UNITS[m.group(2)])


def parse_log(text: str) -> CompilerLog:
    """The fields of an `edgetpu_compiler -s` output (missing lines stay None)."""
    log = CompilerLog()
    in_table = False
    for raw in text.splitlines():
        line = raw.strip()
        if m := re.match(r"Edge TPU Compiler version (\S+)", line):
            log.version = m.group(1)
        elif m := re.match(r"Models? compiled successfully in (\d+) ms", line):
            log.compile_ms = int(m.group(1))
            log.success = True
        elif line.startswith("Operator") and "Status" in line:
            in_table = True
        elif ":" in line and not in_table:
            key, _, value = line.partition(":")
            for attr, label in _MEMORY.items():
                if key == label:
                    setattr(log, attr, parse_size(value))
            for attr, label in _COUNTS.items():
                if key == label and value.strip().isdigit():
                    setattr(log, attr, int(value))
        elif in_table and (m := _ROW.match(line)):
            log.operators.append({"op": m.group(1), "count": int(m.group(2)), "status": m.group(3)})
        elif in_table and line and not _ROW.match(line):
            in_table = line.startswith("Operator")
    if "Compilation failed" in text or "ERROR:" in text:
        log.success = False
    return log


def compiler_path(compiler: str = COMPILER) -> str | None:
    """Full path of the compiler (a name looked up on PATH, or a path), None when absent."""
    return shutil.which(compiler)


def compiler_version(compiler: str = COMPILER) -> str | None:
    """`edgetpu_compiler --version` ('16.0.384591198'), None when it does not run."""
    path = compiler_path(compiler)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_log(out).version


def missing_message(what: str = "this bundle") -> str:
    """The exact text telling how to compile elsewhere (the bundle path goes in `what`)."""
    steps = "\n".join(f"  {c}" for c in INSTALL_COMMANDS)
    return (f"{COMPILER} is not on PATH, so {what} holds the CPU-runnable int8 model (model.tflite) and the Edge TPU "
            f"analysis (reports/edgetpu.json), not a model compiled for the Edge TPU.\n"
            f"To compile it, on a Debian-based x86-64 machine install Coral's compiler:\n{steps}\n"
            f"then run:\n  edgepack compile-edgetpu {what if what != 'this bundle' else 'BUNDLE'}")


@dataclass
class CompileResult:
    """The compiled model, its log and the exact command that made it."""

    model: bytes
    log: CompilerLog
    text: str  # stdout + stderr of the compiler
    command: list[str]
    log_file: str | None = None  # OUTDIR/<stem>_edgetpu.log, when written


def run_compiler(tflite_model: bytes, compiler: str = COMPILER, name: str = "model.tflite",
                 timeout: float = TIMEOUT_SECONDS) -> CompileResult:
    """Run `compiler -s -o OUTDIR name` on `tflite_model`; EdgepackError when absent or when it fails.

    Usage: ``res = run_compiler(Path("model.tflite").read_bytes()); res.model[:8]``
    """
    path = compiler_path(compiler)
    if path is None:
        raise EdgepackError(f"{compiler} is not on PATH", hint="install it: " + "; ".join(INSTALL_COMMANDS))
    with tempfile.TemporaryDirectory(prefix="edgepack-edgetpu-") as tmp:
        src, out = Path(tmp) / name, Path(tmp) / "out"
        src.write_bytes(tflite_model)
        out.mkdir()
        cmd = [path, "-s", "-o", str(out), str(src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise EdgepackError(f"{compiler} did not finish in {timeout:.0f} s") from exc
        except OSError as exc:
            raise EdgepackError(f"{compiler} could not be started: {exc}") from exc
        text = proc.stdout + (("\n" + proc.stderr) if proc.stderr else "")
        log = parse_log(text)
        compiled = out / f"{src.stem}_edgetpu.tflite"
        if proc.returncode != 0 or not log.success or not compiled.is_file():
            tail = " | ".join(text.strip().splitlines()[-5:]) or "no output"
            why = (f"exit status {proc.returncode}" if proc.returncode else
                   "no 'Model compiled successfully' line" if not log.success else f"{compiled.name} was not written")
            raise EdgepackError(f"{compiler} failed on {name} ({why}): {tail}",
                                hint="run 'edgepack check MODEL --target edgetpu' to see the ops the Edge TPU rejects")
        log_path = out / f"{src.stem}_edgetpu.log"
        return CompileResult(compiled.read_bytes(), log, text, [compiler, "-s", "-o", "OUTDIR", name],
                             log_path.read_text(errors="replace") if log_path.is_file() else None)
