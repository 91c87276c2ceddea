"""Process records: PIDs are trusted only while the kernel's start time matches."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from hive.dev.processes import ProcessTable


def wait_until(predicate, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_start_records_and_stop_kills_the_process(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    record = table.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    assert record.alive()
    assert table.get("sleeper") == record
    assert table.stop("sleeper", grace_s=5) is True
    assert not record.alive()
    assert table.get("sleeper") is None


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    code = (
        "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    record = table.start("stubborn", [sys.executable, "-c", code])
    assert wait_until(lambda: "ready" in table.log_tail("stubborn"))
    assert table.stop("stubborn", grace_s=0.5) is True
    assert not record.alive()


def test_a_record_of_a_finished_process_is_stale_and_forgotten(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    record = table.start("short", [sys.executable, "-c", "pass"])
    assert wait_until(lambda: not record.alive())
    stale = table.forget_stale()
    assert [r.name for r in stale] == ["short"]
    assert table.records() == []


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    """A record whose start time differs from the live process's is not that process."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        table = ProcessTable(tmp_path)
        table.pid_dir.mkdir(parents=True)
        fake = {"name": "old", "pid": bystander.pid, "start_ticks": 1, "argv": ["x"], "log": ""}
        (table.pid_dir / "old.json").write_text(json.dumps(fake))
        record = table.get("old")
        assert record is not None
        assert not record.alive()
        assert table.stop("old", grace_s=0.5) is False
        assert bystander.poll() is None, "the bystander process was killed"
        assert table.get("old") is None
    finally:
        bystander.kill()
        bystander.wait()
