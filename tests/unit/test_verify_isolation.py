"""spec.isolation proved with Z3 over the objects the operator's builders make: holding teams
are proved, and hand-made violating teams (a peer the NetworkPolicy still opens, the debugger's
port open to every pod, a port outside the declared ones, a sandbox whose SandboxPolicy opens
the network) are refuted with the agent, what it reaches and the rule that lets it."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
import yaml
import z3

from hive.api.agentteam import AgentTeamSpec
from hive.verify.isolation import (
    Claim,
    decide,
    declaration_problem,
    isolation_problem,
    isolation_proofs,
    peer_claims,
    team_objects,
)
from tests.support import REPO

BASE = yaml.safe_load((REPO / "examples" / "hierarchical.yaml").read_text())["spec"]
OPEN_POLICY = {"network": {"mode": "allowlist", "egress": [{"host": "pypi.org", "ports": [443]}]}}


def team(**isolation: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["isolation"] = isolation
    return spec


def outcomes(spec: dict[str, Any], policies: dict[str, Any] | None = None) -> dict[str, str]:
    return {p.name: p.outcome for p in isolation_proofs(spec, "brief", "research", policies or {})}


def test_a_holding_team_is_proved_on_every_claim() -> None:
    spec = team(
        peers=[
            {"agent": "lead", "peers": ["researcher", "writer"]},
            {"agent": "researcher", "peers": []},
            {"agent": "writer", "peers": ["researcher"]},
        ],
        inbound="team",
        outboundPorts=[443, 6443],
    )
    found = outcomes(spec)
    assert set(found) == {
        "researcher-peers",  # lead may reach every agent: nothing to prove of it
        "writer-peers",
        "lead-inbound",
        "researcher-inbound",
        "writer-inbound",
        "lead-outbound",
        "researcher-outbound",
        "writer-outbound",
    }
    assert set(found.values()) == {"proved"}, found
    assert isolation_problem(spec, "brief", "research", {}) is None


def test_the_builder_opens_only_the_declared_peers() -> None:
    spec = team(peers=[{"agent": "researcher", "peers": ["writer"]}])
    objects = team_objects(spec, "brief", "research", {})
    policy = next(p for p in objects.policies if p["metadata"]["name"] == "brief-researcher")
    reached = policy["spec"]["egress"][0]["to"]
    agents = [p["podSelector"]["matchLabels"].get("hive.dev/agent") for p in reached]
    assert agents == [None, "writer"]  # the team's servers, then the one peer


def test_a_policy_still_open_to_the_whole_team_is_refuted_with_the_peer() -> None:
    spec = team(peers=[{"agent": "researcher", "peers": ["writer"]}])
    objects = team_objects(spec, "brief", "research", {})
    widened = copy.deepcopy(objects.policies)
    for policy in widened:  # as a builder that ignored the declaration would make it
        if policy["metadata"]["name"] == "brief-researcher":
            policy["spec"]["egress"][0]["to"] = [
                {"podSelector": {"matchLabels": {"hive.dev/team": "brief"}}}
            ]
    parsed = AgentTeamSpec.model_validate(spec)
    (claim,) = peer_claims(parsed, replace(objects, policies=widened))
    proof = decide(claim, lambda model, where: where)
    assert proof.outcome == "refuted"
    assert proof.counterexample == "NetworkPolicy brief-researcher egress[0]"
    (honest,) = peer_claims(parsed, objects)
    assert decide(honest, lambda model, where: where).outcome == "proved"


def test_the_debuggers_port_breaks_inbound_team_isolation() -> None:
    spec = team(inbound="team")
    spec["debug"] = {"interactive": True}
    found = outcomes(spec)
    assert found["lead-inbound"] == "refuted"  # the senior serves the debugger
    problem = isolation_problem(spec, "brief", "research", {})
    assert problem is not None
    assert "connects to lead on TCP/" in problem
    assert "through NetworkPolicy brief-lead ingress[1]" in problem


def test_a_port_outside_the_declared_ones_is_refuted_with_the_rule() -> None:
    spec = team(outboundPorts=[443])
    problem = isolation_problem(spec, "brief", "research", {})
    assert problem is not None
    assert "reaches TCP/6443 outside the team through NetworkPolicy brief-lead egress[2]" in (
        problem
    )
    model_on_8000 = team(outboundPorts=[443, 6443])
    model_on_8000["model"] = {"name": "m", "endpoint": "http://models.example:8000/v1"}
    problem = isolation_problem(model_on_8000, "brief", "research", {})
    assert problem is not None
    assert "TCP/8000" in problem


def code_running(spec: dict[str, Any]) -> dict[str, Any]:
    spec["agents"][1]["tools"] = [{"name": "python", "version": "*"}]
    spec["agents"][1]["sandboxPolicyRef"] = {"name": "sandbox"}
    return spec


def test_a_sandbox_policy_with_an_allowlist_breaks_sandbox_network_none() -> None:
    spec = code_running(team(sandboxNetwork="none"))
    closed = {"network": {"mode": "none"}}
    assert outcomes(spec, {"sandbox": closed}) == {"brief-sandbox-sandbox-network": "proved"}
    problem = isolation_problem(spec, "brief", "research", {"sandbox": OPEN_POLICY})
    assert problem == (
        "spec.isolation does not hold: sandbox brief-sandbox-sandbox reaches no network is "
        "false: brief-sandbox-sandbox reaches TCP/443 through NetworkPolicy "
        "sandbox-sandbox egress[0]"
    )
    allowlisted = code_running(team(sandboxNetwork="allowlist"))
    assert isolation_problem(allowlisted, "brief", "research", {"sandbox": OPEN_POLICY}) is None


@pytest.mark.parametrize(
    ("peers", "message"),
    [
        ([{"agent": "ghost", "peers": []}], "peers[0].agent: 'ghost' is not an agent"),
        ([{"agent": "writer", "peers": ["ghost"]}], "peers[0].peers: 'ghost' is not an agent"),
        (
            [{"agent": "lead", "peers": ["writer"]}],
            "peers[0].peers: lead delegates to researcher, which its peers must include",
        ),
        (
            [{"agent": "writer", "peers": []}, {"agent": "writer", "peers": []}],
            "peers[1].agent: 'writer' is listed twice",
        ),
    ],
)
def test_a_declaration_naming_no_agent_or_cutting_a_delegation_is_refused(
    peers: list[dict[str, Any]], message: str
) -> None:
    problem = declaration_problem(team(peers=peers))
    assert problem is not None
    assert message in problem


def test_an_unknown_is_reported_as_unknown() -> None:
    x, y, z = z3.Ints("x y z")
    hard = z3.And(x * x * x + y * y * y + z * z * z == 42, x > 10**6)  # a sum of three cubes
    claim = Claim(
        "hard", "no rule allows it", hard, [("NetworkPolicy p egress[0]", z3.BoolVal(True))]
    )
    proof = decide(claim, lambda model, where: where, timeout_ms=1)
    assert proof.outcome == "unknown"
    assert proof.counterexample.startswith("NetworkPolicy p egress[0]: ")


def test_no_declaration_no_proofs() -> None:
    assert isolation_proofs(copy.deepcopy(BASE), "brief", "research", {}) == []
