"""Implementation flows and their reports: yosys + nextpnr-ice40 + icepack (ice40-up5k), yosys synth_xilinx (xc7).

`implement_ice40(sources, top, workdir, pcf)` synthesizes with ``synth_ice40 -dsp`` (multipliers to SB_MAC16),
places and routes for the UP5K in the SG48 package with the board's pin file, packs the bitstream and
returns an `Ice40Report`: logic cells, DSPs, SPRAM, BRAM and I/O used of what the part has, and the
Fmax nextpnr reports after routing (its static timing analysis, the only timing figure without hardware).

`synth_xc7(sources, top, workdir)` runs ``synth_xilinx -family xc7`` and returns LUT/FF/DSP48E1/block-RAM
counts; there is no open place and route for 7-series, so there is no Fmax. `vivado_tcl` writes a
project script for users with Vivado.

Every figure carries its source (`source` fields), e.g. ``3,592 LCs (nextpnr-ice40 0.4)``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError

UP5K = {"lc": 5280, "dsp": 8, "spram": 4, "bram": 30, "io": 39}
ICE40_TOOLS = ("yosys", "nextpnr-ice40", "icepack")
APT_HINT = "install the open FPGA tools: apt-get install yosys nextpnr-ice40 fpga-icestorm"


def missing_tools(tools: tuple[str, ...] = ICE40_TOOLS) -> list[str]:
    """The tools of `tools` not found on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def tool_version(tool: str) -> str:
    """First line of `tool --version` (or -V for yosys), '' when absent."""
    if shutil.which(tool) is None:
        return ""
    flag = "-V" if tool == "yosys" else "--version"
    proc = subprocess.run([tool, flag], capture_output=True, text=True)
    text = (proc.stdout or proc.stderr).strip()
    m = re.search(r"(?:Yosys|Version) ([\w.+-]+)", text)
    return f"{tool} {m.group(1)}" if m else (text.splitlines()[0] if text else "")


def _run(cmd: list[str], cwd: Path, log: Path, timeout: float = 3600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    text = proc.stdout + proc.stderr
    log.write_text(text)
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-12:])
        raise EdgepackError(f"{cmd[0]} failed (exit {proc.returncode}, log {log.name}):\n{tail}")
    return text


@dataclass
class Ice40Report:
    """Resources and timing of one iCE40 UP5K implementation."""

    lcs: int
    dsps: int
    sprams: int
    brams: int
    ios: int
    fmax_mhz: float
    target_mhz: float
    tools: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=lambda: dict(UP5K))

    @property
    def fits(self) -> bool:
        """True when every resource is within the UP5K's."""
        return (self.lcs <= UP5K["lc"] and self.dsps <= UP5K["dsp"] and self.sprams <= UP5K["spram"]
                and self.brams <= UP5K["bram"])

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with the source of the figures."""
        return dict(asdict(self), fits=self.fits, source=f"{self.tools.get('nextpnr-ice40', 'nextpnr-ice40')} --up5k")

    def text(self) -> str:
        """A few report lines."""
        src = f"({self.tools.get('nextpnr-ice40', 'nextpnr-ice40')} --up5k)"
        return "\n".join([
            f"logic cells {self.lcs:,} / {UP5K['lc']:,} {src}",
            f"DSP (SB_MAC16) {self.dsps} / {UP5K['dsp']}",
            f"SPRAM (SB_SPRAM256KA) {self.sprams} / {UP5K['spram']}",
            f"BRAM (SB_RAM40_4K) {self.brams} / {UP5K['bram']}",
            f"I/O {self.ios}",
            f"Fmax {self.fmax_mhz:.2f} MHz after routing {src}",
        ])


def _util(text: str, cell: str) -> int:
    m = re.findall(rf"{cell}:\s+(\d+)/\s*(\d+)", text)
    return int(m[-1][0]) if m else 0


def implement_ice40(sources: list[Path], top: str, workdir: Path, pcf: Path | None, target_mhz: float = 12.0,
                    package: str = "sg48", defines: dict[str, str] | None = None, seed: int = 1) -> Ice40Report:
    """yosys synth_ice40 + nextpnr-ice40 --up5k + icepack in `workdir`: top.json, top.asc, top.bin and logs."""
    missing = missing_tools()
    if missing:
        raise EdgepackError(f"cannot build the iCE40 bitstream: {', '.join(missing)} not found", hint=APT_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    params = "".join(f"chparam -set {k} {v} {top}; " for k, v in (defines or {}).items())
    script = (f"read_verilog {' '.join(str(s) for s in sources)}; {params}"
              f"synth_ice40 -dsp -top {top} -json top.json; tee -o yosys_stat.txt stat")
    _run(["yosys", "-q", "-p", script], workdir, workdir / "yosys.log")
    cmd = ["nextpnr-ice40", "--up5k", "--package", package, "--json", "top.json", "--asc", "top.asc",
           "--freq", f"{target_mhz:g}", "--seed", str(seed)]
    if pcf is not None:
        cmd += ["--pcf", str(pcf)]
    log = _run(cmd, workdir, workdir / "nextpnr.log")
    _run(["icepack", "top.asc", "top.bin"], workdir, workdir / "icepack.log")
    fmax = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz", log)
    return Ice40Report(lcs=_util(log, "ICESTORM_LC"), dsps=_util(log, "ICESTORM_DSP"),
                       sprams=_util(log, "ICESTORM_SPRAM"), brams=_util(log, "ICESTORM_RAM"),
                       ios=_util(log, "SB_IO"), fmax_mhz=float(fmax[-1]) if fmax else 0.0, target_mhz=target_mhz,
                       tools={"yosys": tool_version("yosys"), "nextpnr-ice40": tool_version("nextpnr-ice40")})


@dataclass
class Xc7Report:
    """Cell counts of `yosys synth_xilinx -family xc7` (no place and route, so no timing)."""

    luts: int
    ffs: int
    dsps: int
    bram36: int
    bram18: int
    carry4: int
    tools: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with the source of the figures."""
        return dict(asdict(self), source=f"{self.tools.get('yosys', 'yosys')} synth_xilinx -family xc7")

    def text(self) -> str:
        """A few report lines."""
        return (f"LUTs {self.luts:,}, FFs {self.ffs:,}, DSP48E1 {self.dsps}, RAMB36E1 {self.bram36}, "
                f"RAMB18E1 {self.bram18}, CARRY4 {self.carry4} ({self.tools.get('yosys', 'yosys')} synth_xilinx "
                "-family xc7; no timing without Vivado)")


