"""Operator failover time with the default leader-election settings (Lease 12 s, renew
deadline 8 s, retry 2 s): two `hive operator` processes on a local control plane; each round
kills the leader with SIGKILL (the standby waits the Lease out) and then stops the new leader
with SIGTERM (it gives the Lease up: the standby takes it at its next try).

    python bench/leader_failover.py [--rounds 3]

A takeover is timed from the signal to the first moment the other replica's /metrics say
hive_operator_leader 1 (polled every 50 ms). Prints one line per takeover and a summary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from e2e.conftest import OperatorProcess
from tests.support import Cluster, dev_settings

from hive.dev.controlplane import ControlPlane
from hive.kube.client import sync_client
from hive.kube.resources import apply_crds
from hive.settings import KubeSettings

ELECTION = {"HIVE_OPERATOR__LEADER_ELECTION__ENABLED": "true"}


def leads(process: OperatorProcess) -> bool:
    try:
        text = httpx.get(f"http://127.0.0.1:{process['metrics']}/metrics", timeout=1).text
    except httpx.HTTPError:
        return False
    return "\nhive_operator_leader 1.0" in text


def until_leads(process: OperatorProcess, started: float, limit_s: float = 60) -> float:
    while time.perf_counter() - started < limit_s:
        if leads(process):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit(f"no takeover within {limit_s}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    killed, released = [], []
    with tempfile.TemporaryDirectory() as folder:
        plane = ControlPlane(dev_settings(Path(folder), kwok_nodes=1))
        try:
            plane.up()
            client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig))
            cluster = Cluster(plane, client)
            apply_crds(client)
            count = 0

            def start() -> OperatorProcess:
                nonlocal count
                count += 1
                process = OperatorProcess(cluster, Path(folder) / f"op-{count}", ELECTION)
                process.start()
                return process

            leader, standby = start(), None
            until_leads(leader, time.perf_counter())
            for round_ in range(args.rounds):
                standby = start()
                leader.kill()
                killed.append(until_leads(standby, time.perf_counter()))
                leader, standby = standby, start()
                started = time.perf_counter()
                leader.table.stop("operator")
                released.append(until_leads(standby, started))
                leader = standby
                print(
                    f"round {round_ + 1}: after kill -9 {killed[-1]:.2f}s, "
                    f"after SIGTERM {released[-1]:.2f}s",
                    flush=True,
                )
            leader.table.stop("operator")
        finally:
            plane.down(purge=True)
    print(
        f"failover (Lease 12 s, deadline 8 s, retry 2 s): after kill -9 median "
        f"{statistics.median(killed):.2f}s (max {max(killed):.2f}s), after SIGTERM median "
        f"{statistics.median(released):.2f}s over {args.rounds} rounds; load average "
        f"{os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
