"""Run and verify a bundle on a connected board: the part every board family shares.

A family (Cortex-M in mcu/flash.py, FPGA in fpga/boards.py) knows how to reach its boards: it returns a
`BoardConnection` (an emulator it started, or a real board on a port). From there the session is the
same for all: the serial protocol's client, the identity check against the bundle, inputs and outputs
as the bundle describes them (`edgepack.runtime.backends.device`), and the comparison with the golden
outputs.

Usage::

    with connect(bundle, "sim", None) as board:           # the family's connect()
        report = verify_connected(bundle, board)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.runtime.backends.device import BoardSession, open_board_session
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.serial_protocol import SerialTransport, Transport
from edgepack.runtime.verify import VerifyReport, compare


@dataclass
class BoardConnection:
    """A board running the bundle's design or firmware, reachable over its UART: what every family's
    connection shares (the board, its port, the command that started or flashed it, an emulator this
    connection started, a PtyProcess stopped by `close`, and its temporary files). A family adds
    `timing_source` and, when ticks convert to instructions (QEMU -icount), `counts_instructions`."""

    board: Any  # the family's board spec: has .name and .emulated
    port: str | None
    command: list[str] = field(default_factory=list)
    emulator: Any = None
    _tmp: Any = None  # tempfile.TemporaryDirectory holding extracted firmware / simulator files
    port_example = "/dev/ttyACM0"  # for the hint when no port is known
    counts_instructions = False  # ticks convert to instructions (QEMU -icount), not only to time

    @property
    def name(self) -> str:
        """The board's name."""
        return str(self.board.name)

    @property
    def emulated(self) -> bool:
        """True for an emulated board (QEMU, the RTL simulator)."""
        return bool(self.board.emulated)

    def transport(self, baud: int = 115_200) -> SerialTransport:
        """A serial transport to the board's UART (EdgepackError when no port is known)."""
        if self.port is None:
            raise EdgepackError(f"board {self.name}: no serial port to talk to",
                                hint=f"pass --port, e.g. --board {self.name} --port {self.port_example}")
        return SerialTransport(self.port, baud)

    @property
    def timing_source(self) -> str:
        """Where the ticks come from, e.g. 'SysTick under qemu -icount shift=0, mps2-an386'."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the emulator this connection started and remove its files; safe to call twice."""
        if self.emulator is not None:
            self.emulator.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class BoardReport(VerifyReport):
    """`VerifyReport` of a board, with the ticks of every invoke.

    On a QEMU board (`-icount shift=0`) one tick is 1e9 / clock_hz instructions, so the instruction count
    is exact; on an FPGA (simulated or real) a tick is a clock cycle; on a real MCU ticks / clock_hz is time.
    """

    board: str = ""
    clock_hz: int = 0
    emulated: bool = False
    ticks: list[int] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run, link included
    timing_source: str = ""
    counts_instructions: bool = False

    @property
    def ticks_per_inference(self) -> int:
        """Median ticks of one invoke."""
        return int(statistics.median(self.ticks)) if self.ticks else 0

    @property
    def instructions_per_inference(self) -> int | None:
        """Instructions of one invoke (QEMU boards only; None elsewhere)."""
        if not self.counts_instructions or not self.clock_hz:
            return None
        return round(self.ticks_per_inference * 1e9 / self.clock_hz)

    @property
    def ms_per_inference(self) -> float | None:
        """ticks / clock_hz in milliseconds (on an emulator: the time the real board would take)."""
        return self.ticks_per_inference / self.clock_hz * 1e3 if self.clock_hz else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: VerifyReport's plus board, ticks and instructions per inference."""
        return dict(super().to_dict(), board=self.board, clock_hz=self.clock_hz, emulated=self.emulated,
                    ticks_per_inference=self.ticks_per_inference,
                    instructions_per_inference=self.instructions_per_inference,
                    ms_per_inference=self.ms_per_inference, timing_source=self.timing_source,
                    seconds=round(self.seconds, 3))


@dataclass
class BoardRun:
    """Outputs of a run on a board (stacked like the inputs) and the ticks of every invoke."""

    outputs: dict[str, np.ndarray]
    board: str
    clock_hz: int
    emulated: bool
    ticks: list[int]


