"""The Vault plan of a team with a privacy policy: its agents may seal, open and digest with the
team's pseudonym key, and only with that team's."""

from __future__ import annotations

from hive.api.agentteam import AgentTeamSpec
from hive.reconcile.vault import Mounts, identity_plan, pseudonym_key


def spec(privacy: bool) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(
        {
            "goal": "g",
            "model": {"name": "m"},
            "agents": [{"name": "lead", "role": "senior"}],
            **({"privacy": {"mode": "fast"}} if privacy else {}),
        }
    )


def test_a_team_with_a_privacy_policy_gets_a_pseudonym_key_and_its_grants() -> None:
    plan = identity_plan("ns", "bees", spec(True), Mounts(), token_ttl_s=60, token_max_ttl_s=60)
    assert plan.pseudonym_key == "hive-ns-bees_pseudonyms"
    hcl = plan.identities[0].policy_hcl
    for verb in ("encrypt", "decrypt", "hmac"):
        assert (
            f'path "transit/{verb}/hive-ns-bees_pseudonyms" {{ capabilities = ["update"] }}' in hcl
        )
    assert "keys/hive-ns-bees_pseudonyms" not in hcl  # the key itself is never readable


def test_a_team_without_one_gets_neither() -> None:
    plan = identity_plan("ns", "bees", spec(False), Mounts(), token_ttl_s=60, token_max_ttl_s=60)
    assert plan.pseudonym_key is None
    assert "pseudonyms" not in plan.identities[0].policy_hcl


def test_no_team_name_gives_another_teams_pseudonym_key() -> None:
    # "_" is in no namespace or team name, so "bees_pseudonyms" is no team's signing key
    assert pseudonym_key("ns", "bees") != "hive-ns-bees-pseudonyms"
    assert pseudonym_key("ns", "bees-pseudonyms") != pseudonym_key("ns", "bees")
