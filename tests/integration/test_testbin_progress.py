"""`make testbin`'s progress (hack/progress.sh, run by bash as hack/testbin.sh runs it): every
step is shown as it starts and named again, with its elapsed time, while it stays quiet; the
steps of the scripts it runs at the end (hack/node.sh's Go builds, the images) are named as
theirs, not as the last step testbin itself announced."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO, until

pytestmark = pytest.mark.integration

STILL = re.compile(r"^\[testbin \d\d:\d\d:\d\d\]   \.\.\. still (.*) \((\d+)s\)$")


def run_script(body: str, interval_s: int) -> tuple[int, list[str], list[str]]:
    """Exit status, stdout lines and stderr lines of `body` run after testbin's progress setup."""
    script = (
        "set -euo pipefail\n"
        f"source {REPO / 'hack' / 'progress.sh'}\n"
        "progress_start testbin\n"
        "trap 'rc=$?; set +e; progress_stop; exit $rc' EXIT\n"
        "echo $PROGRESS_HEARTBEAT\n" + body
    )
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "HIVE_PROGRESS_INTERVAL_S": str(interval_s)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.splitlines(), done.stderr.splitlines()


def stills(lines: list[str]) -> list[tuple[str, int]]:
    return [(m[1], int(m[2])) for line in lines if (m := STILL.match(line))]


def test_a_quiet_step_of_a_script_run_by_testbin_is_named_with_its_elapsed_time() -> None:
    code, _, err = run_script(
        """
        progress_log "the sandbox's root filesystem"
        bash -c 'echo "[node 10:00:00] building kubelet v1.36.3" >&2; sleep 4' 2>&1 \\
          | progress_steps
        progress_log "ready"
        """,
        interval_s=1,
    )
    assert code == 0, err
    assert re.fullmatch(r"\[testbin \d\d:\d\d:\d\d\] the sandbox's root filesystem", err[0])
    assert err[1] == "[node 10:00:00] building kubelet v1.36.3"  # the script's own line, as is
    heard = stills(err)
    assert heard, err
    assert {step for step, _ in heard} == {"node: building kubelet v1.36.3"}, err
    elapsed = [seconds for _, seconds in heard]
    assert elapsed == sorted(elapsed), err
    assert elapsed[-1] >= 1, err
    assert err[-1].endswith("] ready")


def test_a_step_that_keeps_printing_gets_no_heartbeat() -> None:
    code, _, err = run_script(
        """
        bash -c 'for i in $(seq 40); do echo "[node 10:00:00] line $i" >&2; sleep 0.1; done' \\
          2>&1 | progress_steps
        """,
        interval_s=2,
    )
    assert code == 0, err
    assert len(err) == 40
    assert stills(err) == [], err


def test_a_failing_step_fails_testbin_and_leaves_no_heartbeat() -> None:
    code, out, err = run_script(
        """
        bash -c 'echo "[hive-image 10:00:00] rootfs failed: no python3" >&2; exit 7' 2>&1 \\
          | progress_steps
        progress_log "not reached"
        """,
        interval_s=1,
    )
    assert code == 7
    assert err == ["[hive-image 10:00:00] rootfs failed: no python3"]
    heartbeat = Path(f"/proc/{out[0]}")
    until(lambda: not heartbeat.exists(), 10, "the heartbeat to end with testbin")
