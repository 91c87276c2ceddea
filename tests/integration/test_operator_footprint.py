"""The operator as its own process on the test control plane (KWOK nodes): what it holds per
object goes with the objects, a resync of unchanged teams writes nothing, and a plan that runs
past its timeout neither blocks the event loop nor the other teams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.kube.resources import apply_crds
from tests.operator_process import OperatorUnderTest, metric_samples
from tests.support import Cluster, until, until_back_to_baseline

pytestmark = pytest.mark.integration


def team(name: str, namespace: str, agents: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "goal": "g",
            "model": {"name": "m"},
            "agents": [{"name": f"a{i}", "role": "junior"} for i in range(agents)],
        },
    }


def apply(cluster: Cluster, *objects: dict[str, Any]) -> None:
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    cluster.kubectl("apply", "--server-side", "-f", "-", input=document, timeout=120)


def ready(cluster: Cluster, namespace: str, kind: str = "Ready") -> dict[str, dict[str, Any]]:
    """Each team's condition of type `kind` (Ready), by name."""
    found = cluster.kubectl("get", "agentteams", "-n", namespace, "-o", "json").stdout
    out: dict[str, dict[str, Any]] = {}
    for item in json.loads(found)["items"]:
        conditions = (item.get("status") or {}).get("conditions") or []
        out[item["metadata"]["name"]] = next((c for c in conditions if c["type"] == kind), {})
    return out


def all_ready(cluster: Cluster, namespace: str, count: int) -> bool:
    conditions = ready(cluster, namespace)
    return len(conditions) == count and all(c.get("status") == "True" for c in conditions.values())


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    apply_crds(cluster.client)
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def start_operator(
    cluster: Cluster, namespace: str, folder: Path, **settings: str
) -> OperatorUnderTest:
    env = {"HIVE_OPERATOR__NAMESPACE": namespace}
    env.update({f"HIVE_OPERATOR__{k.upper()}": v for k, v in settings.items()})
    operator = OperatorUnderTest(cluster.plane, folder / "operator.log", env)
    operator.start()
    return operator


def test_what_the_operator_holds_per_team_goes_back_to_its_baseline_when_the_teams_go(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    teams = 50
    operator = start_operator(cluster, namespace, tmp_path, heap_trim_s="1")
    try:
        baseline = operator.held()
        assert baseline["applied children"] == 0
        apply(cluster, *(team(f"t{i:02d}", namespace) for i in range(teams)))
        until(lambda: all_ready(cluster, namespace, teams), 300, f"{teams} teams Ready")
        holding = operator.held()
        assert holding["team specs seen"] == teams
        assert holding["applied children"] >= teams * 7  # a team's seven children each
        assert holding["agent pods seen"] >= teams

        cluster.kubectl("delete", "agentteams", "--all", "-n", namespace, timeout=120)
        until_back_to_baseline(operator.held, baseline, 300)
        # and what the burst freed went back to the system (PYTHONMALLOC=malloc, as the chart)
        until(lambda: released_bytes(operator) > 0, 30, "the heap trimmed")
    finally:
        operator.stop()
    assert "Traceback" not in operator.log.read_text(), operator.log_tail()


def released_bytes(operator: OperatorUnderTest) -> float:
    found = metric_samples(operator.metrics_port, "hive_operator_heap_released_bytes_total")
    return sum(found.values())


def test_a_resync_of_unchanged_teams_sends_no_writes(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    teams = 10
    operator = start_operator(cluster, namespace, tmp_path, resync_s="3", relist_s="3")
    try:
        apply(cluster, *(team(f"t{i}", namespace) for i in range(teams)))
        until(lambda: all_ready(cluster, namespace, teams), 180, f"{teams} teams Ready")
        # and their protocol's TLC verdict in: its arrival writes each team's Verified
        # condition, later than Ready when the cores are busy
        until(
            lambda: all(
                c.get("reason") not in (None, "Checking")
                for c in ready(cluster, namespace, "Verified").values()
            ),
            180,
            "the teams' Verified condition decided",
        )

        def after_resyncs(rounds: int) -> int:
            """Wait until every team was reconciled `rounds` more times; the writes then."""
            start = operator.reconciles("AgentTeam")
            until(
                lambda: operator.reconciles("AgentTeam") >= start + rounds * teams,
                60,
                f"{rounds} resyncs",
            )
            return operator.requests(writes_only=True)

        # Settled: a whole round of reconciles without a write (on busy cores the agents' pods
        # may still be coming up when the teams first report Ready).
        writes = [operator.requests(writes_only=True)]

        def quiet_round() -> bool:
            writes.append(after_resyncs(1))
            return writes[-1] == writes[-2]

        until(quiet_round, 180, "a round of reconciles without writes")
        assert after_resyncs(2) == writes[-1], "a resync of unchanged teams wrote something"

        # A child deleted by hand is noticed on the watch and made again.
        name = json.loads(
            cluster.kubectl(
                "get", "configmaps", "-n", namespace, "-l", "hive.dev/team=t0", "-o", "json"
            ).stdout
        )["items"][0]["metadata"]["name"]
        cluster.kubectl("delete", "configmap", name, "-n", namespace)
        until(
            lambda: (
                cluster.kubectl("get", "configmap", name, "-n", namespace, check=False).returncode
                == 0
            ),
            60,
            "the deleted ConfigMap to be made again",
        )
        # A Deployment whose team label is edited away drops out of the watch; the resync's
        # reconcile does not find it among the team's and applies it again.
        cluster.kubectl("label", "deployment", "t1-a0", "hive.dev/team-", "-n", namespace)
        until(
            lambda: cluster.kubectl(
                "get", "deployment", "t1-a0", "-n", namespace, "-o", "jsonpath={.metadata.labels}"
            ).stdout.count('"hive.dev/team":"t1"'),
            60,
            "the Deployment's team label to be put back",
        )
    finally:
        operator.stop()
    assert "Traceback" not in operator.log.read_text(), operator.log_tail()


def test_a_plan_past_its_timeout_leaves_its_team_not_ready_and_blocks_nothing(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A 200-agent team's plan (every agent's config names all 200) takes seconds of CPU; with
    a 0.5 s plan timeout it is abandoned. The timeout firing at all shows the event loop ran
    while the plan computed; meanwhile /healthz answers and a small team becomes Ready."""
    operator = start_operator(cluster, namespace, tmp_path, plan_timeout_s="0.5")
    try:
        apply(cluster, team("large", namespace, agents=200), team("small", namespace))
        answered = 0

        def settled() -> bool:
            nonlocal answered
            answered += operator.healthy()
            conditions = ready(cluster, namespace)
            large, small = conditions.get("large", {}), conditions.get("small", {})
            return large.get("reason") == "PlanTimedOut" and small.get("status") == "True"

        until(settled, 180, "the large team timed out and the small one Ready")
        assert answered >= 1
        large = ready(cluster, namespace)["large"]
        assert large["status"] == "False"
        assert "longer than 0.5s" in large["message"]
        deployments = cluster.kubectl(
            "get", "deployments", "-n", namespace, "-l", "hive.dev/team=large", "-o", "name"
        )
        assert deployments.stdout.strip() == ""  # nothing made from an abandoned plan
        assert operator.healthy()
    finally:
        operator.stop()
