"""Reversible pseudonyms sealed by the team's Vault transit key on a real OpenBao: the operator
creates the key and grants it to the team's agents only; a pseudonym is restored by any agent of
the team, one value gets one pseudonym team-wide, and another team can restore nothing."""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest

from hive.api.agentteam import AgentTeamSpec
from hive.api.privacy import Boundary, DetectionMode, EntityRule, PrivacySpec, Strategy
from hive.dev.vault import DevVault
from hive.operator.vault import IdentityStore
from hive.ports import free_port
from hive.reconcile.vault import IdentityPlan, Mounts, identity_plan, pseudonym_key
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.keyring import TransitKeyring
from hive.settings import KubeSettings, VaultSettings
from tests.support import dev_settings

pytestmark = pytest.mark.integration
NS = "privacy"
EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "+1 212-555-0187"
POLICY = PrivacySpec(
    mode=DetectionMode.FAST,
    rules=[
        EntityRule(entity="EMAIL_ADDRESS", strategy=Strategy.PSEUDONYMISE),
        EntityRule(entity="CREDIT_CARD", strategy=Strategy.PSEUDONYMISE),
        EntityRule(entity="PHONE_NUMBER", strategy=Strategy.PSEUDONYMISE),
        EntityRule(entity="IP_ADDRESS", strategy=Strategy.HASH),
    ],
)


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevVault]:
    state = tmp_path_factory.mktemp("vault")
    server = DevVault(dev_settings(state, vault_port=free_port(), vault_cluster_port=free_port()))
    try:
        server.up()
        yield server
    finally:
        server.down()


def store_of(vault: DevVault) -> IdentityStore:
    settings = VaultSettings(
        address=vault.address, ca_file=vault.ca_file, token_file=vault.operator_token_file
    )
    return IdentityStore(settings, KubeSettings())


def team_plan(vault: DevVault, name: str, privacy: bool = True) -> IdentityPlan:
    """The operator applies the team's identities (with the operator's token, never root)."""
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "answer",
            "model": {"name": "m"},
            "agents": [{"name": "a", "role": "senior"}, {"name": "b", "role": "junior"}],
            **({"privacy": POLICY.model_dump(by_alias=True, mode="json")} if privacy else {}),
        }
    )
    plan = identity_plan(NS, name, spec, Mounts(), token_ttl_s=900, token_max_ttl_s=3600)
    store_of(vault).apply(plan)
    return plan


def agent_client(vault: DevVault, plan: IdentityPlan, agent: str) -> hvac.Client:
    """A token with exactly the agent's policy (what its Kubernetes login gives it)."""
    (identity,) = [i for i in plan.identities if i.agent == agent]
    token = vault.client().auth.token.create(policies=[identity.name], ttl="10m")
    return hvac.Client(url=vault.address, token=token["auth"]["client_token"], verify=vault.ca_file)


def agent_guard(vault: DevVault, plan: IdentityPlan, agent: str, key: str | None = None) -> Guard:
    assert plan.pseudonym_key is not None
    ring = TransitKeyring(agent_client(vault, plan, agent), key or plan.pseudonym_key)
    return Guard(POLICY, agent=agent, keyring=ring)


def test_the_operator_makes_a_convergent_key_only_for_a_team_with_a_privacy_policy(
    vault: DevVault,
) -> None:
    plan = team_plan(vault, "bees")
    assert plan.pseudonym_key == pseudonym_key(NS, "bees") == f"hive-{NS}-bees_pseudonyms"
    key = vault.client().secrets.transit.read_key(plan.pseudonym_key)["data"]
    assert (key["type"], key["derived"], key["convergent_encryption"]) == (
        "aes256-gcm96",
        True,
        True,
    )
    plain = team_plan(vault, "plain", privacy=False)
    assert plain.pseudonym_key is None
    assert "_pseudonyms" not in plain.identities[0].policy_hcl
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.client().secrets.transit.read_key(pseudonym_key(NS, "plain"))


