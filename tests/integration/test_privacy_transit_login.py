"""An agent pod's privacy policy with a Vault: the pod logs in as its own role with its
ServiceAccount token (a real API server's) and seals pseudonyms with its team's transit key,
which another agent of the team opens; a team whose key is missing fails to start the policy
rather than run without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hive.api.agentteam import AgentTeamSpec
from hive.api.privacy import Boundary
from hive.cli.agent import pseudonym_keyring
from hive.dev.vault import DevVault
from hive.kube.tokens import service_account_token
from hive.operator.vault import IdentityStore
from hive.reconcile.vault import Mounts, identity_plan
from hive.runtime.pod import PodConfig
from hive.runtime.privacy.wiring import PrivacyNotStarted, pod_guard
from hive.settings import KubeSettings, Settings, VaultSettings
from tests.support import Cluster, vault_on_cluster

pytestmark = pytest.mark.integration
NS = "privacy-login"
EMAIL = "jane.doe@example.com"


def team(privacy: bool) -> AgentTeamSpec:
    policy = {"mode": "fast", "rules": [{"entity": "EMAIL_ADDRESS", "strategy": "pseudonymise"}]}
    return AgentTeamSpec.model_validate(
        {
            "goal": "answer",
            "model": {"name": "m"},
            "agents": [{"name": "a", "role": "senior"}, {"name": "b", "role": "junior"}],
            **({"privacy": policy} if privacy else {}),
        }
    )


@pytest.fixture(scope="module")
def vault(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevVault]:
    with vault_on_cluster(
        cluster, tmp_path_factory.mktemp("vault"), NS, ("shop", "plain")
    ) as server:
        operator = VaultSettings(
            address=server.address, ca_file=server.ca_file, token_file=server.operator_token_file
        )
        store = IdentityStore(operator, KubeSettings())
        for name, privacy in (("shop", True), ("plain", False)):
            store.apply(
                identity_plan(
                    NS, name, team(privacy), Mounts(), token_ttl_s=900, token_max_ttl_s=3600
                )
            )
        yield server


def pod(
    cluster: Cluster, vault: DevVault, tmp: Path, name: str, agent: str
) -> tuple[PodConfig, Settings]:
    """What an agent's pod holds: its config and settings (Vault address, its token file)."""
    jwt = tmp / f"{name}-{agent}.jwt"
    jwt.write_text(service_account_token(cluster.client, NS, f"{name}-{agent}"))
    vault_settings = VaultSettings(address=vault.address, ca_file=vault.ca_file, jwt_file=jwt)
    config = PodConfig(team=name, namespace=NS, agent=agent, spec=team(True))
    return config, Settings(vault=vault_settings)


def test_agents_of_a_team_seal_and_open_pseudonyms_with_its_transit_key(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    guards = []
    for agent in ("a", "b"):
        config, settings = pod(cluster, vault, tmp_path, "shop", agent)
        keyring = pseudonym_keyring(config, settings)
        assert keyring is not None
        guard = pod_guard(config.spec.privacy, agent, settings.privacy, keyring)
        assert guard is not None
        guards.append(guard)
    lead, helper = guards
    sealed = lead.scrub_text(f"mail {EMAIL}", Boundary.MODEL_PROMPTS)
    assert EMAIL not in sealed
    assert helper.scrub_text(f"mail {EMAIL}", Boundary.MODEL_PROMPTS) == sealed
    assert helper.restore(sealed) == f"mail {EMAIL}"


def test_without_a_vault_the_pod_keeps_the_secrets_key(tmp_path: Path) -> None:
    config = PodConfig(team="shop", namespace=NS, agent="a", spec=team(True))
    assert pseudonym_keyring(config, Settings()) is None


def test_a_pod_whose_team_has_no_pseudonym_key_does_not_start_its_policy(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    config, settings = pod(cluster, vault, tmp_path, "plain", "a")
    keyring = pseudonym_keyring(config, settings)
    with pytest.raises(
        PrivacyNotStarted, match="transit key transit/hive-privacy-login-plain_pseudonyms"
    ):
        pod_guard(config.spec.privacy, "a", settings.privacy, keyring)
