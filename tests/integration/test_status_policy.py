"""The API server keeps each agent to its own status entry, with real ServiceAccount tokens:
an agent writes its own entry, the coordinator writes the run, and a forged entry, a forged
run or a forged team phase is refused with the policy's message."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentPhase, AgentStatus, PrivacyStatus, RunOutcome, RunStatus
from hive.errors import HiveError
from hive.kube.client import async_client
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.kube.resources import apply_crds
from hive.kube.status import apply_status
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner, account_name
from hive.settings import KubeSettings
from tests.support import Cluster

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).resolve().parents[2] / "operator/hive/samples/agentteam-research.yaml"
NS = "status-policy"
TEAM = "research"


def agent_rbac(agent: str) -> str:
    """What the operator gives each agent: may get and patch its own team's status."""
    name = f"{TEAM}-{agent}"
    return f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {name}, namespace: {NS}}}
rules:
- {{apiGroups: [hive.dev], resources: [agentteams/status], resourceNames: [{TEAM}],
   verbs: [get, patch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: {NS}}}]
"""


@pytest.fixture(scope="module")
def team(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    apply_crds(cluster.client)
    folder = tmp_path_factory.mktemp("status-policy")
    cluster.kubectl("create", "namespace", NS)
    manifest = folder / "team.yaml"
    manifest.write_text(SAMPLE.read_text().replace("namespace: default", f"namespace: {NS}"))
    cluster.kubectl("apply", "-f", str(manifest))
    rbac = folder / "rbac.yaml"
    rbac.write_text("---".join(agent_rbac(a) for a in ("lead", "researcher", "coder")))
    cluster.kubectl("apply", "-f", str(rbac))
    return folder


def kubeconfig_of(cluster: Cluster, folder: Path, agent: str, team: str = TEAM) -> Path:
    """A kubeconfig holding only the agent's ServiceAccount token (no client certificate)."""
    return cluster.account_kubeconfig(account_name(team, agent), NS, folder)


def as_agent(
    cluster: Cluster,
    folder: Path,
    agent: str,
    act: Callable[[Any], Coroutine[Any, Any, None]],
    team: str = TEAM,
) -> None:
    async def main() -> None:
        settings = KubeSettings(kubeconfig=kubeconfig_of(cluster, folder, agent, team))
        client = async_client(settings, field_manager=field_manager_for(agent))
        try:
            await act(client)
        finally:
            await client.close()

    asyncio.run(main())


def entry(name: str, phase: AgentPhase = AgentPhase.WORKING) -> AgentStatus:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return AgentStatus(name=name, phase=phase, last_heartbeat=now)


def run(coordinator: str) -> RunStatus:
    return RunStatus(outcome=RunOutcome.RUNNING, coordinator=coordinator, generation=1)


def privacy(found: int) -> PrivacyStatus:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return PrivacyStatus(since=now, reported_at=now, found=found)


def status_of(cluster: Cluster, team: str = TEAM) -> dict[str, Any]:
    got = cluster.kubectl("get", "agentteam", team, "-n", NS, "-o", "yaml").stdout
    status: dict[str, Any] = yaml.safe_load(got).get("status") or {}
    return status


def test_each_agent_writes_its_own_entry_and_the_coordinator_the_run(
    cluster: Cluster, team: Path
) -> None:
    for agent in ("researcher", "lead"):

        async def report(client: Any, agent: str = agent) -> None:
            await StatusReporter(client, NS, TEAM, agent).report(entry(agent))

        as_agent(cluster, team, agent, report)

    async def lead_run(client: Any) -> None:
        await StatusReporter(client, NS, TEAM, "lead").report_run(run("lead"))

    as_agent(cluster, team, "lead", lead_run)

    async def lead_privacy(client: Any) -> None:  # what the team's privacy policy found
        await StatusReporter(client, NS, TEAM, "lead").report_privacy(privacy(found=2))

    as_agent(cluster, team, "lead", lead_privacy)
    status = status_of(cluster)
    assert status["privacy"]["found"] == 2
    assert {e["name"]: e["phase"] for e in status["agents"]} == {
        "researcher": "Working",
        "lead": "Working",
    }
    assert status["run"]["coordinator"] == "lead"

    async def again(client: Any) -> None:  # its own entry again, changed: still its own
        await StatusReporter(client, NS, TEAM, "researcher").report(
            entry("researcher", AgentPhase.DONE)
        )

    as_agent(cluster, team, "researcher", again)
    assert {e["name"]: e["phase"] for e in status_of(cluster)["agents"]}["researcher"] == "Done"


