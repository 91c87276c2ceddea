"""spec.isolation at admission, against the real API server: the operator's AgentTeam webhook
handler reads the team's SandboxPolicy from the API server, proves the declared isolation with
Z3 over the objects the operator would make, refuses a team whose objects would not hold it
with the counterexample (the agent, what it reaches, the NetworkPolicy rule) and admits one
whose objects do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import kopf
import pytest

from hive.operator.admission import validate_agent_team, validate_sandbox_policy
from tests.operator_state import operator_state_on
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "isolation-admission"


@pytest.fixture(scope="module")
def operator_state(cluster: Cluster) -> Iterator[None]:
    with operator_state_on(cluster, NS):
        yield


def apply(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply `manifest` and return its spec as the API server keeps it (defaults applied)."""
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
    out = cluster.kubectl("get", kind, name, "-n", NS, "-o", "json")
    return cast(dict[str, Any], json.loads(out.stdout)["spec"])


def team(name: str, isolation: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "goal": "summarise the logs",
            "model": {"name": "m", "endpoint": "https://models.example/v1"},
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["coder"]},
                {
                    "name": "coder",
                    "role": "junior",
                    "tools": [{"name": "python", "version": "*"}],
                    "sandboxPolicyRef": {"name": "pypi"},
                },
                {"name": "notes", "role": "specialist"},
            ],
            "isolation": isolation,
        },
    }


async def validate(spec: dict[str, Any], name: str) -> None:
    await validate_agent_team(spec=cast(kopf.Spec, spec), name=name, namespace=NS)


async def test_a_violating_team_is_refused_with_the_counterexample(
    cluster: Cluster, operator_state: None
) -> None:
    apply(
        cluster,
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "SandboxPolicy",
            "metadata": {"name": "pypi", "namespace": NS},
            "spec": {
                "network": {"mode": "allowlist", "egress": [{"host": "pypi.org", "ports": [443]}]}
            },
        },
    )
    holding = {
        "peers": [{"agent": "coder", "peers": []}, {"agent": "notes", "peers": ["lead"]}],
        "inbound": "team",
        "outboundPorts": [443, 6443],
        "sandboxNetwork": "allowlist",
    }
    spec = apply(cluster, team("holds", holding))
    await validate(spec, "holds")  # admitted

    closed_sandbox = apply(cluster, team("closed", {**holding, "sandboxNetwork": "none"}))
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate(closed_sandbox, "closed")
    assert str(refused.value) == (
        "spec.isolation does not hold: sandbox closed-sandbox-pypi reaches no network is false: "
        "closed-sandbox-pypi reaches TCP/443 through NetworkPolicy sandbox-pypi egress[0]"
    )

    debugged = team("debugged", {**holding, "outboundPorts": [443]})
    debugged["spec"]["debug"] = {"interactive": True}
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate(apply(cluster, debugged), "debugged")
    message = str(refused.value)
    assert "connects to lead on TCP/" in message
    assert "through NetworkPolicy debugged-lead ingress[1]" in message
    assert "lead reaches TCP/6443 outside the team through NetworkPolicy debugged-lead" in message

    cut = apply(cluster, team("cut", {"peers": [{"agent": "lead", "peers": []}]}))
    with pytest.raises(kopf.AdmissionError, match="lead delegates to coder, which its peers"):
        await validate(cut, "cut")


async def test_a_policy_that_would_open_a_closed_teams_sandbox_is_refused(
    cluster: Cluster, operator_state: None
) -> None:
    closed = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "SandboxPolicy",
        "metadata": {"name": "offline", "namespace": NS},
        "spec": {"network": {"mode": "none"}},
    }
    apply(cluster, closed)
    manifest = team("offline", {"sandboxNetwork": "none"})
    manifest["spec"]["agents"][1]["sandboxPolicyRef"] = {"name": "offline"}
    spec = apply(cluster, manifest)
    await validate(spec, "offline")  # admitted: the sandbox reaches nothing

    opened = {"network": {"mode": "allowlist", "egress": [{"host": "10.0.0.0/8", "ports": [5432]}]}}
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate_sandbox_policy(spec=cast(kopf.Spec, opened), name="offline", namespace=NS)
    assert str(refused.value) == (
        "AgentTeam offline uses this policy: spec.isolation does not hold: sandbox "
        "offline-sandbox-offline reaches no network is false: offline-sandbox-offline reaches "
        "TCP/5432 through NetworkPolicy sandbox-offline egress[0]"
    )
    await validate_sandbox_policy(
        spec=cast(kopf.Spec, closed["spec"]), name="offline", namespace=NS
    )


async def test_an_agent_cut_off_from_a_debugging_coordinator_is_a_warning(
    cluster: Cluster, operator_state: None
) -> None:
    """Admitted, with a warning (kubectl prints it): a subordinate whose declared peers leave
    out the coordinator never reaches its debugger, so its calls do not stop there."""
    manifest = team(
        "watched",
        {"peers": [{"agent": "coder", "peers": []}, {"agent": "notes", "peers": ["lead"]}]},
    )
    manifest["spec"]["agents"][1].pop("sandboxPolicyRef")
    manifest["spec"]["debug"] = {"interactive": True}
    warnings: list[str] = []
    spec = apply(cluster, manifest)
    await validate_agent_team(spec=cast(kopf.Spec, spec), name="watched", namespace=NS,
                              warnings=warnings)  # fmt: skip
    assert warnings == [
        "spec.isolation.peers[0]: coder may not reach the coordinator lead, so its model and "
        "tool calls do not stop at the debugger (spec.debug.interactive); add lead to its peers "
        "to debug it"
    ]
    manifest["spec"]["debug"] = {"interactive": False}
    warnings.clear()
    await validate_agent_team(spec=cast(kopf.Spec, apply(cluster, manifest)), name="watched",
                              namespace=NS, warnings=warnings)  # fmt: skip
    assert warnings == []
