"""Deploy a bundle to a Linux board over SSH and verify it there.

Steps (`deploy`):

1. `ssh TARGET mkdir -p REMOTE_DIR`;
2. `scp BUNDLE TARGET:REMOTE_DIR/` (the bundle stays there, ready for `edgepack run`);
3. `ssh TARGET REMOTE_EDGEPACK verify REMOTE_DIR/BUNDLE --json [--backend B] [--threads N]`: the board's
   own edgepack (`pip install edgepack` plus a backend library) runs the golden pairs on every backend it
   can load and compares them with the golden outputs, within the tolerance the bundle states;
4. the JSON report comes back and is returned as a `DeployResult` (passed, per-backend reports).

ssh and scp run with `BatchMode=yes`: a board that asks for a password fails at once instead of waiting
for a prompt; use a key (`identity`) or an ssh-agent.

Usage: ``deploy("kws.edgepack", "pi@raspberrypi.local").passed``
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError

DEFAULT_REMOTE_DIR = "edgepack-bundles"  # relative: under the remote user's home directory
Progress = Callable[[str], None]


@dataclass
class DeployResult:
    """What `edgepack verify` said on the board."""

    target: str
    remote_path: str
    passed: bool
    report: dict[str, Any]  # the remote `edgepack verify --json` output
    commands: list[str] = field(default_factory=list)  # what was run, for the record


def _ssh_base(port: int | None, identity: str | os.PathLike[str] | None, options: Sequence[str],
              scp: bool = False) -> list[str]:
    cmd = ["scp" if scp else "ssh", "-o", "BatchMode=yes"]
    if port is not None:
        cmd += ["-P" if scp else "-p", str(port)]
    if identity is not None:
        cmd += ["-i", str(identity)]
    for opt in options:
        cmd += ["-o", opt]
    return cmd


def _run(cmd: list[str], what: str, timeout: float, record: list[str]) -> subprocess.CompletedProcess[str]:
    record.append(shlex.join(cmd))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise EdgepackError(f"{what} did not finish in {timeout:.0f} s") from exc


def deploy(bundle_path: str | os.PathLike[str], ssh_target: str, remote_dir: str = DEFAULT_REMOTE_DIR,
           remote_edgepack: str = "edgepack", port: int | None = None,
           identity: str | os.PathLike[str] | None = None, ssh_options: Sequence[str] = (),
           backends: Sequence[str] | None = None, threads: int | None = None, timeout: float = 600,
           progress: Progress | None = None) -> DeployResult:
    """Copy the bundle to `ssh_target` ("user@host") with scp and run `edgepack verify` there.

    `remote_edgepack` is the edgepack command on the board (default: `edgepack` on its PATH);
    `ssh_options` are extra `-o` options for ssh and scp (e.g. "StrictHostKeyChecking=accept-new").

    Usage: ``deploy("kws.edgepack", "pi@192.168.1.20", identity="~/.ssh/id_ed25519")``
    """
    say = progress or (lambda msg: None)
    bundle = Path(bundle_path)
    if not bundle.is_file():
        raise EdgepackError(f"{bundle}: no such bundle file")
    if not ssh_target or ssh_target.startswith("-"):  # would be read by ssh as an option
        raise EdgepackError(f"--ssh {ssh_target!r}: expected user@host", hint="e.g. --ssh pi@192.168.1.20")
    for tool in ("ssh", "scp"):
        if shutil.which(tool) is None:
            raise EdgepackError(f"edgepack deploy needs {tool}, which is not installed",
                                hint="apt-get install openssh-client")
    record: list[str] = []
    ssh = _ssh_base(port, identity, ssh_options)
    remote_path = f"{remote_dir.rstrip('/')}/{bundle.name}"

    say(f"creating {remote_dir} on {ssh_target}")
    proc = _run([*ssh, ssh_target, f"mkdir -p {shlex.quote(remote_dir)}"], "ssh", timeout, record)
    if proc.returncode != 0:
        raise EdgepackError(f"cannot reach {ssh_target} over ssh: {proc.stderr.strip() or proc.returncode}",
                            hint="check the address, that sshd runs there and that your key is accepted "
                                 "(ssh -o BatchMode=yes USER@HOST true)")
    say(f"copying {bundle.name} ({bundle.stat().st_size:,} bytes) to {ssh_target}:{remote_path}")
    proc = _run([*_ssh_base(port, identity, ssh_options, scp=True), str(bundle), f"{ssh_target}:{remote_path}"],
                "scp", timeout, record)
    if proc.returncode != 0:
        raise EdgepackError(f"scp to {ssh_target}:{remote_path} failed: {proc.stderr.strip()}")

    verify = [remote_edgepack, "verify", remote_path, "--json"]
    for name in backends or ():
        verify += ["--backend", name]
    if threads:
        verify += ["--threads", str(threads)]
    say(f"running '{shlex.join(verify)}' on {ssh_target}")
    proc = _run([*ssh, ssh_target, shlex.join(verify)], "the remote edgepack verify", timeout, record)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        if proc.returncode == 127:
            raise EdgepackError(f"{ssh_target} has no '{remote_edgepack}' command",
                                hint="pip install edgepack (plus ai-edge-litert) on the board, or give its path "
                                     "with --remote-edgepack") from None
        raise EdgepackError(f"edgepack verify on {ssh_target} failed (exit {proc.returncode}): "
                            + " | ".join(detail)) from None
    return DeployResult(ssh_target, remote_path, bool(report.get("passed")) and proc.returncode == 0, report, record)
