"""`edgepack deploy` against a loopback OpenSSH server started by the test (127.0.0.1, own keys, own config)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from linux_helpers import AD_INT8, need

from edgepack.errors import EdgepackError
from edgepack.targets.linux.deploy import deploy

SSHD = "/usr/sbin/sshd"
EDGEPACK_CLI = Path(sys.executable).with_name("edgepack")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A loopback sshd accepting one generated client key; yields how to reach it."""
    if not Path(SSHD).is_file():
        pytest.skip(f"{SSHD} is missing (apt-get install openssh-server)")
    if shutil.which("ssh-keygen") is None or shutil.which("scp") is None:
        pytest.skip("ssh-keygen / scp are missing (apt-get install openssh-client)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd test logs in as the current user and needs root to run sshd with its "
                    "own config")
    tmp = tmp_path_factory.mktemp("sshd")
    tmp.chmod(0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / key)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {tmp / 'host_key'}", f"PidFile {tmp / 'sshd.pid'}",
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "Subsystem sftp /usr/lib/openssh/sftp-server", ""]))
    log = (tmp / "sshd.log").open("w")
    proc = subprocess.Popen([SSHD, "-f", str(config), "-p", str(port), "-D", "-e"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(tmp / 'sshd.log').read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield {"target": f"{os.environ.get('USER', 'root')}@127.0.0.1", "port": port,
               "identity": tmp / "client_key",
               "options": [f"UserKnownHostsFile={tmp / 'known_hosts'}", "StrictHostKeyChecking=no",
                           "LogLevel=ERROR"]}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def ad_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgepack.packager.pipeline import package

    out = tmp_path_factory.mktemp("deploy") / "ad.edgepack"
    return package(need(AD_INT8), out, target="rpi4", backends=["litert"]).path


def _deploy(bundle: Path, sshd: dict, remote: Path, **kwargs) -> object:
    return deploy(bundle, sshd["target"], remote_dir=str(remote), remote_edgepack=str(EDGEPACK_CLI),
                  port=sshd["port"], identity=sshd["identity"], ssh_options=sshd["options"], **kwargs)


def test_deploy_copies_and_verifies_on_the_loopback_board(sshd: dict, ad_bundle: Path, tmp_path: Path) -> None:
    result = _deploy(ad_bundle, sshd, tmp_path / "remote", backends=["litert", "reference"])
    assert result.passed, result.report
    assert (tmp_path / "remote" / "ad.edgepack").read_bytes() == ad_bundle.read_bytes()
    assert {r["backend"] for r in result.report["reports"]} == {"litert", "reference"}
    assert any(c.startswith("scp ") for c in result.commands)


def test_deploy_reports_a_failing_verify(sshd: dict, ad_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgepackError, match="has no '/nonexistent/edgepack' command"):
        deploy(ad_bundle, sshd["target"], remote_dir=str(tmp_path), remote_edgepack="/nonexistent/edgepack",
               port=sshd["port"], identity=sshd["identity"], ssh_options=sshd["options"])


def test_deploy_says_when_the_board_is_unreachable(ad_bundle: Path, tmp_path: Path) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("ssh is missing")
    with pytest.raises(EdgepackError, match="cannot reach"):
        deploy(ad_bundle, "nobody@127.0.0.1", port=_free_port(), ssh_options=["ConnectTimeout=5"], timeout=30)


@pytest.mark.parametrize("target", ["-oProxyCommand=touch /tmp/x", ""])
def test_deploy_refuses_an_ssh_target_that_is_an_option(ad_bundle: Path, target: str) -> None:
    with pytest.raises(EdgepackError, match="expected user@host"):
        deploy(ad_bundle, target)
