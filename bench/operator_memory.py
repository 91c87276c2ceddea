"""The operator's memory over rounds of creating and deleting teams: does it stay flat?

    python bench/operator_memory.py [--teams 50] [--rounds 10] [--env NAME=VALUE ...]

Starts its own control plane (etcd, kube-apiserver, controllers, KWOK) and the operator as a
process. Each round creates the teams (one agent each) at once, waits until every one is Ready,
prints the operator's RSS with the teams converged (every one Ready and the operator idle for
15 s: its heap trimmed), deletes them all and waits until they and their children are gone and every
structure the operator holds per object (hive_operator_held_entries) is back to zero, and prints
its RSS then; last, RSS after the last round against RSS after the first. `--env` sets the
operator's environment (its HIVE_ settings) on top of the control plane's; the operator gives its
free heap back every 5 s here (operator.heap_trim_s), so the RSS read after 15 quiet seconds is
what it holds, not what its last trim missed.

The teams' children go with them by a delete of each kind's collection (what the API server
does for a namespace that is deleted), not one at a time by the garbage collector, which on two
cores takes five minutes for the 10,000 children of 1,000 teams; the operator sees each one go
either way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.operator_process import OperatorUnderTest
from tests.support import dev_settings

from hive.dev.controlplane import ControlPlane
from hive.kube.client import sync_client
from hive.kube.resources import apply_crds
from hive.reconcile.meta import TEAM_LABEL
from hive.settings import KubeSettings

NAMESPACE = "default"
TRIM_S = "5"
COLLECTIONS = (  # the teams' children and what their Deployments make
    "api/v1/namespaces/{ns}/serviceaccounts",
    "apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "api/v1/namespaces/{ns}/configmaps",
    "apis/apps/v1/namespaces/{ns}/deployments",
    "apis/apps/v1/namespaces/{ns}/replicasets",
    "api/v1/namespaces/{ns}/pods",
    "api/v1/namespaces/{ns}/services",
    "apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
)


def kubectl(plane: ControlPlane, *args: str, input: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    return subprocess.run(
        [str(plane.binary("kubectl")), *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout


def teams(count: int) -> str:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": f"mem-{i:04d}", "namespace": NAMESPACE},
            "spec": {
                "goal": "g",
                "model": {"name": "m"},
                "agents": [{"name": "a0", "role": "junior"}],
            },
        }
        for i in range(count)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def ready_count(plane: ControlPlane) -> tuple[int, int]:
    found = json.loads(kubectl(plane, "get", "agentteams", "-n", NAMESPACE, "-o", "json"))["items"]
    ready = sum(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (t.get("status") or {}).get("conditions") or []
        )
        for t in found
    )
    return ready, len(found)


def delete_teams(plane: ControlPlane) -> None:
    """Delete every team, then every collection of their children at once."""
    kubectl(plane, "delete", "agentteams", "--all", "-n", NAMESPACE, "--wait=false")
    with ThreadPoolExecutor(len(COLLECTIONS)) as pool:
        for done in [
            pool.submit(
                kubectl,
                plane,
                "delete",
                "--raw",
                f"/{path.format(ns=NAMESPACE)}?labelSelector={TEAM_LABEL}",
            )
            for path in COLLECTIONS
        ]:
            done.result()


def wait(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(1)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for {pid}")


def settle(operator: OperatorUnderTest, quiet_s: float = 15.0) -> None:
    """Wait until the operator has sent no request for `quiet_s` (its queues drained)."""
    sent, since = operator.requests(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(1)
        now = operator.requests()
        if now != sent:
            sent, since = now, time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    env = {"HIVE_OPERATOR__HEAP_TRIM_S": TRIM_S, **dict(item.split("=", 1) for item in args.env)}
    with tempfile.TemporaryDirectory() as folder:
        nodes = max(2, args.teams // 100 + 2)
        plane = ControlPlane(dev_settings(Path(folder) / "plane", kwok_nodes=nodes))
        operator: OperatorUnderTest | None = None
        try:
            plane.up()
            apply_crds(sync_client(KubeSettings(kubeconfig=plane.kubeconfig)))
            operator = OperatorUnderTest(plane, Path(folder) / "operator.log", env)
            operator.start()
            assert operator.process is not None
            pid = operator.process.pid
            print(f"operator RSS before the first round: {rss_mib(pid):.0f} MiB", flush=True)
            rss = []
            for round_ in range(1, args.rounds + 1):
                started = time.monotonic()
                kubectl(plane, "apply", "--server-side", "-f", "-", input=teams(args.teams))
                wait(lambda: ready_count(plane) == (args.teams,) * 2, args.timeout, "Ready")
                ready_s = time.monotonic() - started
                held_at_peak = sum(operator.held().values())
                settle(operator)
                converged = rss_mib(pid)
                deleting = time.monotonic()
                delete_teams(plane)
                wait(
                    lambda: not any(operator.held().values()),
                    args.timeout,
                    "the operator to hold nothing",
                )
                settle(operator)
                rss.append(rss_mib(pid))
                print(
                    f"round {round_}: {args.teams} teams Ready in {ready_s:.0f}s (RSS converged "
                    f"{converged:.0f} MiB) and gone in {time.monotonic() - deleting:.0f}s; held "
                    f"entries at the peak {held_at_peak}, after 0; RSS {rss[-1]:.0f} MiB; load "
                    "average " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
                    flush=True,
                )
            print(
                f"RSS after round {args.rounds}: {rss[-1]:.0f} MiB, after round 1: "
                f"{rss[0]:.0f} MiB ({(rss[-1] / rss[0] - 1) * 100:+.1f}%)",
                flush=True,
            )
        finally:
            if operator is not None:
                operator.stop()
            plane.down(purge=True)


if __name__ == "__main__":
    main()
