"""Agent identities in a real OpenBao, logged in with real ServiceAccount tokens of the session's
API server: each agent reads only its own secrets, tokens are renewed or replaced without a failed
read, a restarted server is recovered from, and the operator reports down/sealed/denied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from hive.api.agentteam import AgentTeamSpec
from hive.cli.agent import vault_model_key
from hive.dev.vault import OPERATOR_POLICY, DevVault
from hive.errors import ExternalFailure, Unavailable
from hive.kube.resources import apply_crds
from hive.kube.tokens import service_account_token
from hive.operator.state import STATE
from hive.operator.teams import reconcile_team
from hive.operator.vault import (
    DENIED,
    SEALED,
    UNAVAILABLE,
    IdentityStore,
    VaultProblem,
    forget_applied,
    sweep,
)
from hive.ports import free_port
from hive.reconcile.vault import IdentityPlan, Mounts, identity_name, identity_plan, team_prefix
from hive.runtime.identity.vault import AgentVault
from hive.runtime.pod import PodConfig
from hive.settings import KubeSettings, Settings, VaultSettings
from tests.scripted_model import scripted_model
from tests.support import Cluster, vault_on_cluster

pytestmark = pytest.mark.integration
NS = "vault-ids"
MODEL = "teams/research/model"


def team(name: str) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(
        {
            "goal": "answer",
            "model": {"name": "m", "vaultRef": {"path": MODEL, "key": "api-key"}},
            "agents": [{"name": "a", "role": "senior"}, {"name": "b", "role": "junior"}],
        }
    )


@pytest.fixture(scope="module")
def vault(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevVault]:
    state = tmp_path_factory.mktemp("vault")
    with vault_on_cluster(cluster, state, NS, ("research", "quick")) as server:
        root = server.client()
        root.secrets.kv.v2.create_or_update_secret(MODEL, secret={"api-key": "sk-model"})
        for agent in ("a", "b"):
            root.secrets.kv.v2.create_or_update_secret(
                f"hive/{NS}/research/{agent}/notes", secret={"v": f"secret of {agent}"}
            )
        yield server


def settings_of(vault: DevVault, **overrides: object) -> VaultSettings:
    values: dict[str, object] = {
        "address": vault.address,
        "ca_file": vault.ca_file,
        "token_file": vault.operator_token_file,
    }
    values.update(overrides)
    return VaultSettings.model_validate(values)


def apply(vault: DevVault, name: str, ttl_s: int = 900, max_ttl_s: int = 3600) -> IdentityPlan:
    plan = identity_plan(
        NS, name, team(name), Mounts(), token_ttl_s=ttl_s, token_max_ttl_s=max_ttl_s
    )
    store = IdentityStore(settings_of(vault), KubeSettings())
    applied = store.apply(plan)
    assert [(a.agent, a.bound) for a in applied] == [("a", True), ("b", True)]
    return plan


def agent(cluster: Cluster, vault: DevVault, tmp: Path, team_name: str, name: str) -> AgentVault:
    jwt = tmp / f"{team_name}-{name}.jwt"
    jwt.write_text(service_account_token(cluster.client, NS, f"{team_name}-{name}"))
    return AgentVault(
        settings_of(vault, token_file=None),
        role=identity_name(NS, team_name, name),
        jwt_file=jwt,
    )


def test_an_agent_reads_its_own_secrets_and_the_model_key_and_not_another_agents(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    apply(vault, "research")
    a = agent(cluster, vault, tmp_path, "research", "a")
    assert a.read(f"hive/{NS}/research/a/notes", "v").get_secret_value() == "secret of a"
    assert a.read(MODEL, "api-key").get_secret_value() == "sk-model"
    with pytest.raises(ExternalFailure, match="403"):
        a.read(f"hive/{NS}/research/b/notes", "v")
    with pytest.raises(hvac.exceptions.Forbidden):  # the same refusal, as Vault answers it
        a.client.secrets.kv.v2.read_secret_version(
            f"hive/{NS}/research/b/notes", raise_on_deleted_version=True
        )
    signed = a.client.secrets.transit.sign_data(f"hive-{NS}-research", "aGk=")
    assert signed["data"]["signature"].startswith("vault:v1:")


def test_a_token_of_another_service_account_cannot_log_in_as_this_agent(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    apply(vault, "research")
    b_as_a = agent(cluster, vault, tmp_path, "research", "b")
    b_as_a.role = identity_name(NS, "research", "a")
    with pytest.raises(hvac.exceptions.Forbidden):
        b_as_a.login()


def test_short_lived_tokens_are_renewed_then_replaced_without_a_failed_read(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    apply(vault, "quick", ttl_s=2, max_ttl_s=4)
    root = vault.client()
    root.secrets.kv.v2.create_or_update_secret(f"hive/{NS}/quick/a/k", secret={"v": "x"})
    a = agent(cluster, vault, tmp_path, "quick", "a")
    deadline = time.monotonic() + 9
    reads = 0
    while time.monotonic() < deadline:
        assert a.read(f"hive/{NS}/quick/a/k", "v").get_secret_value() == "x"
        reads += 1
        time.sleep(0.2)
    assert a.renewals >= 1, "the token was never renewed"
    assert a.logins >= 2, "the token was never replaced after its max TTL"
    print(f"{reads} reads, {a.renewals} renewals, {a.logins} logins, none failed")


def test_an_agent_recovers_when_vault_restarts(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    apply(vault, "research")
    a = agent(cluster, vault, tmp_path, "research", "a")
    assert a.read(MODEL, "api-key").get_secret_value() == "sk-model"
    vault.down()
    with pytest.raises(Unavailable):
        a.read(MODEL, "api-key")
    vault.up()
    assert a.read(MODEL, "api-key").get_secret_value() == "sk-model"


def test_the_operator_names_a_down_a_sealed_and_a_refusing_vault(
    vault: DevVault, tmp_path: Path
) -> None:
    plan = identity_plan(NS, "bad", team("bad"), Mounts(), token_ttl_s=900, token_max_ttl_s=3600)
    down = IdentityStore(
        settings_of(vault, address=f"https://127.0.0.1:{free_port()}"), KubeSettings()
    )
    with pytest.raises(VaultProblem) as caught:
        down.apply(plan)
    assert caught.value.reason == UNAVAILABLE
    wrong = tmp_path / "token"
    wrong.write_text("s.not-a-token")
    with pytest.raises(VaultProblem) as caught:
        IdentityStore(settings_of(vault, token_file=wrong), KubeSettings()).apply(plan)
    assert caught.value.reason == DENIED
    store = IdentityStore(settings_of(vault), KubeSettings())
    vault.client().sys.seal()
    try:
        with pytest.raises(VaultProblem) as caught:
            store.apply(plan)
        assert caught.value.reason == SEALED
    finally:
        vault.up()  # unseals from the key file
    assert store.names(plan.prefix) == set()  # nothing half-created by the failed calls


def test_removing_a_team_deletes_its_roles_policies_and_key_only(vault: DevVault) -> None:
    kept = apply(vault, "research")
    gone = apply(vault, "quick")
    store = IdentityStore(settings_of(vault), KubeSettings())
    removed = store.remove(gone.prefix, gone.transit_key)
    assert len(removed) == 5  # two roles, two policies, one transit key
    assert store.names(gone.prefix) == set()
    assert store.names(kept.prefix) == {i.name for i in kept.identities}


@pytest.fixture
def operator_with_vault(cluster: Cluster, vault: DevVault) -> Iterator[None]:
    """The operator's state as `hive operator` sets it, pointed at the session's API server and
    at this Vault."""
    apply_crds(cluster.client)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(
        kube=KubeSettings(kubeconfig=cluster.kubeconfig), vault=settings_of(vault)
    )
    STATE._client = None
    try:
        yield
    finally:
        STATE.settings, STATE._client = before


def ready_of(cluster: Cluster, name: str) -> tuple[str, str, list[dict[str, object]]]:
    status = json.loads(cluster.kubectl("get", "agentteam", name, "-n", NS, "-o", "json").stdout)[
        "status"
    ]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    return ready["status"], ready["reason"], status.get("identities", [])


async def test_the_team_is_not_ready_and_has_no_children_while_vault_is_sealed_or_down(
    cluster: Cluster, vault: DevVault, operator_with_vault: None, tmp_path: Path
) -> None:
    name = "guarded"
    manifest = tmp_path / "team.yaml"
    manifest.write_text(
        json.dumps(
            {
                "apiVersion": "hive.dev/v1alpha1",
                "kind": "AgentTeam",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "goal": "answer",
                    "model": {"name": "m", "vaultRef": {"path": MODEL}},
                    "agents": [{"name": "a", "role": "senior"}],
                },
            }
        )
    )
    cluster.kubectl("apply", "-f", str(manifest))
    vault.client().sys.seal()
    try:
        await reconcile_team(NS, name)
        assert ready_of(cluster, name)[:2] == ("False", "VaultSealed")
        got = cluster.kubectl("get", "serviceaccount", f"{name}-a", "-n", NS, check=False)
        assert got.returncode != 0, "a ServiceAccount was made without its Vault identity"
    finally:
        vault.up()
    await reconcile_team(NS, name)
    _, reason, identities = ready_of(cluster, name)
    assert reason != "VaultSealed"
    role = identity_name(NS, name, "a")
    assert identities == [{"agent": "a", "role": role, "policy": role, "bound": True}]
    cluster.kubectl("get", "serviceaccount", f"{name}-a", "-n", NS)

    vault.down()
    try:
        forget_applied()
        await reconcile_team(NS, name)
        assert ready_of(cluster, name)[:2] == ("False", "VaultUnavailable")
        # deleting the team while Vault is down neither waits nor fails; the sweep cleans up
        cluster.kubectl("delete", "agentteam", name, "-n", NS, "--wait=true")
    finally:
        vault.up()
    store = IdentityStore(settings_of(vault), KubeSettings())
    assert store.names(team_prefix(NS, name)) == {role}
    # an operator that watches another namespace leaves this one's names alone
    await sweep(store, set(), only_namespace=f"{NS}-other")
    assert store.names(team_prefix(NS, name)) == {role}
    await sweep(store, set())  # no team exists any more in this view
    assert store.names(team_prefix(NS, name)) == set()


def test_an_agent_pod_reads_its_model_key_from_vault_not_the_environment(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    apply(vault, "research")
    jwt = tmp_path / "token"
    jwt.write_text(service_account_token(cluster.client, NS, "research-a"))
    config = PodConfig(team="research", namespace=NS, agent="a", spec=team("research"))
    settings = Settings(
        model_api_key="from-the-environment",
        vault=settings_of(vault, token_file=None, jwt_file=jwt),
    )
    assert vault_model_key(config, settings).get_secret_value() == "sk-model"


def operator_role(
    cluster: Cluster, vault: DevVault, tmp: Path, *, ttl_s: int, max_ttl_s: int
) -> Path:
    """What a Vault admin makes for the operator in a cluster: a Kubernetes-auth role bound to
    its ServiceAccount with the policy `hive-operator`; returns that ServiceAccount's token."""
    cluster.kubectl("create", "serviceaccount", "hive-operator", "-n", NS, check=False)
    vault.client().adapter.post(
        "/v1/auth/kubernetes/role/hive-operator",
        json={
            "bound_service_account_names": ["hive-operator"],
            "bound_service_account_namespaces": [NS],
            "token_policies": [OPERATOR_POLICY],
            "token_ttl": ttl_s,
            "token_max_ttl": max_ttl_s,
        },
    )
    jwt = tmp / "operator.jwt"
    jwt.write_text(service_account_token(cluster.client, NS, "hive-operator"))
    return jwt