def test_forging_another_entry_the_run_or_the_phase_is_refused(
    cluster: Cluster, team: Path
) -> None:
    async def seed(client: Any) -> None:
        await StatusReporter(client, NS, TEAM, "lead").report(entry("lead"))

    as_agent(cluster, team, "lead", seed)
    before = status_of(cluster)

    async def forge_entry(client: Any) -> None:
        await apply_status(
            client,
            "AgentTeam",
            NS,
            TEAM,
            {"agents": [entry("lead", AgentPhase.FAILED).wire()]},
            field_manager=field_manager_for("coder"),
        )

    with pytest.raises(HiveError, match="agent coder may write only its own entry, not lead"):
        as_agent(cluster, team, "coder", forge_entry)

    async def forge_run(client: Any) -> None:
        await StatusReporter(client, NS, TEAM, "coder").report_run(run("coder"))

    refused = r"status.run: only the coordinator \(lead\) writes the run, not agent coder"
    with pytest.raises(HiveError, match=refused):
        as_agent(cluster, team, "coder", forge_run)

    async def forge_privacy(client: Any) -> None:
        await StatusReporter(client, NS, TEAM, "coder").report_privacy(privacy(found=0))

    refused = r"status.privacy: only the coordinator \(lead\) writes it, not agent coder"
    with pytest.raises(HiveError, match=refused):
        as_agent(cluster, team, "coder", forge_privacy)

    async def forge_phase(client: Any) -> None:
        await apply_status(
            client,
            "AgentTeam",
            NS,
            TEAM,
            {"phase": "Succeeded"},
            field_manager=field_manager_for("coder"),
        )

    with pytest.raises(HiveError, match=r"not status.phase"):
        as_agent(cluster, team, "coder", forge_phase)
    after = status_of(cluster)
    assert after.get("run") == before.get("run")
    assert after["agents"] == before["agents"]
    assert after.get("phase") == before.get("phase")

    # the operator (here the tests' admin) is no agent of the team: RBAC alone decides for it
    cluster.kubectl(
        "patch", "agentteam", TEAM, "-n", NS, "--subresource=status", "--type=merge",
        "-p", '{"status": {"agentsTotal": 3}}',
    )  # fmt: skip
    assert status_of(cluster)["agentsTotal"] == 3


LONG_TEAM = "a-research-team-whose-name-is-long"
LONG_LEAD, LONG_CODER = "lead-agent-with-a-longer-name", "coder-agent-with-a-longer-name"


def test_agents_whose_names_make_a_long_account_are_held_to_their_entries_too(
    cluster: Cluster, team: Path
) -> None:
    """`<team>-<agent>` past 63 characters: the operator's own ServiceAccounts and Roles for
    such a team (built by the operator's builder) still let the policy tell the agents apart."""
    spec = {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://model:8000/v1"},
        "agents": [
            {"name": LONG_LEAD, "role": "senior", "subordinates": [LONG_CODER]},
            {"name": LONG_CODER, "role": "junior"},
        ],
    }
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": LONG_TEAM, "namespace": NS},
        "spec": spec,
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    uid = cluster.kubectl(
        "get", "agentteam", LONG_TEAM, "-n", NS, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    owner = Owner("AgentTeam", LONG_TEAM, NS, uid, generation=1)
    now = dt.datetime.now(dt.UTC)
    plan = plan_team(owner, spec, None, TeamObserved(), AgentPodSettings(image="hive"), now)
    rbac = [c for c in plan.children if c["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    accounts = {c["metadata"]["name"] for c in rbac if c["kind"] == "ServiceAccount"}
    assert accounts == {account_name(LONG_TEAM, a) for a in (LONG_LEAD, LONG_CODER)}
    assert min(map(len, accounts)) > 63
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))

    async def own_entry(client: Any) -> None:
        await StatusReporter(client, NS, LONG_TEAM, LONG_CODER).report(entry(LONG_CODER))

    as_agent(cluster, team, LONG_CODER, own_entry, LONG_TEAM)
    assert [e["name"] for e in status_of(cluster, LONG_TEAM)["agents"]] == [LONG_CODER]

    async def forge_run(client: Any) -> None:
        await StatusReporter(client, NS, LONG_TEAM, LONG_CODER).report_run(run(LONG_CODER))

    refused = f"only the coordinator \\({LONG_LEAD}\\) writes the run, not agent {LONG_CODER}"
    with pytest.raises(HiveError, match=refused):
        as_agent(cluster, team, LONG_CODER, forge_run, LONG_TEAM)

    async def lead_run(client: Any) -> None:
        await StatusReporter(client, NS, LONG_TEAM, LONG_LEAD).report_run(run(LONG_LEAD))

    as_agent(cluster, team, LONG_LEAD, lead_run, LONG_TEAM)
    assert status_of(cluster, LONG_TEAM)["run"]["coordinator"] == LONG_LEAD
