"""The Vault identity plan: one policy and one role per agent, each policy only its own paths."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec, ModelSpec
from hive.reconcile.vault import Mounts, identity_plan, leftovers, transit_key


def spec(model: dict[str, Any] | None = None) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(
        {
            "goal": "answer",
            "model": model or {"name": "m", "vaultRef": {"path": "teams/research/model"}},
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["dev"]},
                {"name": "dev", "role": "junior"},
            ],
        }
    )


def plan(s: AgentTeamSpec | None = None, team: str = "research") -> Any:
    return identity_plan(
        "default", team, s or spec(), Mounts(), token_ttl_s=900, token_max_ttl_s=3600
    )


def test_one_identity_per_agent_bound_to_its_service_account() -> None:
    p = plan()
    assert [(i.agent, i.name, i.service_account) for i in p.identities] == [
        ("lead", "hive_default_research_lead", "research-lead"),
        ("dev", "hive_default_research_dev", "research-dev"),
    ]
    assert all(i.namespace == "default" for i in p.identities)
    assert all((i.token_ttl_s, i.token_max_ttl_s) == (900, 3600) for i in p.identities)
    assert p.transit_key == transit_key("default", "research") == "hive-default-research"


def test_a_policy_grants_its_own_paths_the_model_key_and_the_team_key_only() -> None:
    lead, dev = plan().identities
    assert 'path "secret/data/hive/default/research/lead/*"' in lead.policy_hcl
    assert "research/dev" not in lead.policy_hcl
    assert 'path "secret/data/teams/research/model" { capabilities = ["read"] }' in lead.policy_hcl
    assert 'path "transit/sign/hive-default-research"' in dev.policy_hcl
    assert "lead" not in dev.policy_hcl
    # nothing broader than the agent's own folder, the model key and the team's key
    for line in lead.policy_hcl.splitlines():
        assert (
            ("research/lead/" in line)
            or ("hive-default-research" in line)
            or ("teams/research/model" in line)
        )


def test_without_a_vault_ref_no_model_key_is_granted() -> None:
    lead, _ = plan(spec({"name": "m", "secretRef": {"name": "key"}})).identities
    assert "teams/research/model" not in lead.policy_hcl


def test_leftovers_are_removed_agents_of_this_team_only() -> None:
    p = plan()
    existing = {
        "hive_default_research_lead",
        "hive_default_research_gone",
        "hive_default_research-b_lead",  # team research-b: never this team's
        "hive_other_research_lead",
        "hive-operator",
    }
    assert leftovers(p, existing) == {"hive_default_research_gone"}


def test_secret_ref_and_vault_ref_together_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="vaultRef"):
        ModelSpec.model_validate(
            {"name": "m", "secretRef": {"name": "k"}, "vaultRef": {"path": "a/b"}}
        )


@pytest.mark.parametrize("path", ["a/../b", "/abs", "a//b", ""])
def test_bad_vault_paths_are_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="path"):
        ModelSpec.model_validate({"name": "m", "vaultRef": {"path": path}})
