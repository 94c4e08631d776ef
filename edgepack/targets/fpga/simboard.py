"""The `sim` FPGA board: a bundle's board top (RTL, serial link included) under Verilator, UART on a pty.

`build_sim` verilates the top with `sim_harness/ep_sim_main.cpp` into one executable, cached under the
user's cache directory by the hash of everything that goes into it (sources, parameters, harness,
Verilator version), so a bundle verified twice is built once. `SimBoard` runs it in a directory holding
the files the design reads at start ($readmemh: program.hex, identity.hex); the harness prints the pty,
which the host opens as it opens QEMU's or a real board's port. The only difference from the bitstream is
the UART divider (`link.SIM_CLKS_PER_BIT`): a pty has no baud rate.

Usage::

    exe = build_sim(rtl_dir, ["ep_top.v", ...], "ep_top", params)
    with SimBoard(exe, rtl_dir) as sim:
        client = DeviceClient(SerialTransport(sim.port))
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgepack.errors import EdgepackError
from edgepack.targets.fpga.link import SIM_CLKS_PER_BIT
from edgepack.targets.fpga.sim import VERILATOR_HINT, verilator_command
from edgepack.targets.pty_process import PtyProcess
from edgepack.targets.user_cache import cache_dir

HARNESS = Path(__file__).parent / "sim_harness" / "ep_sim_main.cpp"
PTY_LINE = re.compile(r"ep-sim: uart on (/dev/pts/\d+)")
BUILD_TIMEOUT = 1800


def sim_cache_dir() -> Path:
    """Where built simulators are kept: edgepack's user cache directory / fpga-sim."""
    return cache_dir() / "fpga-sim"


def build_sim(rtl_dir: Path, sources: list[str], top: str, params: dict[str, int],
              progress: object = None) -> Path:
    """The simulator executable of `top` with `params` (built now, or taken from the cache)."""
    verilator = verilator_command()
    if verilator is None:
        raise EdgepackError("the sim board needs Verilator (>= 5.020)", hint=VERILATOR_HINT)
    version = subprocess.run([*verilator, "--version"], capture_output=True, text=True).stdout.strip()
    h = hashlib.sha256(json.dumps({"top": top, "params": params, "verilator": version}, sort_keys=True).encode())
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + (rtl_dir / name).read_bytes())
    h.update(HARNESS.read_bytes())
    dest = sim_cache_dir() / h.hexdigest()[:24]
    exe = dest / "ep_sim"
    if exe.is_file():
        return exe
    if callable(progress):
        progress(f"building the sim board for {top} with Verilator (once; cached in {sim_cache_dir()})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgepack-simbuild-", dir=dest.parent) as tmp:
        work = Path(tmp)
        for name in sources:
            shutil.copy(rtl_dir / name, work / name)
        cmd = [*verilator, "--cc", "--exe", "--build", "-O2", "-j", "2", "--top-module", top, "--prefix", "Vboard",
               "-Wno-fatal", "-Wno-lint", "-Wno-style", "--Mdir", "obj", "-o", "ep_sim",
               "-CFLAGS", f"-O1 -DCLKS_PER_BIT={params.get('CLKS_PER_BIT', SIM_CLKS_PER_BIT)}",
               *(f"-G{k}={v}" for k, v in sorted(params.items())), str(HARNESS), *sources]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise EdgepackError(f"building the sim board failed (verilator exit {proc.returncode}):\n{tail}")
        built = work / "obj" / "ep_sim"
        staged = work / "ep_sim"
        shutil.copy(built, staged)
        dest.mkdir(exist_ok=True)
        os.replace(staged, exe)  # atomic: a concurrent build of the same design leaves one good file
    return exe


class SimBoard(PtyProcess):
    """A running simulator; `port` is the pty of its UART. `run_dir` holds the files it reads at start."""

    what = "the FPGA simulator"

    def __init__(self, exe: Path, run_dir: Path, start_timeout: float = 30.0) -> None:
        super().__init__([str(exe)], PTY_LINE, "sim", cwd=run_dir, start_timeout=start_timeout)
