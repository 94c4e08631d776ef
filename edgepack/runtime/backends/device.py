"""Backend `device`: run a bundle's model on a board (real, or QEMU-emulated) over the serial protocol.

A board needs a transport, which `load(bundle, artifact, threads)` cannot name, so the entry points are
`open_session(manifest, transport)` (the backend session) and `open_board_session(bundle, transport)` (a full
`Session`, usable with `edgepack.runtime.verify.verify`). Both refuse a board whose firmware was built from a
different model (IDENTIFY's model sha256 against the manifest's model.source_sha256).

Usage::

    with Bundle.open("kws.edgepack") as bundle:
        session = open_board_session(bundle, SerialTransport("/dev/ttyACM0"))
        report = verify(session)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgepack.errors import BundleIncompatibleError, EdgepackError
from edgepack.runtime.bundle import Bundle
from edgepack.runtime.serial_protocol import DeviceClient, DeviceInfo, Transport
from edgepack.runtime.session import Session
from edgepack.runtime.tensors import TensorInfo

NAME = "device"
# `load` cannot open this backend: callers (the CLI, the packager) open it with a board and a port.
NEEDS_BOARD = True


def available() -> bool:
    """True when pyserial imports (the transport to real boards and QEMU's pty)."""
    try:
        import serial  # noqa: F401
    except ImportError:
        return False
    return True


def missing_hint() -> str:
    """What to install."""
    return "pip install pyserial"


def _le(dtype: str) -> np.dtype:
    return np.dtype(dtype).newbyteorder("<")


def nbytes(infos: list[TensorInfo]) -> int:
    """Bytes of the tensors concatenated (graph order, as the firmware's buffers)."""
    return sum(int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize for t in infos)


def pack(infos: list[TensorInfo], values: Mapping[str, np.ndarray]) -> bytes:
    """Concatenate one sample of each tensor, little endian, in the given order."""
    parts = []
    for t in infos:
        arr = np.asarray(values[t.name])
        if arr.shape != t.shape:
            raise EdgepackError(f"input {t.name!r}: expected shape {list(t.shape)}, got {list(arr.shape)}")
        parts.append(np.ascontiguousarray(arr, dtype=_le(t.dtype)).tobytes())
    return b"".join(parts)


def unpack(infos: list[TensorInfo], data: bytes) -> dict[str, np.ndarray]:
    """Split concatenated little-endian bytes into arrays of the tensors' shapes and (native) dtypes."""
    out, pos = {}, 0
    for t in infos:
        count = int(np.prod(t.shape, dtype=np.int64))
        arr = np.frombuffer(data, dtype=_le(t.dtype), count=count, offset=pos)
        out[t.name] = arr.astype(t.dtype).reshape(t.shape)
        pos += count * arr.itemsize
    return out


class DeviceSession:
    """Backend session on a board: `run({name: array}) -> {name: array}` for one sample.

    `last_ticks` holds the core clock ticks of the last invoke (SysTick; with QEMU -icount shift=0,
    instructions = ticks * 1e9 / info.clock_hz) and `ticks` those of every invoke, in order.
    """

    def __init__(self, client: DeviceClient, inputs: list[TensorInfo], outputs: list[TensorInfo]) -> None:
        self.client = client
        self.inputs = inputs
        self.outputs = outputs
        self.info: DeviceInfo = client.info if client.info is not None else client.identify()
        self.last_ticks: int | None = None
        self.ticks: list[int] = []

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference on the board."""
        data, result = self.client.run(pack(self.inputs, inputs))
        self.last_ticks = result.ticks
        self.ticks.append(result.ticks)
        return unpack(self.outputs, data)


def check_identity(info: DeviceInfo, manifest: Mapping[str, Any], inputs: list[TensorInfo],
                   outputs: list[TensorInfo]) -> None:
    """Refuse a board whose firmware holds another model, or whose buffers do not fit the bundle's tensors."""
    model = manifest.get("model", {})
    want = str(model.get("source_sha256", "")).lower()
    if info.model_sha256.lower() != want:
        raise BundleIncompatibleError(
            f"board {info.board} runs model {info.model_name!r} (sha256 {info.model_sha256[:12]}…), "
            f"but the bundle is for {model.get('name', '?')!r} (sha256 {want[:12]}…)",
            hint="flash the firmware built from this bundle onto the board, then retry")
    for what, got, expected in (("input", info.input_bytes, nbytes(inputs)),
                                ("output", info.output_bytes, nbytes(outputs))):
        if got != expected:
            raise BundleIncompatibleError(f"board {info.board}: firmware {what} buffer is {got} bytes, "
                                          f"the bundle's {what}s need {expected}")


def open_session(manifest: Mapping[str, Any], transport: Transport, retries: int = 3) -> DeviceSession:
    """A backend session over `transport`, after checking the board runs this manifest's model."""
    inputs = [TensorInfo.from_manifest(s) for s in manifest["inputs"]]
    outputs = [TensorInfo.from_manifest(s) for s in manifest["outputs"]]
    client = DeviceClient(transport, retries=retries)
    check_identity(client.identify(), manifest, inputs, outputs)
    return DeviceSession(client, inputs, outputs)


class BoardSession(Session):
    """A `Session` whose backend is a board: stacking, quantizing inputs and `verify()` work as for any backend."""

    def __init__(self, bundle: Bundle, device: DeviceSession) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = NAME
        self.tolerance = self.manifest.get("backends", {}).get(NAME, {}).get("tolerance", {})
        self._impl = device
        self.inputs = device.inputs
        self.outputs = device.outputs

    @property
    def device(self) -> DeviceSession:
        """The backend session (for `last_ticks` and `info`)."""
        return self._impl


def open_board_session(bundle: Bundle, transport: Transport, retries: int = 3) -> BoardSession:
    """A full Session over a board. Usage: ``verify(open_board_session(bundle, SerialTransport(port)))``"""
    return BoardSession(bundle, open_session(bundle.manifest, transport, retries))


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None) -> DeviceSession:
    """Not usable without a port: raises with what to do instead."""
    raise EdgepackError("the device backend needs a board connection",
                        hint="pass --board NAME --port PORT (edgepack run/verify), or call "
                             "edgepack.runtime.backends.device.open_board_session(bundle, transport)")
