"""What the operator holds per object goes with the objects, also across a handover: the
operator (its own process on the test control plane, leader election on) leads and reconciles
teams; the Lease is taken from it (another holder written into it, as a replica that took over
would), so it stands by while every team is deleted; when the other holder's Lease runs out it
leads again, and each structure it counts is back at its baseline, none keeping a team that went
while it stood by."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.kube.resources import apply_crds
from tests.operator_process import OperatorUnderTest, metric_samples
from tests.support import Cluster, until, until_back_to_baseline

pytestmark = pytest.mark.integration
NS = "leader-footprint"
TEAMS = 30


def team(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"goal": "g", "model": {"name": "m"}, "agents": [{"name": "a", "role": "junior"}]},
    }


def all_ready(cluster: Cluster, count: int) -> bool:
    items = json.loads(cluster.kubectl("get", "agentteams", "-n", NS, "-o", "json").stdout)["items"]
    ready = [
        c
        for item in items
        for c in (item.get("status") or {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    ]
    return len(items) == count and len(ready) == count


def leading(operator: OperatorUnderTest) -> bool:
    return sum(metric_samples(operator.metrics_port, "hive_operator_leader").values()) == 1


def take_lease(cluster: Cluster, duration_s: int) -> None:
    """Write another holder into the operator's Lease, renewed now, for `duration_s`."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"spec": {"holderIdentity": "another-replica", "leaseDurationSeconds": duration_s}}
    patch["spec"] |= {"renewTime": now, "acquireTime": now}
    cluster.kubectl(
        "patch", "lease", "hive-operator", "-n", NS, "--type=merge", "-p", json.dumps(patch)
    )


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    yield NS
    cluster.kubectl("delete", "namespace", NS, "--wait=false")


def test_a_standby_keeps_nothing_of_teams_deleted_before_it_leads_again(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    operator = OperatorUnderTest(
        cluster.plane,
        tmp_path / "operator.log",
        {
            "HIVE_OPERATOR__NAMESPACE": namespace,
            "HIVE_OPERATOR__LEADER_ELECTION__ENABLED": "true",
            "HIVE_OPERATOR__LEADER_ELECTION__LEASE_NAMESPACE": namespace,
            "HIVE_OPERATOR__LEADER_ELECTION__LEASE_DURATION_S": "6",
            "HIVE_OPERATOR__LEADER_ELECTION__RENEW_DEADLINE_S": "4",
            "HIVE_OPERATOR__LEADER_ELECTION__RETRY_PERIOD_S": "1",
        },
    )
    operator.start()
    try:
        until(lambda: leading(operator), 30, "the operator to lead")
        baseline = operator.held()
        document = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [team(f"t{i:02d}") for i in range(TEAMS)],
        }
        cluster.kubectl(
            "apply", "--server-side", "-f", "-", input=json.dumps(document), timeout=120
        )
        until(lambda: all_ready(cluster, TEAMS), 300, f"{TEAMS} teams Ready")
        holding = operator.held()
        assert holding["team specs seen"] == TEAMS
        assert holding["applied children"] >= TEAMS * 7

        # another replica takes the Lease: the operator stands by, and the teams go meanwhile
        take_lease(cluster, 3600)
        until(lambda: not leading(operator), 30, "the operator to stand by")
        cluster.kubectl("delete", "agentteams", "--all", "-n", namespace, timeout=120)
        until(
            lambda: (
                not cluster.kubectl(
                    "get", "deployments", "-n", namespace, "-o", "name"
                ).stdout.strip()
            ),
            120,
            "the teams' Deployments to be collected",
        )
        # the other holder's Lease runs out: the operator leads again
        take_lease(cluster, 2)
        until(lambda: leading(operator), 30, "the operator to lead again")
        until_back_to_baseline(operator.held, baseline, 60)
    finally:
        operator.stop()
    assert "Traceback" not in operator.log.read_text(), operator.log_tail()
