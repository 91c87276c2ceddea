"""Background processes tracked by PID file, never by name.

Each process is started in its own session (so its process group id is its PID) and recorded in
``<state>/pids/<name>.json`` with its PID, its start time as the kernel counts it, and its
command line. A record is trusted only while ``/proc/<pid>/stat`` still shows the same start time:
after a crash and a reboot, or once the PID is reused, the record is stale and is dropped, and
nothing is killed that Hive did not start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from hive.process_groups import signal_group


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it are fixed.
    after_name = stat.rsplit(")", 1)[1].split()
    state = after_name[0]
    if state == "Z":  # a zombie has finished; only its exit status is left
        return None
    return int(after_name[19])


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks


class ProcessTable:
    """The processes one state folder owns."""

    def __init__(self, state_dir: Path) -> None:
        self.pid_dir = state_dir / "pids"
        self.log_dir = state_dir / "logs"

    def _path(self, name: str) -> Path:
        return self.pid_dir / f"{name}.json"

    def get(self, name: str) -> ProcessRecord | None:
        path = self._path(name)
        try:
            return ProcessRecord(**json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def records(self) -> list[ProcessRecord]:
        if not self.pid_dir.exists():
            return []
        found = (self.get(p.stem) for p in sorted(self.pid_dir.glob("*.json")))
        return [r for r in found if r is not None]

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ProcessRecord:
        """Start `argv` in the background with its output in ``logs/<name>.log``."""
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        ticks = _start_ticks(proc.pid)
        record = ProcessRecord(name, proc.pid, ticks or -1, list(argv), str(log_path))
        tmp = self._path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        tmp.replace(self._path(name))
        return record

    def stop(self, name: str, *, grace_s: float = 10.0) -> bool:
        """Stop the recorded process (and its process group). True if one was running."""
        record = self.get(name)
        if record is None:
            return False
        was_alive = record.alive()
        if was_alive:
            signal_group(record.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while record.alive() and time.monotonic() < deadline:
                _reap(record.pid)
                time.sleep(0.05)
            if record.alive():
                signal_group(record.pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while record.alive() and time.monotonic() < deadline:
                    _reap(record.pid)
                    time.sleep(0.05)
        self._path(name).unlink(missing_ok=True)
        return was_alive

    def forget_stale(self) -> list[ProcessRecord]:
        """Drop records whose process is gone; returns what was dropped."""
        stale = [r for r in self.records() if not r.alive()]
        for record in stale:
            self._path(record.name).unlink(missing_ok=True)
        return stale

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