def test_pseudonyms_are_restored_by_any_agent_of_the_team_and_are_one_per_value(
    vault: DevVault,
) -> None:
    plan = team_plan(vault, "bees")
    lead, helper = agent_guard(vault, plan, "a"), agent_guard(vault, plan, "b")
    text = f"Write to {EMAIL} about card {CARD}, call {PHONE}; from 10.1.2.3"
    scrubbed = lead.scrub_text(text, Boundary.MODEL_PROMPTS)
    for raw in (EMAIL, CARD, PHONE, "10.1.2.3"):
        assert raw not in scrubbed
    assert "@pseudonym.invalid" in scrubbed
    assert lead.restore(scrubbed) == text.replace("10.1.2.3", _hashed(lead, scrubbed))
    # the other agent (another pod) makes the same pseudonyms of the same values...
    assert helper.scrub_text(text, Boundary.MODEL_PROMPTS) == scrubbed
    # ...and restores the sealed ones without the table of the pod that made them
    email_pseudonym = scrubbed.split("Write to ", 1)[1].split(" ", 1)[0]
    assert agent_guard(vault, plan, "b").restore(f"mail {email_pseudonym}") == f"mail {EMAIL}"


def _hashed(guard: Guard, scrubbed: str) -> str:
    """The IP address's hash in `scrubbed` (the hash strategy takes the transit key's HMAC)."""
    return "<IP_ADDRESS:" + scrubbed.split("<IP_ADDRESS:", 1)[1].split(">", 1)[0] + ">"


def test_another_teams_agent_cannot_restore_a_pseudonym(vault: DevVault) -> None:
    bees, wasps = team_plan(vault, "bees"), team_plan(vault, "wasps")
    sealed = agent_guard(vault, bees, "a").scrub_text(f"mail {EMAIL}", Boundary.MODEL_PROMPTS)
    assert EMAIL not in sealed
    # with its own key: not one of its pseudonyms, left as it is
    assert agent_guard(vault, wasps, "a").restore(sealed) == sealed
    # with the bees' key: its policy refuses it the key, so nothing is restored either
    assert bees.pseudonym_key is not None
    thief = agent_guard(vault, wasps, "a", key=bees.pseudonym_key)
    assert thief.restore(sealed) == sealed
    with pytest.raises(hvac.exceptions.Forbidden):
        agent_client(vault, wasps, "a").secrets.transit.decrypt_data(
            bees.pseudonym_key, "vault:v1:AAAA", context="RU1BSUxfQUREUkVTUw=="
        )
    # a wasps pseudonym of the same value differs from the bees'
    other = agent_guard(vault, wasps, "a").scrub_text(f"mail {EMAIL}", Boundary.MODEL_PROMPTS)
    assert other != sealed


def test_a_value_is_redacted_not_passed_in_clear_when_the_key_is_refused(vault: DevVault) -> None:
    bees, wasps = team_plan(vault, "bees"), team_plan(vault, "wasps")
    assert bees.pseudonym_key is not None
    refused = agent_guard(vault, wasps, "a", key=bees.pseudonym_key)
    assert refused.scrub_text(f"mail {EMAIL}", Boundary.MODEL_PROMPTS) == "mail <EMAIL_ADDRESS>"


def test_removing_the_team_deletes_its_pseudonym_key(vault: DevVault) -> None:
    plan = team_plan(vault, "gone")
    assert plan.pseudonym_key is not None
    removed = store_of(vault).remove(plan.prefix, plan.transit_key, plan.pseudonym_key)
    assert f"transit key {plan.pseudonym_key}" in removed
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.client().secrets.transit.read_key(plan.pseudonym_key)


def test_the_values_of_one_text_are_sealed_together_as_each_alone(vault: DevVault) -> None:
    plan = team_plan(vault, "bees")
    together, alone = agent_guard(vault, plan, "a"), agent_guard(vault, plan, "b")
    mails = [f"user{i}@example.com" for i in range(4)]
    text = "copy " + ", ".join(mails)
    sealed = together.scrub_text(text, Boundary.MODEL_PROMPTS)  # one batch request
    assert sealed == "copy " + ", ".join(alone.scrub_text(m, Boundary.MODEL_PROMPTS) for m in mails)
    assert together.restore(sealed) == text


def test_removing_a_team_without_a_pseudonym_key_removes_the_rest(vault: DevVault) -> None:
    plan = team_plan(vault, "keyless", privacy=False)
    removed = store_of(vault).remove(plan.prefix, plan.transit_key, pseudonym_key(NS, "keyless"))
    assert removed[-1] == f"transit key {plan.transit_key}"
    assert store_of(vault).names(plan.prefix) == set()
