"""The emulated Raspberry Pi: a Debian arm64 userland run with `qemu-aarch64-static -cpu <core>`.

What `build_userland()` does, once, into `~/.cache/edgepack/rpi-userland-<hash>` (`$XDG_CACHE_HOME`
is honoured; the hash covers the package and wheel lists below, so changing them builds a new one):

1. `dpkg --add-architecture arm64; apt-get update` when arm64 is not yet a foreign architecture (root only);
2. `apt-get download` the Debian arm64 packages of Python 3.11 and its libraries (`DEBS`) and unpack
   each with `dpkg -x` into `sysroot/`;
3. `pip download --only-binary=:all: --platform manylinux_2_28_aarch64 ...` the aarch64 wheels of numpy,
   ai-edge-litert and the TVM runtime (`WHEELS`) and unzip them into `site/`;
4. write a Raspberry-Pi-like `/proc/cpuinfo` and `/sys/devices/system/cpu` into the sysroot. qemu-user
   passes the host's (x86) files through, and LiteRT's CPU probe (cpuinfo) crashes on them with SIGSEGV;
   with `-L SYSROOT` qemu opens `SYSROOT/proc/cpuinfo` instead, so LiteRT sees an ARM CPU;
5. import numpy, LiteRT and TVM's runtime in the emulator, then mark the directory ready.

Each `run_bundle()` installs edgepack next to the bundle from a wheel built from the running source
tree (`edgepack_wheel`, once per process; the runtime is pure Python, so the wheel is the one a Pi
would get from `pip install edgepack`), runs `python3.11` from the sysroot under qemu, loads the
bundle with `edgepack.runtime.load` for each backend, runs the golden inputs and writes the outputs
to an npz that the host compares with the golden outputs. onnxruntime segfaults on import under
qemu-user (FIELD-NOTES), so that backend is never run here. binfmt_misc is not available, so qemu is
always called explicitly.

Usage: ``root = build_userland(); result = run_bundle("kws.edgepack", root, ["litert"], cpu="cortex-a72")``
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import EdgepackError
from edgepack.targets.user_cache import cache_dir

QEMU = "qemu-aarch64-static"
PYTHON = "usr/bin/python3.11"
DEBS = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "zlib1g", "libexpat1",
        "libffi8", "libssl3", "libbz2-1.0", "liblzma5", "libstdc++6", "libgcc-s1", "libsqlite3-0", "libncursesw6",
        "libtinfo6", "libreadline8", "libuuid1", "libzstd1", "libcrypt1")
WHEELS = ("numpy>=2", "ai-edge-litert==2.3.0", "pyserial>=3.5", "apache-tvm==0.27.0.post1")
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_24_aarch64",
             "manylinux_2_17_aarch64", "manylinux2014_aarch64")
LAYOUT_VERSION = 1  # bump when the build steps change
# `CPU part` in /proc/cpuinfo (ARM's MIDR part numbers)
_CPU_PARTS = {"cortex-a53": "0xd03", "cortex-a57": "0xd07", "cortex-a72": "0xd08", "cortex-a76": "0xd0b",
              "neoverse-n1": "0xd0c", "cortex-a35": "0xd04"}
_READY = "READY.json"

Progress = Callable[[str], None]


class EmulatorUnavailable(EdgepackError):  # noqa: N818 - reads as a sentence: EmulatorUnavailable(reason)
    """The emulated Pi cannot be built or run here; `message` says what is missing."""


def userland_dir() -> Path:
    """Where the userland for the current package and wheel lists lives (built or not)."""
    key = json.dumps({"debs": DEBS, "wheels": WHEELS, "layout": LAYOUT_VERSION}, sort_keys=True)
    return cache_dir() / f"rpi-userland-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def missing_tools() -> list[str]:
    """Reasons the userland cannot be built or run here (empty when everything is present)."""
    reasons = []
    if shutil.which(QEMU) is None:
        reasons.append(f"{QEMU} is not installed (apt-get install qemu-user-static)")
    for tool in ("dpkg", "apt-get"):
        if shutil.which(tool) is None:
            reasons.append(f"{tool} is not available (a Debian/Ubuntu host is needed to fetch arm64 packages)")
    if platform.machine() not in ("x86_64", "AMD64", "aarch64"):
        reasons.append(f"untested host architecture {platform.machine()}")
    return reasons


def _emulated_boards() -> dict[str, str]:
    from edgepack.targets.linux.boards import TARGETS

    return {b.name: b.qemu_cpu for spec in TARGETS.values() for b in spec.boards if b.emulated and b.qemu_cpu}


EMULATED_BOARDS: dict[str, str] = _emulated_boards()
"""Emulated Linux boards (device_tests' `board` marker) -> the qemu -cpu model they run on."""


def emulator_missing() -> str | None:
    """Why an emulated Pi cannot run here, without building anything (None when it can be built or is built)."""
    if ready_userland() is not None:
        return None
    reasons = missing_tools()
    return "; ".join(reasons) if reasons else None


def ready_userland() -> Path | None:
    """The built userland, or None when it has not been built (never builds)."""
    root = userland_dir()
    return root if (root / _READY).is_file() and shutil.which(QEMU) else None


def _run(cmd: list[str], cwd: Path | None = None, what: str = "", timeout: float = 1800,
         env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmulatorUnavailable(f"{what or cmd[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise EmulatorUnavailable(f"{what or cmd[0]} failed (exit {proc.returncode}): " + " | ".join(tail))
    return proc.stdout


def _ensure_arm64_apt(say: Progress) -> None:
    foreign = _run(["dpkg", "--print-foreign-architectures"], what="dpkg").split()
    if "arm64" in foreign:
        return
    if os.geteuid() != 0:
        raise EmulatorUnavailable("apt has no arm64 architecture and this is not root; run: sudo dpkg "
                                  "--add-architecture arm64 && sudo apt-get update")
    say("adding arm64 to apt's architectures (dpkg --add-architecture arm64; apt-get update)")
    _run(["dpkg", "--add-architecture", "arm64"], what="dpkg --add-architecture arm64")
    _run(["apt-get", "update", "-q"], what="apt-get update (network to the Debian mirrors)")


def write_cpu_files(sysroot: Path, cpu: str, cores: int = 4) -> None:
    """A Raspberry-Pi-like /proc/cpuinfo and /sys/devices/system/cpu inside `sysroot` (see the docstring)."""
    part = _CPU_PARTS.get(cpu, "0xd08")
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\n"
             "CPU revision\t: 3\n\n")
    text = "".join(block.format(i=i, part=part) for i in range(cores))
    text += f"Hardware\t: BCM2835\nModel\t\t: emulated {cpu} (edgepack qemu-user)\n"
    (sysroot / "proc").mkdir(parents=True, exist_ok=True)
    cpuinfo = sysroot / "proc" / "cpuinfo"
    if not cpuinfo.is_file() or cpuinfo.read_text() != text:
        cpuinfo.write_text(text)
    base = sysroot / "sys" / "devices" / "system" / "cpu"
    every = f"0-{cores - 1}"
    files = {"possible": every, "present": every, "online": every, "kernel_max": str(cores - 1)}
    for i in range(cores):
        c = f"cpu{i}"
        files.update({f"{c}/topology/physical_package_id": "0", f"{c}/topology/cluster_cpus_list": every,
                      f"{c}/topology/core_cpus_list": str(i), f"{c}/topology/thread_siblings_list": str(i),
                      f"{c}/topology/core_siblings_list": every, f"{c}/topology/core_id": str(i),
                      f"{c}/cpufreq/cpuinfo_max_freq": "1500000", f"{c}/cpufreq/cpuinfo_min_freq": "600000"})
        caches = ((1, "32K", "Data", str(i)), (1, "48K", "Instruction", str(i)), (2, "1024K", "Unified", every))
        for idx, (level, size, kind, shared) in enumerate(caches):
            d = f"{c}/cache/index{idx}"
            files.update({f"{d}/level": str(level), f"{d}/size": size, f"{d}/type": kind,
                          f"{d}/shared_cpu_list": shared})
    for rel, value in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")


def qemu_command(root: Path, cpu: str) -> list[str]:
    """The command prefix that runs the userland's Python 3.11 on `cpu`."""
    return [QEMU, "-cpu", cpu, "-L", str(root / "sysroot"), str(root / "sysroot" / PYTHON)]


def qemu_env(root: Path, extra_paths: list[Path] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """Environment for the emulated Python: only the userland's site dir (+ extras), TVM runtime only."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "USER")}
    return {**keep, "PYTHONPATH": os.pathsep.join(str(p) for p in [*extra_paths, root / "site"]),
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "TVM_USE_RUNTIME_LIB": "1"}


def build_userland(progress: Progress | None = None, force: bool = False) -> Path:
    """Build the userland once (see the module docstring) and return its directory.

    Raises EmulatorUnavailable naming what is missing (qemu, apt's arm64 packages, network to PyPI...).
    """
    say = progress or (lambda msg: None)
    root = userland_dir()
    if (root / _READY).is_file() and not force:
        return root
    reasons = missing_tools()
    if reasons:
        raise EmulatorUnavailable("; ".join(reasons))
    _ensure_arm64_apt(say)
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=root.name + ".", suffix=".part", dir=root.parent))
    try:
        debs, sysroot, wheels, site = work / "debs", work / "sysroot", work / "wheels", work / "site"
        for d in (debs, sysroot, wheels, site):
            d.mkdir()
        say(f"downloading {len(DEBS)} Debian arm64 packages (apt-get download)")
        _run(["apt-get", "download", "-q", *[f"{p}:arm64" for p in DEBS]], cwd=debs,
             what="apt-get download of the arm64 packages (network to the Debian mirrors)")
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(sysroot)], what=f"dpkg -x {deb.name}")
        say("downloading aarch64 wheels: " + ", ".join(WHEELS))
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *platforms, "--python-version",
              "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-d",
              str(wheels), *WHEELS], what="pip download of the aarch64 wheels (network to PyPI)")
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(site)
        for so in site.rglob("*.so*"):  # zipfile drops the executable bit; dlopen does not need it, ld does
            so.chmod(0o755)
        write_cpu_files(sysroot, "cortex-a72")
        shutil.rmtree(debs)
        shutil.rmtree(wheels)
        say("checking the userland: numpy, LiteRT and TVM's runtime import under qemu")
        probe = ("import sys, numpy, ai_edge_litert.interpreter, tvm.runtime, tvm.runtime.vm; "
                 "import json; print(json.dumps({'python': sys.version.split()[0], 'numpy': numpy.__version__}))")
        info = json.loads(_run([*qemu_command(work, "cortex-a72"), "-c", probe], what="the emulated Python",
                               timeout=600, env=qemu_env(work)).strip().splitlines()[-1])
        info.update(debs=list(DEBS), wheels=list(WHEELS), built=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        (work / _READY).write_text(json.dumps(info, indent=2))
        if root.exists():
            shutil.rmtree(root)
        work.rename(root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return root


_RUNNER = r"""
import json, sys, time
import numpy as np
from edgepack.errors import EdgepackError
from edgepack.runtime import load
bundle, out_dir, threads = sys.argv[1], sys.argv[2], (int(sys.argv[3]) or None)
report = {}
for backend in sys.argv[4:]:
    try:
        sess = load(bundle, backend=backend, threads=threads)
    except EdgepackError as exc:
        report[backend] = {"error": exc.message}
        continue
    inputs, _ = sess.bundle.golden()
    start = time.perf_counter()
    outputs = sess.run(inputs)
    seconds = time.perf_counter() - start
    np.savez(f"{out_dir}/{backend}.npz", **outputs)
    report[backend] = {"seconds": seconds, "samples": int(next(iter(inputs.values())).shape[0])}
    sess.bundle.close()
print("EDGEPACK-RESULT " + json.dumps(report))
"""


@dataclass
class EmulatedRun:
    """Outputs of each backend on the bundle's golden inputs, computed in the emulated Pi."""

    cpu: str
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # backend -> name -> stacked array
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of the golden run, emulated
    errors: dict[str, str] = field(default_factory=dict)  # backend -> why it could not load
    edgepack_from: str = ""  # the wheel (or source tree) the emulated Pi imported edgepack from

    @property
    def description(self) -> str:
        """Where the outputs came from, for reports and manifests."""
        return f"{QEMU} -cpu {self.cpu} (Debian arm64 userland, Python 3.11)"


def edgepack_source() -> Path:
    """The directory holding the `edgepack` package this process runs."""
    import edgepack

    return Path(edgepack.__file__).resolve().parent.parent


_wheels: dict[Path, Path] = {}


def edgepack_wheel() -> Path | None:
    """A wheel of the running edgepack, built once per process from its source tree (what `pip install
    edgepack` puts on a Pi); None when edgepack runs from an installed wheel (no pyproject.toml)."""
    src = edgepack_source()
    if not (src / "pyproject.toml").is_file():
        return None
    if src in _wheels and _wheels[src].is_file():
        return _wheels[src]
    out = Path(tempfile.mkdtemp(prefix="edgepack-wheel-"))
    tree = out / "tree"  # a copy, so that the build writes nothing into the user's source tree
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (src / name).is_file():
            shutil.copyfile(src / name, tree / name)
    shutil.copytree(src / "edgepack", tree / "edgepack", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(tree)], capture_output=True, text=True, timeout=600)
    wheels = sorted(out.glob("edgepack-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise EdgepackError(f"building the edgepack wheel for the emulated Pi failed: "
                            f"{' | '.join(proc.stderr.strip().splitlines()[-4:])}",
                            hint="pip install setuptools wheel into this environment")
    shutil.rmtree(tree)
    _wheels[src] = wheels[0]
    return wheels[0]


def run_bundle(bundle_path: str | os.PathLike[str], root: Path, backends: list[str], cpu: str = "cortex-a72",
               threads: int | None = None, timeout: float = 3600) -> EmulatedRun:
    """Run the bundle's golden inputs on `backends` in the emulated Pi; outputs come back as arrays.

    Usage: ``run = run_bundle("kws.edgepack", build_userland(), ["litert", "tvm"]); run.outputs["litert"]``
    """
    if "onnxruntime" in backends:
        raise EmulatorUnavailable("onnxruntime segfaults on import under qemu-user; test it on the host")
    write_cpu_files(root / "sysroot", cpu)
    with tempfile.TemporaryDirectory(prefix="edgepack-qemu-") as tmp:
        src = Path(tmp) / "src"
        wheel = edgepack_wheel()
        if wheel is not None:  # installed as pip would: a pure-Python wheel is unpacked into site-packages
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(src)
        else:
            shutil.copytree(edgepack_source() / "edgepack", src / "edgepack",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        bundle = Path(tmp) / Path(bundle_path).name
        shutil.copyfile(bundle_path, bundle)
        cmd = [*qemu_command(root, cpu), "-c", _RUNNER, str(bundle), tmp, str(threads or 0), *backends]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=qemu_env(root, [src]))
        except subprocess.TimeoutExpired as exc:
            raise EdgepackError(f"the emulated Pi did not finish in {timeout:.0f} s") from exc
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("EDGEPACK-RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = " | ".join(proc.stderr.strip().splitlines()[-6:])
            raise EdgepackError(f"the emulated Pi ({QEMU} -cpu {cpu}) failed (exit {proc.returncode}): {tail}")
        report = json.loads(lines[-1].removeprefix("EDGEPACK-RESULT "))
        run = EmulatedRun(cpu, edgepack_from=wheel.name if wheel is not None else str(edgepack_source()))
        for backend, info in report.items():
            if "error" in info:
                run.errors[backend] = info["error"]
                continue
            with np.load(Path(tmp) / f"{backend}.npz", allow_pickle=False) as npz:
                run.outputs[backend] = {k: npz[k] for k in npz.files}
            run.seconds[backend] = info["seconds"]
        return run


def run_golden(spec: Any, backend: str, bundle_path: Path, host_twins: dict[str, bytes],
               progress: Progress | None = None) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """Golden outputs of a backend that cannot run on this host (packaging hook of LinuxTarget).

    1. the emulated board, when its userland is already built (`ready_userland`; packaging never builds it);
    2. else the host build of the same Relax module (`host_twins`), which shares TVM's lowering and
       integer arithmetic but not the aarch64 code generator;
    3. else nothing: (None, note) and the backend keeps the tolerance it was declared with.
    """
    from edgepack.runtime.bundle import Bundle

    say = progress or (lambda msg: None)
    board = next((b for b in spec.boards if b.emulated), None)
    root = ready_userland()
    if board is not None and root is not None:
        say(f"running backend {backend} in the emulated {board.name} ({QEMU} -cpu {board.qemu_cpu})")
        run = run_bundle(bundle_path, root, [backend], cpu=board.qemu_cpu)
        if backend in run.outputs:
            return run.outputs[backend], {"verified_on": f"{board.name}: {run.description}"}
        say(f"the emulated {board.name} could not load backend {backend}: {run.errors.get(backend)}")
    with Bundle.open(bundle_path) as bundle:
        artifact = bundle.manifest["backends"][backend]["artifact"]
        twin = host_twins.get(artifact)
        if backend != "tvm" or twin is None:
            return None, {"verified_on": f"not verified while packaging: no {spec.arch} machine or emulator here"}
        from edgepack.runtime.backends.tvm import TVMSession, host_arch

        say(f"checking {artifact} through its {host_arch()} twin (no {spec.arch} userland built; "
            "build one with edgepack.targets.linux.pi_emulator.build_userland)")
        outs = bundle.manifest["outputs"]
        sess = TVMSession(twin, f"{artifact} (host twin)", [t["name"] for t in bundle.manifest["inputs"]],
                          [t["name"] for t in outs], None, [tuple(t["shape"]) for t in outs])
        inputs, _ = bundle.golden()
        count = len(next(iter(inputs.values())))
        per_sample = [sess.run({k: v[i] for k, v in inputs.items()}) for i in range(count)]
        outputs = {name: np.stack([r[name] for r in per_sample]) for name in sess.output_names}
    return outputs, {"verified_on": f"host {host_arch()} build of the same Relax module (no {spec.arch} runtime "
                                    "here); the shipped .so was not run"}
