"""The local cluster's processes: the recorded state, spawning into log files, liveness, stopping.

The state lives in one JSON file of the run directory, so `status` and `down` work from another
process, and a crashed cluster can still be removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..waits import WaitTimeout, wait_for


@dataclass
class State:
    """What `up` recorded: the version, each component's process and command line, the host changes."""

    version: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    ready_seconds: float = 0.0

    @classmethod
    def load(cls, path: Path) -> State | None:
        """The recorded state, or None where no cluster was recorded."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))


def spawn(argv: list[str], log_file: Path, cwd: Path) -> int:
    """Start a component in its own session (so it can be stopped as a group), its output appended to its log."""
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=cwd)
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stop(pid: int, grace: float = 5.0) -> None:
    """SIGTERM to the component's process group; SIGKILL after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        wait_for(f"process {pid} to exit", lambda: not alive(pid), timeout=grace, interval=0.05, max_interval=0.2)
    except WaitTimeout:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def peak_memory_mib(pids: dict[str, int]) -> dict[str, float]:
    """Each process's peak resident memory so far (VmHWM), for the benchmarks."""
    peaks = {}
    for name, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        peaks[name] = kib / 1024
    return peaks


def log_tail(log_file: Path, name: str, lines: int = 20) -> str:
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"  {name}| {line}" for line in text[-lines:])