def synth_xc7(sources: list[Path], top: str, workdir: Path, defines: dict[str, str] | None = None) -> Xc7Report:
    """yosys synth_xilinx -family xc7 on `sources`; returns the cell counts."""
    if shutil.which("yosys") is None:
        raise EdgepackError("cannot estimate xc7 resources: yosys not found", hint="apt-get install yosys")
    workdir.mkdir(parents=True, exist_ok=True)
    params = "".join(f"chparam -set {k} {v} {top}; " for k, v in (defines or {}).items())
    script = (f"read_verilog {' '.join(str(s) for s in sources)}; {params}"
              f"synth_xilinx -family xc7 -top {top}; tee -o yosys_stat.txt stat")
    _run(["yosys", "-q", "-p", script], workdir, workdir / "yosys_xc7.log")
    stat = (workdir / "yosys_stat.txt").read_text()

    def count(pattern: str) -> int:
        rows = re.findall(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.M)
        return sum(int(n) for name, n in rows if re.fullmatch(pattern, name))

    return Xc7Report(luts=count(r"LUT[1-6]"), ffs=count(r"FD[CPRSE]+"), dsps=count(r"DSP48E1"),
                     bram36=count(r"RAMB36E1"), bram18=count(r"RAMB18E1"), carry4=count(r"CARRY4"),
                     tools={"yosys": tool_version("yosys")})


def vivado_tcl(sources: list[str], top: str, part: str = "xc7a35tcpg236-1", clock_mhz: float = 100.0,
               generics: dict[str, str] | None = None) -> str:
    """A Vivado non-project batch script: read the RTL, synthesize, implement, write reports and a bitstream.

    Usage: ``vivado -mode batch -source build.tcl`` in the bundle's rtl/ directory.
    """
    period = 1000.0 / clock_mhz
    gen = " ".join(f"-generic {k}={v}" for k, v in (generics or {}).items())
    lines = ["# Generated by edgepack. Run: vivado -mode batch -source build.tcl (from this directory)",
             f"set part {part}", "file mkdir out"]
    lines += [f"read_verilog {s}" for s in sources]
    lines += [f"synth_design -top {top} -part $part {gen}".rstrip(),
              f"create_clock -period {period:.3f} -name clk [get_ports clk]",
              "opt_design", "place_design", "route_design",
              "report_utilization -file out/utilization.txt",
              "report_timing_summary -file out/timing.txt",
              "write_bitstream -force out/top.bit", ""]
    return "\n".join(lines)