def _session(bundle: Bundle, transport: Transport,
             transport_wrapper: Callable[[Transport], Transport] | None) -> BoardSession:
    return open_board_session(bundle, transport_wrapper(transport) if transport_wrapper else transport)


@dataclass
class _GoldenRun:
    outputs: dict[str, np.ndarray]
    want: dict[str, np.ndarray]
    tolerance: dict[str, Any]
    output_names: list[str]
    ticks: list[int]
    clock_hz: int


def _run_golden_inputs(bundle_path: str | Path, board: BoardConnection,
                       transport_wrapper: Callable[[Transport], Transport] | None = None) -> _GoldenRun:
    """The bundle's golden inputs through a session on `board`."""
    with Bundle.open(bundle_path) as bundle:
        transport = board.transport()
        try:
            session = _session(bundle, transport, transport_wrapper)
            inputs, want = bundle.golden()
            got = session.run(inputs)
            return _GoldenRun(got, want, dict(session.tolerance), [t.name for t in session.outputs],
                              list(session.device.ticks), session.device.info.clock_hz)
        finally:
            transport.close()


def run_connected(bundle_path: str | Path, board: BoardConnection, inputs: Any, dequantize: bool = False,
                  transport_wrapper: Callable[[Transport], Transport] | None = None) -> BoardRun:
    """Run `inputs` (as `Session.run` takes them) on a connected board."""
    with Bundle.open(bundle_path) as bundle:
        transport = board.transport()
        try:
            session = _session(bundle, transport, transport_wrapper)
            outputs = session.run(inputs, dequantize=dequantize)
            info = session.device.info
            return BoardRun(outputs, board.name, info.clock_hz, board.emulated, list(session.device.ticks))
        finally:
            transport.close()


def verify_connected(bundle_path: str | Path, board: BoardConnection,
                     transport_wrapper: Callable[[Transport], Transport] | None = None) -> BoardReport:
    """Every golden input on a connected board, compared with the golden outputs at the device tolerance."""
    t0 = time.perf_counter()
    run = _run_golden_inputs(bundle_path, board, transport_wrapper)
    tol = run.tolerance
    checks = [compare(name, run.outputs[name], run.want[name], float(tol.get("max_abs", 0)),
                      float(tol.get("rtol", 0))) for name in run.output_names]
    return BoardReport("device", int(next(iter(run.want.values())).shape[0]), checks, board=board.name,
                       clock_hz=run.clock_hz, emulated=board.emulated, ticks=run.ticks,
                       seconds=time.perf_counter() - t0, timing_source=board.timing_source,
                       counts_instructions=board.counts_instructions)


def golden_on_emulator(bundle_path: str | Path, board: BoardConnection, progress: Callable[[str], None]
                       ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Packaging step: the golden inputs on an emulated board, required bit-exact for integer outputs;
    returns the outputs and the `measured` fields of the manifest's device entry."""
    progress(f"running the golden pairs on {board.name} (emulated)")
    t0 = time.perf_counter()
    run = _run_golden_inputs(bundle_path, board)
    got, ticks, clock = run.outputs, run.ticks, run.clock_hz
    for name, w in run.want.items():  # integer-exact designs: any difference is a bug, not a tolerance
        if w.dtype.kind in "iu" and not np.array_equal(got[name], w):
            bad = np.flatnonzero((got[name] != w).reshape(len(w), -1).any(axis=1))
            raise EdgepackError(f"{board.name} differs from the golden model on output {name!r} in "
                                f"{len(bad)} of {len(w)} golden samples (first: sample {bad[0]})",
                                hint="this is an edgepack bug; please report it with the model, or leave "
                                     "the device backend out with --backend reference")
    median = int(statistics.median(ticks))
    measured: dict[str, Any] = {"board": board.name, "samples": len(ticks), "ticks_per_inference": median,
                                "source": board.timing_source, "seconds": round(time.perf_counter() - t0, 2)}
    if board.counts_instructions:
        measured["instructions_per_inference"] = round(median * 1e9 / clock)
    return got, {"measured": measured}
