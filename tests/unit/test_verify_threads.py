"""Proofs from several threads at once — as the operator makes them: admission checks each in a
worker thread beside the verifier's worker — give the answers they give one at a time, and the
process lives (Z3's context is not safe to share between threads: without hive.verify.solver's
lock the process ends in a Z3 assertion violation). Run in a child process, so that a crash
fails this test instead of ending the test run."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO

PROBE = """
import datetime as dt, json, threading
from hive.verify.budget import check_budget
from hive.verify.protocol import protocol_of
from tests.unit.test_verify_budget import hierarchy
from tests.unit.test_verify_isolation import outcomes, team

now = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
spec = team(inbound="team", outboundPorts=[443])

def budget():
    return check_budget(protocol_of(hierarchy(), tokens_per_call=100), now=now).most_calls

alone = {"budget": budget(), "isolation": outcomes(spec)}
seen = []

def prove(which):
    for _ in range(ROUNDS):
        seen.append(budget() if which == "budget" else outcomes(spec))

threads = [threading.Thread(target=prove, args=(w,)) for w in ["budget", "isolation"] * 3]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"alone": alone, "seen": seen}))
"""


def test_proofs_in_several_threads_at_once_answer_as_alone() -> None:
    rounds = 8
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("ROUNDS", str(rounds))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    found = json.loads(done.stdout)
    alone = found["alone"]
    assert len(found["seen"]) == 6 * rounds
    for answer in found["seen"]:
        assert answer in (alone["budget"], alone["isolation"])
    assert found["seen"].count(alone["budget"]) == 3 * rounds
