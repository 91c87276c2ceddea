"""Reachability with Z3 over the objects the operator's builders make for a team: who reaches
whom, what each agent's egress opens, the isolation and ServiceAccount proofs — and the
counterexamples when a policy or a Role is widened."""

from __future__ import annotations

import yaml

from hive.verify.reachability import Pod, isolation_proof, reachability, role_proof
from tests.support import REPO

SPEC = yaml.safe_load((REPO / "examples" / "hierarchical.yaml").read_text())["spec"]


def test_each_agent_reaches_its_team_and_no_outsider_reaches_it() -> None:
    reports = {r.agent: r for r in reachability(SPEC, "brief", "research")}
    assert set(reports) == {"lead", "researcher", "writer"}
    assert set(reports["lead"].peers) == {"researcher", "writer", "brief-model"}
    assert any("443" in e for e in reports["writer"].endpoints)
    for report in reports.values():
        assert [p.outcome for p in report.proofs] == ["proved", "proved"], report.proofs


def test_an_ingress_open_to_every_namespace_is_refuted_with_the_pod() -> None:
    policy = {
        "podSelector": {"matchLabels": {"hive.dev/agent": "lead"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}],
    }
    me = Pod.concrete("research", {"hive.dev/team": "brief", "hive.dev/agent": "lead"})
    proof = isolation_proof("lead", [policy], me, "brief", "research")
    assert proof.outcome == "refuted"
    assert "outsider.namespace" in proof.counterexample


def test_a_role_that_can_write_secrets_is_refuted_with_the_write() -> None:
    rules = [
        {
            "apiGroups": ["hive.dev"],
            "resources": ["agentteams/status"],
            "verbs": ["patch"],
            "resourceNames": ["brief"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"]},
    ]
    proof = role_proof("lead", rules, "brief")
    assert proof.outcome == "refuted"
    assert '"secrets"' in proof.counterexample
    assert proof.counterexample.count("update") == 1
    own = role_proof("lead", rules[:1], "brief")
    assert own.outcome == "proved"
