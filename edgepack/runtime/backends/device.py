"""Backend `device`: run a bundle's model on a board (real, or QEMU-emulated) over the serial protocol.

A board needs a transport, which `load(bundle, artifact, threads)` cannot name, so the entry points are
`open_session(manifest, transport)` (the backend session) and `open_board_session(bundle, transport)` (a full
`Session`, usable with `edgepack.runtime.verify.verify`). Both refuse a board whose firmware was built from a
different model (IDENTIFY's model sha256 against the manifest's model.source_sha256).

The manifest's `backends.device` entry may say more (an FPGA board): `device_outputs`, the tensors the board
returns when they are not the model outputs; `host_nodes`, the graph nodes the host runs after them with
the golden interpreter (a final SOFTMAX); `weights_image`, the artifact loaded into a board whose weight
memory starts empty.

Usage::

    with Bundle.open("kws.edgepack") as bundle:
        session = open_board_session(bundle, SerialTransport("/dev/ttyACM0"))
        report = verify(session)
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgepack.errors import BundleIncompatibleError, EdgepackError
from edgepack.ir.graph import Graph
from edgepack.ir.reference import Interpreter
from edgepack.runtime.backends.reference import load_graph
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


def device_outputs(manifest: Mapping[str, Any]) -> list[TensorInfo]:
    """The tensors the board returns: the manifest's `backends.device.device_outputs`, else the model outputs."""
    specs = manifest.get("backends", {}).get(NAME, {}).get("device_outputs") or manifest["outputs"]
    return [TensorInfo.from_manifest(s) for s in specs]


def open_session(manifest: Mapping[str, Any], transport: Transport, retries: int = 3,
                 weights: bytes | None = None, boot_timeout: float | None = 10.0) -> DeviceSession:
    """A backend session over `transport`, after checking the board runs this manifest's model.

    The first IDENTIFY waits up to `boot_timeout` seconds: the board may have just been started or flashed.

    A board that reports a volatile weight memory (IDENTIFY flag, the FPGA engine) gets `weights` loaded
    and committed unless the image it holds already has the same CRC.
    """
    inputs = [TensorInfo.from_manifest(s) for s in manifest["inputs"]]
    outputs = device_outputs(manifest)
    client = DeviceClient(transport, retries=retries, boot_timeout=boot_timeout)
    info = client.identify()
    check_identity(info, manifest, inputs, outputs)
    if info.needs_weights:
        if weights is None:
            raise BundleIncompatibleError(f"board {info.board} needs its weight image loaded, and the bundle has none",
                                          hint="package the model again for this board's target")
        if not (info.weights_committed and info.weights_crc32 == zlib.crc32(weights)):
            client.load_weights(weights)
            client.identify()
    return DeviceSession(client, inputs, outputs)


def host_tail(graph: Graph, starts: list[str], nodes: list[str]) -> Interpreter:
    """The golden interpreter over `nodes` of `graph`, fed with the tensors `starts`, giving the graph outputs."""
    wanted = set(nodes)
    return Interpreter(Graph(graph.name, graph.tensors, [n for n in graph.nodes if n.name in wanted], list(starts),
                             list(graph.outputs)))


class HostFinish:
    """Runs the graph nodes after the board's outputs (`backends.device.host_nodes`, e.g. a final SOFTMAX)
    with the golden interpreter, so a session returns the model's outputs."""

    def __init__(self, device: DeviceSession, graph: Graph, nodes: list[str]) -> None:
        self.device = device
        self.interpreter = host_tail(graph, [t.name for t in device.outputs], nodes)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference: the board, then the host nodes."""
        return self.interpreter.run(self.device.run(inputs))


class BoardSession(Session):
    """A `Session` whose backend is a board: stacking, quantizing inputs and `verify()` work as for any backend."""

    def __init__(self, bundle: Bundle, device: DeviceSession) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = NAME
        entry = self.manifest.get("backends", {}).get(NAME, {})
        self.tolerance = entry.get("tolerance", {})
        self._device = device
        self._impl: DeviceSession | HostFinish = device
        if entry.get("host_nodes"):
            self._impl = HostFinish(device, load_graph(bundle), list(entry["host_nodes"]))
        self.inputs = device.inputs
        self.outputs = [TensorInfo.from_manifest(s) for s in self.manifest["outputs"]]

    @property
    def device(self) -> DeviceSession:
        """The backend session (for `last_ticks` and `info`)."""
        return self._device


def open_board_session(bundle: Bundle, transport: Transport, retries: int = 3) -> BoardSession:
    """A full Session over a board. Usage: ``verify(open_board_session(bundle, SerialTransport(port)))``"""
    image = bundle.manifest.get("backends", {}).get(NAME, {}).get("weights_image")
    weights = bundle.artifact(image) if image else None
    return BoardSession(bundle, open_session(bundle.manifest, transport, retries, weights))


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None) -> DeviceSession:
    """Not usable without a port: raises with what to do instead."""
    raise EdgepackError("the device backend needs a board connection",
                        hint="pass --board NAME --port PORT (edgepack run/verify), or call "
                             "edgepack.runtime.backends.device.open_board_session(bundle, transport)")
