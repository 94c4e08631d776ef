"""TVM backend: runs the bundle's TVM-compiled shared object (a Relax VM executable) with TVM's runtime.

Only the runtime half of TVM is used: `tvm.runtime.load_module` and `tvm.runtime.vm.VirtualMachine`,
never `tvm.relax` or the compiler. On a device, set `TVM_USE_RUNTIME_LIB=1` so that `import tvm` loads
only libtvm_runtime + libtvm_ffi (a few MB) instead of the 260 MB compiler library; there is no
runtime-only wheel, so `pip install apache-tvm==0.27.0.post1` is still what provides them.

The shared object is native code for one CPU architecture (`model.aarch64.so`, `model.x86_64.so`);
loading it on another raises BundleIncompatibleError before anything is dlopen'ed.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import tempfile
from typing import Any

import numpy as np

from edgepack.errors import BackendUnavailableError, BundleIncompatibleError
from edgepack.runtime.bundle import Bundle

NAME = "tvm"
# ELF e_machine -> platform.machine() spelling
_ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x28: "armv7l", 0xF3: "riscv64"}
_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def available() -> bool:
    """True when Apache TVM (its runtime) is installed."""
    return importlib.util.find_spec("tvm") is not None


def missing_hint() -> str:
    """What to install."""
    return ("pip install apache-tvm==0.27.0.post1   (or: pip install 'edgepack[tvm]'); "
            "on a device set TVM_USE_RUNTIME_LIB=1 to load only the TVM runtime libraries")


def elf_arch(data: bytes) -> str | None:
    """The CPU architecture a shared object was built for (platform.machine() spelling), None if not ELF."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return None
    byteorder = "little" if data[5] == 1 else "big"
    machine = int.from_bytes(data[18:20], byteorder)
    return _ELF_MACHINES.get(machine, f"ELF machine {machine:#x}")


def host_arch() -> str:
    """This machine's CPU architecture, platform.machine() spelling."""
    machine = platform.machine().lower()
    return _ARCH_ALIASES.get(machine, machine)


def _runtime() -> Any:
    try:
        import tvm.runtime
        from tvm.runtime.vm import VirtualMachine
    except ImportError as exc:
        raise BackendUnavailableError(f"the tvm backend needs Apache TVM's runtime ({exc})",
                                      hint=missing_hint()) from exc
    return tvm.runtime, VirtualMachine


class TVMSession:
    """One Relax virtual machine over the bundle's shared object, on the CPU."""

    def __init__(self, library: bytes, where: str, input_names: list[str], output_names: list[str],
                 threads: int | None, output_shapes: list[tuple[int, ...]] | None = None) -> None:
        arch = elf_arch(library)
        if arch is None:
            raise BundleIncompatibleError(f"{where} is not an ELF shared object; the tvm backend cannot load it")
        if arch != host_arch():
            raise BundleIncompatibleError(
                f"{where} was compiled for {arch}; this machine is {host_arch()}",
                hint=f"run the bundle on a {arch} machine (edgepack deploy), or pick another backend with --backend")
        runtime, virtual_machine = _runtime()
        if threads:
            import tvm

            # A pool of `threads` workers; mode 1 = the big cores (every core of a Pi).
            tvm.get_global_func("runtime.config_threadpool")(1, int(threads))
        # dlopen needs a file; it stays mapped after the file is removed.
        fd, name = tempfile.mkstemp(prefix="edgepack-tvm-", suffix=".so")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(library)
            module = runtime.load_module(name)
        finally:
            os.unlink(name)
        self._tensor = runtime.tensor
        self.vm = virtual_machine(module, runtime.cpu())
        self._main = self.vm["main"]
        self.input_names = input_names
        self.output_names = output_names
        self.output_shapes = output_shapes
        self.where = where

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference."""
        result = self._main(*[self._tensor(np.ascontiguousarray(inputs[n])) for n in self.input_names])
        values = [v.numpy() for v in ([result] if hasattr(result, "numpy") else list(result))]
        if self.output_shapes is not None:
            # TVM's TFLite frontend may drop a trailing RESHAPE (e.g. FULLY_CONNECTED keep_num_dims gives
            # [1, 1, 1, 12] for a [1, 12] output): same elements, same order, so restore the model's shape.
            for i, (value, shape) in enumerate(zip(values, self.output_shapes, strict=True)):
                if value.shape != shape and min(shape, default=0) >= 0:
                    if value.size != int(np.prod(shape)):
                        raise BundleIncompatibleError(f"{self.where}: output {self.output_names[i]!r} has shape "
                                                      f"{list(value.shape)}; the bundle states {list(shape)}")
                    values[i] = value.reshape(shape)
        return dict(zip(self.output_names, values, strict=True))


def load(bundle: Bundle, artifact: str | None = None, threads: int | None = None) -> TVMSession:
    """A TVM session over the bundle's shared object (role "tvm" unless `artifact` names one)."""
    path = artifact or "tvm"
    outputs = bundle.manifest["outputs"]
    return TVMSession(bundle.artifact(path), f"{bundle.path}: {path}", [t["name"] for t in bundle.manifest["inputs"]],
                      [t["name"] for t in outputs], threads, [tuple(t["shape"]) for t in outputs])
