"""The emulated Pi's pieces that need no network: skip reasons, the fake CPU files, the cache location."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepack.targets.linux import pi_emulator


def test_missing_tools_name_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pi_emulator.shutil, "which", lambda name: None)
    monkeypatch.setattr(pi_emulator, "userland_dir", lambda: Path("/nonexistent/rpi-userland-x"))
    reasons = pi_emulator.emulator_missing()
    assert reasons is not None and "apt-get install qemu-user-static" in reasons and "apt-get" in reasons
    with pytest.raises(pi_emulator.EmulatorUnavailable, match="qemu-aarch64-static is not installed"):
        pi_emulator.build_userland()


def test_userland_lives_in_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = pi_emulator.userland_dir()
    assert root.parent == tmp_path / "edgepack" and root.name.startswith("rpi-userland-")
    assert pi_emulator.ready_userland() is None  # never built there, and never built by asking


def test_cpu_files_describe_the_emulated_core(tmp_path: Path) -> None:
    pi_emulator.write_cpu_files(tmp_path, "cortex-a76")
    cpuinfo = (tmp_path / "proc" / "cpuinfo").read_text()
    assert cpuinfo.count("CPU part\t: 0xd0b") == 4 and "CPU implementer\t: 0x41" in cpuinfo
    cpu = tmp_path / "sys" / "devices" / "system" / "cpu"
    assert (cpu / "possible").read_text() == "0-3\n"
    assert (cpu / "cpu3" / "cache" / "index2" / "size").read_text() == "1024K\n"


def test_emulated_boards_are_the_qemu_boards_of_the_linux_targets() -> None:
    assert pi_emulator.EMULATED_BOARDS["qemu-rpi4"] == "cortex-a72"
    assert set(pi_emulator.EMULATED_BOARDS) == {"qemu-rpi3", "qemu-rpi4", "qemu-rpi5", "qemu-aarch64"}


def test_onnxruntime_is_refused_under_qemu(tmp_path: Path) -> None:
    with pytest.raises(pi_emulator.EmulatorUnavailable, match="onnxruntime segfaults"):
        pi_emulator.run_bundle(tmp_path / "x.edgepack", tmp_path, ["onnxruntime"])
