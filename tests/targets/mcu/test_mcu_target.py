"""The Cortex-M targets: registry, check (unsupported nodes, float graphs, memory fit), compile (sources, CMake
project, library, firmware, measured sizes), packaging with the device measured on QEMU, and board operations."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_codegen import two_io_graph
from test_kernels_support import act, bias, weights

from edgepack.errors import EdgepackError
from edgepack.ir.graph import Graph, Node, Tensor
from edgepack.ir.ops import Op
from edgepack.ir.tflite_export import to_tflite
from edgepack.packager.bundle_writer import write_bundle
from edgepack.packager.pipeline import package
from edgepack.quantize.scheme import ALLOWED_MCU
from edgepack.runtime.bundle import Bundle
from edgepack.targets import get_target, target_names
from edgepack.targets.mcu import flash as board_ops
from edgepack.targets.mcu.build import toolchain_available
from edgepack.targets.mcu.qemu import qemu_available

CORES = ["cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
needs_arm = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc not installed")
needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm not installed")


def fc_graph(rng: np.random.Generator, depth: int, outs: int) -> Graph:
    """One int8 fully connected layer [1, depth] -> [1, outs]."""
    x, y = act("x", (1, depth), "int8", rng), act("y", (1, outs), "int8", rng)
    w, b = weights("w", (outs, depth), 0, rng), bias("b", outs, rng)
    node = Node(Op.FULLY_CONNECTED, "fc", ["x", "w", "b"], ["y"], {"activation": "NONE"})
    return Graph("fc", {t.name: t for t in (x, y, w, b)}, [node], ["x"], ["y"])


def add_graph(rng: np.random.Generator, n: int) -> Graph:
    """y = a + b on [1, n] int8 tensors (no weights: only RAM)."""
    a, b, y = act("a", (1, n), "int8", rng), act("b", (1, n), "int8", rng), act("y", (1, n), "int8", rng)
    node = Node(Op.ADD, "add", ["a", "b"], ["y"], {"activation": "NONE"})
    return Graph("add", {t.name: t for t in (a, b, y)}, [node], ["a", "b"], ["y"])


def float_graph() -> Graph:
    rng = np.random.default_rng(0)
    x, y = Tensor("x", (1, 4), "float32"), Tensor("y", (1, 2), "float32")
    w = Tensor("w", (2, 4), "float32", data=rng.normal(size=(2, 4)).astype(np.float32))
    node = Node(Op.FULLY_CONNECTED, "fc", ["x", "w"], ["y"], {"activation": "NONE"})
    return Graph("float", {t.name: t for t in (x, y, w)}, [node], ["x"], ["y"])


@pytest.fixture(scope="module")
def two_io_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """two_io_graph (int8 MUL, int16 FC) as a .tflite file, for the packaging pipeline."""
    path = tmp_path_factory.mktemp("model") / "two_io.tflite"
    path.write_bytes(to_tflite(two_io_graph(np.random.default_rng(7))))
    return path


def test_every_core_is_a_target_with_its_boards_and_bits() -> None:
    assert set(CORES) <= set(target_names())
    boards = {core: [b.name for b in get_target(core).boards] for core in CORES}
    assert boards["cortex-m4"][:1] == ["qemu-mps2-an386"] and {"nucleo-l4r5zi", "nrf52840-dk"} <= set(
        boards["cortex-m4"])
    assert boards["cortex-m55"] == ["qemu-mps3-an547"] and boards["cortex-m7"] == ["qemu-mps2-an500",
                                                                                     "nucleo-f746zg"]
    assert boards["cortex-m3"] == ["qemu-mps2-an385"] and boards["cortex-m33"] == ["qemu-mps2-an505"]
    assert boards["cortex-m0plus"] == ["rpi-pico"]
    for core in CORES:
        target = get_target(core)
        assert target.name == core and target.allowed_bits == ALLOWED_MCU == {(8, 8), (4, 8), (8, 16)}
    an547 = get_target("cortex-m55").boards[0]
    assert an547.emulated and an547.constraints["flash_bytes"] == 512 * 1024 and "mve" in an547.constraints["features"]


def test_check_refuses_float_graphs_and_names_the_way_out() -> None:
    from edgepack.targets.mcu.check import check_graph

    report = check_graph(float_graph(), "cortex-m4", None, "native")  # float graphs default to --kernels tvm
    assert not report.ok and "run float32 models with --kernels tvm" in report.issues[0].reason


def test_check_lists_every_unsupported_node_at_once() -> None:
    rng = np.random.default_rng(0)
    g = fc_graph(rng, 8, 4)
    t = act("t", (1, 4), "int8", rng)
    g.tensors["t"] = t
    g.nodes.append(Node(Op.TRANSPOSE, "tr", ["y"], ["t"], {"perm": [0, 1]}))
    g.tensors["r"] = act("r", (1, 1), "int8", rng)
    g.nodes.append(Node(Op.MEAN, "mean", ["t"], ["r"], {"axes": [1], "keepdims": True}))  # only axes [1, 2] of 4-D
    g.outputs = ["r"]
    report = get_target("cortex-m3").check(g)
    assert {i.op for i in report.issues if i.fatal} == {"TRANSPOSE", "MEAN"}, report.issues


def test_check_refuses_what_does_not_fit_the_board_with_numbers() -> None:
    rng = np.random.default_rng(0)
    big_weights = fc_graph(rng, 4096, 150)  # 614 KB of weights: fits 4 MiB (AN386), not 512 KiB (AN547)
    assert get_target("cortex-m4").check(big_weights).ok
    issues = get_target("cortex-m55").check(big_weights).issues
    assert len(issues) == 1 and re.fullmatch(r"does not fit the flash of qemu-mps3-an547: needs 6\d\d,\d{3} B "
                                             r"\(61\d,\d{3} B constant tables \+ 16,384 B code, estimate\), "
                                             r"the board has 524,288 B", issues[0].reason), issues[0].reason
    big_io = add_graph(rng, 200_000)
    issues = get_target("cortex-m55").check(big_io).issues
    assert len(issues) == 1 and "does not fit the RAM of qemu-mps3-an547" in issues[0].reason
    assert "I/O 600,000" in issues[0].reason
    assert get_target("cortex-m4").check(big_weights, "nucleo-l4r5zi").ok  # 2 MiB flash: fits
    assert not get_target("cortex-m7").check(big_io, "nucleo-f746zg").ok  # 320 KiB RAM


@needs_arm
def test_compile_writes_sources_cmake_library_firmware_and_measures_them(tmp_path: Path) -> None:
    graph = two_io_graph(np.random.default_rng(7))
    arts = get_target("cortex-m4").compile(graph, ("tflite", b"model bytes"), {})
    roles = {a.path: a.role for a in arts.files}
    assert arts.board == "qemu-mps2-an386" and arts.default_backend == "reference"
    assert arts.backends == {"reference": {"artifact": "graph.json"}, "device": {"artifact": "firmware/firmware.elf"}}
    assert roles["firmware/firmware.elf"] == roles["firmware/firmware.bin"] == "firmware"
    assert roles["memory_plan.txt"] == "report" and roles["lib/libedgepack_model.a"] == "library"
    assert {"src/model.c", "src/model.h", "src/CMakeLists.txt", "src/ep_fc_s16.c", "src/ep_mul_s8.c"} <= {
        p for p, r in roles.items() if r == "sources"}
    mem = arts.memory
    assert mem["source"] == "arm-none-eabi-size firmware/firmware.elf" and mem["stack_bytes"] == 16 * 1024
    assert mem["ram_bytes"] >= mem["stack_bytes"] + mem["arena_bytes"] and mem["flash_bytes"] > mem["const_bytes"]
    report = next(a.data for a in arts.files if a.role == "report").decode()
    assert "arena" in report and "firmware qemu-mps2-an386: flash" in report
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed: the drop-in project was not built")
    src = tmp_path / "src"
    src.mkdir()
    for a in arts.files:
        if a.path.startswith("src/"):
            (src / a.path[4:]).write_bytes(a.data)
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_TOOLCHAIN_FILE=arm-none-eabi.cmake"],
                ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=src)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (build / "libedgepack_model.a").is_file()


@needs_arm
def test_cortex_m0plus_has_no_firmware_only_the_library() -> None:
    arts = get_target("cortex-m0plus").compile(two_io_graph(np.random.default_rng(7)), ("tflite", b"m"), {})
    assert arts.board is None and list(arts.backends) == ["reference"]
    assert not any(a.role == "firmware" for a in arts.files)
    assert arts.memory["source"] == "arm-none-eabi-size -t libedgepack_model.a"
    cmake = next(a.data for a in arts.files if a.path == "src/CMakeLists.txt").decode()
    assert '"-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft"' in cmake


@needs_arm
def test_a_board_with_another_core_is_refused() -> None:
    with pytest.raises(EdgepackError, match="board qemu-mps3-an547 has a cortex-m55, but the target is cortex-m4") as e:
        get_target("cortex-m4").compile(two_io_graph(np.random.default_rng(7)), ("tflite", b"m"),
                                        {"board": "qemu-mps3-an547"})
    assert "--target cortex-m55" in e.value.hint
    with pytest.raises(EdgepackError, match="backend.*'device'.*on board nucleo-l4r5zi"):
        get_target("cortex-m4").compile(two_io_graph(np.random.default_rng(7)), ("tflite", b"m"),
                                        {"board": "nucleo-l4r5zi", "backends": ["device"]})


def test_bundle_board_refuses_other_cores_and_other_boards() -> None:
    manifest = {"target": "cortex-m4", "board": "qemu-mps2-an386"}
    assert board_ops.bundle_board(manifest).name == "qemu-mps2-an386"
    with pytest.raises(EdgepackError, match="the bundle is for cortex-m4, but board qemu-mps3-an547 has a cortex-m55"):
        board_ops.bundle_board(manifest, "qemu-mps3-an547")
    with pytest.raises(EdgepackError, match="firmware was built for board qemu-mps2-an386, not nrf52840-dk"):
        board_ops.bundle_board(manifest, "nrf52840-dk")
    with pytest.raises(EdgepackError, match="target 'host', which has no boards"):
        board_ops.bundle_board({"target": "host", "board": None})
    with pytest.raises(EdgepackError, match="built without a board"):
        board_ops.bundle_board({"target": "cortex-m0plus", "board": None})


@needs_arm
@needs_qemu
def test_package_runs_the_golden_pairs_on_qemu_and_the_board_operations_work(two_io_model: Path,
                                                                             tmp_path: Path) -> None:
    out = tmp_path / "two_io.edgepack"
    m = package(two_io_model, out, target="cortex-m55", golden_count=8).manifest
    assert m["board"] == "qemu-mps3-an547" and m["memory"]["source"] == "arm-none-eabi-size firmware/firmware.elf"
    device = m["backends"]["device"]
    assert device["tolerance"] == {"max_abs": 0, "unit": "lsb"}
    measured = device["measured"]
    assert measured["board"] == "qemu-mps3-an547" and measured["samples"] == 8
    assert measured["instructions_per_inference"] > 0 and "-icount shift=0" in measured["source"]

    report = board_ops.verify_on_board(out)
    assert report.passed and report.samples == 8 and report.board == "qemu-mps3-an547"
    assert report.instructions_per_inference == measured["instructions_per_inference"]
    assert report.to_dict()["timing_source"] == "SysTick under qemu -icount shift=0, mps3-an547"
    with Bundle.open(out) as bundle:
        inputs, want = bundle.golden()
    run = board_ops.run_on_board(out, inputs)
    assert all(np.array_equal(run.outputs[k], want[k]) for k in want) and len(run.ticks) == 8
    with board_ops.flash(out) as fb:
        assert fb.port.startswith("/dev/pts/") and fb.qemu.running and "-icount" in fb.command
    assert not fb.qemu.running
    with pytest.raises(EdgepackError, match="bundle is for cortex-m55, but board qemu-mps2-an386 has a cortex-m4"):
        board_ops.flash(out, "qemu-mps2-an386")


@needs_arm
def test_a_real_board_bundle_has_sources_and_no_unmeasured_claims(two_io_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "l4.edgepack"
    m = package(two_io_model, out, target="cortex-m4", board="nucleo-l4r5zi", golden_count=4).manifest
    assert m["board"] == "nucleo-l4r5zi" and list(m["backends"]) == ["reference"]
    assert m["memory"]["source"] == "arm-none-eabi-size -t libedgepack_model.a"
    with pytest.raises(EdgepackError, match="holds no firmware for nucleo-l4r5zi"):
        board_ops.flash(out)
    with pytest.raises(EdgepackError, match="is a real board: give its serial port"):
        board_ops.verify_on_board(out)
    # a real board's firmware cannot run while packaging: the declared 0 LSB stays, with a note
    with Bundle.open(out) as bundle:
        manifest = {k: v for k, v in bundle.manifest.items()
                    if k not in ("artifacts", "golden", "format_version", "edgepack_version")}
        manifest["backends"]["device"] = {"artifact": "graph.json", "tolerance": {"max_abs": 0, "unit": "lsb"}}
        files = [(a["path"], a["role"], bundle.artifact(a["path"])) for a in bundle.artifacts
                 if a["role"] != "golden"]
        gin, gout = bundle.golden()
    fake = write_bundle(tmp_path / "fake.edgepack", manifest, files, gin, gout)
    got, fields = get_target("cortex-m4").run_golden("device", fake)
    assert got is None and "not run at packaging time (nucleo-l4r5zi is a real board)" in fields["note"]


def test_flashing_a_real_board_without_pyocd_names_the_install(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setattr(board_ops.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EdgepackError, match="flashing nucleo-f746zg needs pyOCD") as e:
        board_ops._pyocd_command(board_ops.get_board("nucleo-f746zg"), tmp_path / "fw.elf")
    assert "pip install pyocd" in e.value.hint


@needs_arm
def test_generated_sources_in_the_bundle_match_the_firmware_model(two_io_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "m3.edgepack"
    package(two_io_model, out, target="cortex-m3", golden_count=2, backends=["reference"])
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        header = zf.read("src/model.h").decode()
    assert "firmware/firmware.elf" in names  # the firmware ships even when only reference is kept
    assert '#define EDGEPACK_CPU "cortex-m3"' in header
