"""The whole path: CRDs, the operator as its own process, a team applied, status read back."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.support import Cluster

from e2e.conftest import SAMPLE, wait_for
from hive.api.agentteam import AgentPhase, AgentStatus, Role
from hive.kube.client import async_client
from hive.kube.objects import wait_for_condition
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.settings import KubeSettings

pytestmark = pytest.mark.e2e


def renamed(team: str) -> str:
    """The sample manifest under another team name."""
    return SAMPLE.read_text().replace("\n  name: research\n", f"\n  name: {team}\n", 1)


def get_team(cluster: Cluster, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl("get", "agentteam", name, "-o", "json").stdout)


def test_sample_team_becomes_ready_and_shows_in_kubectl(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    cluster.kubectl("apply", "-f", str(SAMPLE))
    cluster.kubectl("wait", "--for=condition=Ready", "agentteam/research", "--timeout=60s")
    team = get_team(cluster, "research")
    ready = next(c for c in team["status"]["conditions"] if c["type"] == "Ready")
    assert ready["observedGeneration"] == team["metadata"]["generation"]
    assert ready["reason"] == "AllAgentsAvailable"
    assert ready["message"] == "3/3 agents available"
    rows = [line.split() for line in cluster.kubectl("get", "agentteams").stdout.splitlines()]
    assert ["research", "True", "AllAgentsAvailable", "Running", "3"] in [r[:5] for r in rows]
    assert "agentteam.hive.dev/research" in cluster.kubectl("get", "hive").stdout

    metrics = httpx.get(f"http://127.0.0.1:{operator['metrics']}/metrics").text
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith('hive_reconciles_total{kind="AgentTeam",outcome="ok"}')
    )
    assert float(line.split()[-1]) >= 1


def test_an_edit_is_observed_with_its_generation(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    cluster.kubectl("apply", "-f", str(SAMPLE))
    before = get_team(cluster, "research")["metadata"]["generation"]
    cluster.kubectl(
        "patch",
        "agentteam",
        "research",
        "--type=merge",
        "-p",
        '{"spec":{"goal":"A different goal."}}',
    )
    wait_for(
        lambda: get_team(cluster, "research")["status"].get("observedGeneration") == before + 1,
        60,
        "observedGeneration to follow the edit",
    )


def test_agent_reports_its_own_entry_without_clobbering_the_operator(
    cluster: Cluster,
    operator: dict,  # type: ignore[type-arg]
) -> None:
    cluster.kubectl("apply", "-f", str(SAMPLE))
    wait_for_condition(cluster.client, "AgentTeam", "default", "research", timeout_s=60)

    async def report_both() -> None:
        settings = KubeSettings(kubeconfig=cluster.kubeconfig)
        clients = [
            async_client(settings, field_manager=field_manager_for(a)) for a in ("lead", "coder")
        ]
        reporters = [
            StatusReporter(c, "default", "research", a)
            for c, a in zip(clients, ("lead", "coder"), strict=True)
        ]
        for i in range(10):
            await asyncio.gather(
                reporters[0].report(
                    AgentStatus(
                        name="lead", role=Role.SENIOR, phase=AgentPhase.WORKING, tasks_active=i
                    )
                ),
                reporters[1].report(
                    AgentStatus(
                        name="coder", role=Role.SPECIALIST, phase=AgentPhase.IDLE, tasks_completed=i
                    )
                ),
            )
        for c in clients:
            await c.close()

    asyncio.run(report_both())
    status = get_team(cluster, "research")["status"]
    agents = {a["name"]: a for a in status["agents"]}
    assert agents["lead"]["tasksActive"] == 9
    assert agents["coder"]["tasksCompleted"] == 9
    assert any(c["type"] == "Ready" for c in status["conditions"]), "operator fields survive"

    # `hive agent --once` is the pod entrypoint: it adds the researcher's entry.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hive",
            "agent",
            "--team",
            "research",
            "--agent",
            "researcher",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    agents = {a["name"]: a for a in get_team(cluster, "research")["status"]["agents"]}
    assert set(agents) == {"lead", "coder", "researcher"}
    assert agents["researcher"]["phase"] == "Idle"
    assert agents["researcher"]["lastHeartbeat"]


def test_agent_for_a_missing_team_fails_in_one_line(cluster: Cluster) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hive",
            "agent",
            "--team",
            "ghost",
            "--agent",
            "a",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() in (
        "hive: error: AgentTeam default/ghost: not found",
        "hive: error: AgentTeam default/ghost: not found (is the AgentTeam CRD installed?)",
    ), "one line, whether or not an earlier test installed the CRDs"


def names_of(cluster: Cluster, kind: str, team: str) -> set[str]:
    out = cluster.kubectl("get", kind, "-l", f"hive.dev/team={team}", "-o", "name").stdout
    return {line.split("/", 1)[1] for line in out.split()}


def test_children_are_repaired_pruned_and_collected(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    team = renamed("repair")
    path = Path(cluster.plane.state) / "repair.yaml"
    path.write_text(team)
    cluster.kubectl("apply", "-f", str(path))
    cluster.kubectl("wait", "--for=condition=Ready", "agentteam/repair", "--timeout=60s")
    agents = {"repair-lead", "repair-researcher", "repair-coder"}
    for kind in ("serviceaccount", "role", "rolebinding"):
        assert names_of(cluster, kind, "repair") == agents
    # the sample runs on the embedded model, and its coder runs Python under the strict policy:
    # the team also gets its model server and a sandbox pod for that policy
    sandbox = "repair-sandbox-strict"
    assert names_of(cluster, "networkpolicy", "repair") == agents | {sandbox}
    for kind in ("deployment", "service"):
        assert names_of(cluster, kind, "repair") == agents | {"repair-model", sandbox}

    # A deleted child comes back; an edited one is set right.
    cluster.kubectl("delete", "rolebinding", "repair-coder")
    cluster.kubectl("scale", "deployment", "repair-lead", "--replicas=5")
    wait_for(lambda: "repair-coder" in names_of(cluster, "rolebinding", "repair"), 60, "repair")

    def replicas() -> int:
        dep = json.loads(cluster.kubectl("get", "deployment", "repair-lead", "-o", "json").stdout)
        return int(dep["spec"]["replicas"])

    wait_for(lambda: replicas() == 1, 60, "replicas restored")

    # An agent removed from the spec loses its children.
    cluster.kubectl(
        "patch",
        "agentteam",
        "repair",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/agents/2"},'
        '{"op":"replace","path":"/spec/agents/0/subordinates","value":["researcher"]}]',
    )
    wait_for(lambda: "repair-coder" not in names_of(cluster, "deployment", "repair"), 60, "prune")
    assert "repair-coder" not in names_of(cluster, "serviceaccount", "repair")

    # Deleting the team garbage-collects everything it owned.
    cluster.kubectl("delete", "agentteam", "repair")
    wait_for(lambda: not names_of(cluster, "deployment", "repair"), 90, "garbage collection")
    wait_for(lambda: not names_of(cluster, "serviceaccount", "repair"), 90, "garbage collection")


def test_an_agents_token_patches_its_own_team_and_no_other(
    cluster: Cluster, operator: dict
) -> None:  # type: ignore[type-arg]
    for name in ("alpha", "beta"):
        path = Path(cluster.plane.state) / f"{name}.yaml"
        path.write_text(renamed(name))
        cluster.kubectl("apply", "-f", str(path))
    cluster.kubectl(
        "wait", "--for=condition=Ready", "agentteam/alpha", "agentteam/beta", "--timeout=60s"
    )
    token = cluster.kubectl("create", "token", "alpha-lead").stdout.strip()
    context = ssl.create_default_context(cafile=str(cluster.plane.pki.ca.cert))
    base = f"{cluster.plane.url}/apis/hive.dev/v1alpha1/namespaces/default/agentteams"
    entry = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "status": {"agents": [{"name": "lead", "phase": "Working"}]},
    }
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/apply-patch+yaml"}

    def apply(team: str) -> httpx.Response:
        body = {**entry, "metadata": {"name": team, "namespace": "default"}}
        return httpx.patch(
            f"{base}/{team}/status?fieldManager=hive-agent-lead&force=true",
            json=body,
            headers=headers,
            verify=context,
        )

    own = apply("alpha")
    assert own.status_code == 200, own.text
    other = apply("beta")
    assert other.status_code == 403
    assert "system:serviceaccount:default:alpha-lead" in other.json()["message"]
    spec_write = httpx.patch(
        f"{base}/alpha",
        json={**entry, "metadata": {"name": "alpha"}},
        headers=headers,
        verify=context,
    )
    assert spec_write.status_code == 403, "an agent may not change its team's spec"


def test_the_generated_pod_command_runs_and_reports(
    cluster: Cluster, operator: dict, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    """Play the kubelet for one agent pod: its args and its mounted config, run as a process."""
    cluster.kubectl("apply", "-f", str(SAMPLE))
    cluster.kubectl("wait", "--for=condition=Ready", "agentteam/research", "--timeout=60s")
    dep = json.loads(cluster.kubectl("get", "deployment", "research-coder", "-o", "json").stdout)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    config = json.loads(
        cluster.kubectl("get", "configmap", "research-coder-config", "-o", "json").stdout
    )["data"]["agent.yaml"]
    mounted = tmp_path / "agent.yaml"
    mounted.write_text(config)
    args = [str(mounted) if a == "/etc/hive/agent.yaml" else a for a in container["args"]]
    done = subprocess.run(
        [sys.executable, "-m", "hive", *args, "--kubeconfig", str(cluster.kubeconfig), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    agents = {a["name"]: a for a in get_team(cluster, "research")["status"]["agents"]}
    assert agents["coder"]["role"] == "specialist"
    assert agents["coder"]["phase"] == "Idle"