def test_the_operator_logs_in_with_its_kubernetes_role_and_keeps_its_token_fresh(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    jwt = operator_role(cluster, vault, tmp_path, ttl_s=2, max_ttl_s=4)
    settings = settings_of(vault, token_file=None, role="hive-operator")
    # In the pod the token is <kube.service_account_dir>/token: the default of jwt_file.
    store = IdentityStore(settings, KubeSettings(service_account_dir=tmp_path / "sa"))
    assert store.jwt_file == tmp_path / "sa" / "token"
    (tmp_path / "sa").mkdir()
    (tmp_path / "sa" / "token").write_text(jwt.read_text())
    assert store.session is not None

    plan = identity_plan(NS, "byrole", team("byrole"), Mounts(), token_ttl_s=60, token_max_ttl_s=60)
    assert [(a.agent, a.bound) for a in store.apply(plan)] == [("a", True), ("b", True)]
    me = store.client().auth.token.lookup_self()["data"]
    assert me["policies"] == ["default", OPERATOR_POLICY]  # its role's policy, never root
    assert me["meta"]["service_account_name"] == "hive-operator"

    deadline = time.monotonic() + 9
    calls = 0
    while time.monotonic() < deadline:  # past the max TTL twice, and not one refusal
        assert store.names(plan.prefix) == plan.names()
        calls += 1
        time.sleep(0.3)
    assert store.session.renewals >= 1, "the operator's token was never renewed"
    assert store.session.logins >= 2, "the operator's token was never replaced at its max TTL"

    removed = store.remove(plan.prefix, plan.transit_key)
    assert f"transit key {plan.transit_key}" in removed
    assert store.names(plan.prefix) == set()
    print(f"{calls} calls, {store.session.renewals} renewals, {store.session.logins} logins")


def test_the_operators_role_refuses_another_service_accounts_token(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    operator_role(cluster, vault, tmp_path, ttl_s=60, max_ttl_s=120)
    other = tmp_path / "other.jwt"
    other.write_text(service_account_token(cluster.client, NS, "research-a"))
    settings = settings_of(vault, token_file=None, role="hive-operator", jwt_file=other)
    plan = identity_plan(NS, "nope", team("nope"), Mounts(), token_ttl_s=60, token_max_ttl_s=60)
    with pytest.raises(VaultProblem) as caught:
        IdentityStore(settings, KubeSettings()).apply(plan)
    assert caught.value.reason == DENIED
    assert not caught.value.retryable


def test_hive_run_reads_the_model_key_as_the_teams_coordinator_and_never_from_the_env(
    cluster: Cluster, vault: DevVault, tmp_path: Path
) -> None:
    """A local run takes the identity a pod of the team would: the coordinator's ServiceAccount
    token logs in as its role, and the key reaches the model; before the team's identities exist
    the run stops with a one-line error that says what to do."""
    team_file = tmp_path / "team.yaml"

    def write_team(name: str, endpoint: str) -> None:
        manifest = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "goal": "answer",
                "model": {
                    "name": "m",
                    "endpoint": endpoint,
                    "vaultRef": {"path": MODEL, "key": "api-key"},
                },
                "agents": [{"name": "a", "role": "senior"}],
            },
        }
        team_file.write_text(json.dumps(manifest))

    def hive_run() -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "HIVE_VAULT__ADDRESS": vault.address,
            "HIVE_VAULT__CA_FILE": str(vault.ca_file),
            "HIVE_MODEL_API_KEY": "sk-from-the-environment",
        }
        argv = [sys.executable, "-m", "hive", "run", str(team_file), "--no-live"]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    apply(vault, "research")
    with scripted_model([{"content": "the answer"}]) as model:
        write_team("research", model.url)
        done = hive_run()
        assert done.returncode == 0, done.stdout + done.stderr
        assert model.authorizations == ["Bearer sk-model"], "the key from Vault, not the env"
    write_team("nobody", "http://127.0.0.1:9/v1")
    refused = hive_run()
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert "ServiceAccount vault-ids/nobody-a" in refused.stderr
    assert "kubectl apply -f" in refused.stderr
