"""A team's privacy policy in real pods on the real node: the task's email address, card number
and person's name never reach the (scripted) model; the team's status says what was found and
done (status.privacy) and that nothing went out in clear.

In a cluster the answer stays pseudonymised: status.run.result is readable by whoever can read
the team, so restoreForRequester applies only where the requester runs the team (`hive run`);
the test asserts the raw values are in neither the model's requests nor the team's status.

With a Vault (OpenBao on loopback, relayed to the node's pods), the operator makes the team's
pseudonym key in transit and the pod seals pseudonyms with it, logged in as its own role: the
email's pseudonym the model got is opened by that key, and by no other team's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster, dev_settings

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import get_team, real_team
from e2e.test_real_pod_faults import apply
from hive.dev.node import RealNode
from hive.dev.vault import DevVault
from hive.kube.tokens import token_reviewer
from hive.ports import free_port
from hive.reconcile.vault import pseudonym_key
from hive.runtime.privacy.handling import TOKEN, sealed_in
from hive.runtime.privacy.keyring import TransitKeyring

pytestmark = pytest.mark.e2e

EMAIL, CARD, NAME = "ada.lovelace@example.com", "4111 1111 1111 1111", "Ada Lovelace"
GOAL = f"Write to {NAME} at {EMAIL} that card {CARD} was charged."
POLICY = {
    "mode": "ner",
    "rules": [
        {"entity": "EMAIL_ADDRESS", "strategy": "pseudonymise"},
        {"entity": "PERSON", "strategy": "pseudonymise"},
        {"entity": "CREDIT_CARD", "strategy": "redact"},
    ],
    "restoreForRequester": True,
}
SCRIPT = {"clerk": [{"when": "Write to", "content": "Done: the customer was told."}]}


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def what_happened(cluster: Cluster, name: str = "guarded") -> str:
    status = get_team(cluster, name).get("status", {})
    logs = cluster.kubectl(
        "logs", "-l", f"hive.dev/team={name},hive.dev/agent=clerk", "--tail=40", check=False
    )
    return f"status: {json.dumps(status)[:3000]}\nagent log:\n{logs.stdout}{logs.stderr}"


def reported(cluster: Cluster, name: str = "guarded") -> dict[str, Any] | None:
    status = get_team(cluster, name).get("status", {})
    run = status.get("run") or {}
    done = run.get("outcome") not in (None, "Running") and status.get("privacy")
    return status if done else None


def test_no_raw_personal_data_reaches_the_model_or_the_status(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode, model: ScriptedModel
) -> None:
    agents = [{"name": "clerk", "role": "junior"}]
    team = real_team("guarded", real_node, model.url, GOAL, agents, privacy=POLICY)
    apply(cluster, team)
    try:
        try:
            status = wait_for(lambda: reported(cluster), 90, "the run and status.privacy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster)}") from None
        assert status is not None
        assert status["run"]["outcome"] == "Succeeded", what_happened(cluster)
        sent = json.dumps(model.requests_of("clerk"))
        assert "Write to" in sent  # the task reached the model
        for raw in (EMAIL, CARD, NAME):
            assert raw not in sent
            assert raw not in json.dumps(status)
        privacy = status["privacy"]
        assert privacy["byEntity"].keys() >= {"EMAIL_ADDRESS", "PERSON", "CREDIT_CARD"}
        assert privacy["actions"].keys() >= {"pseudonymise", "redact"}
        assert privacy["byBoundary"]["modelPrompts"] >= 3
        assert privacy.get("inClear", []) == []
    finally:
        cluster.kubectl("delete", "agentteam", "guarded", "--wait=false", check=False)


@pytest.fixture
def sealing_vault(
    cluster: Cluster, real_node: RealNode, operator: OperatorProcess, tmp_path: Path
) -> Iterator[DevVault]:
    """OpenBao reachable from the node's pods, the operator restarted with it (and without it
    after)."""
    server = DevVault(
        dev_settings(tmp_path, vault_port=free_port(), vault_cluster_port=free_port())
    )
    relay_port = free_port()
    before = dict(operator.env)
    try:
        server.up()
        server.configure_kubernetes_auth(
            cluster.plane.url,
            cluster.plane.pki.ca.cert.read_text(),
            token_reviewer(cluster.client, "hive-system"),
        )
        listen = real_node.relay("vault-relay", relay_port, "127.0.0.1", server.settings.vault_port)
        operator.stop()
        operator.env.update(
            {**server.operator_env(), "HIVE_VAULT__POD_ADDRESS": f"https://{listen}"}
        )
        operator.start()
        yield server
    finally:
        operator.stop()
        operator.env.clear()
        operator.env.update(before)
        operator.start()
        real_node.processes.stop("vault-relay")
        server.down()


def test_with_a_vault_the_pods_pseudonyms_are_sealed_by_the_teams_transit_key(
    cluster: Cluster, real_node: RealNode, model: ScriptedModel, sealing_vault: DevVault
) -> None:
    agents = [{"name": "clerk", "role": "junior"}]
    team = real_team("sealed", real_node, model.url, GOAL, agents, privacy=POLICY)
    apply(cluster, team)
    try:
        try:
            status = wait_for(lambda: reported(cluster, "sealed"), 120, "the run, status.privacy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster, 'sealed')}") from None
        assert status is not None
        assert status["run"]["outcome"] == "Succeeded", what_happened(cluster, "sealed")
        sent = json.dumps(model.requests_of("clerk"))
        for raw in (EMAIL, CARD, NAME):
            assert raw not in sent
        emails = [sealed_in(m[0]) for m in TOKEN.finditer(sent) if m[3]]
        assert emails, sent[:2000]
        root = sealing_vault.client()
        own = TransitKeyring(root, pseudonym_key("default", "sealed"))
        assert {own.open(*e) for e in emails if e} == {EMAIL}
        root.secrets.transit.create_key(
            pseudonym_key("default", "other"),
            key_type="aes256-gcm96",
            derived=True,
            convergent_encryption=True,
        )
        other = TransitKeyring(root, pseudonym_key("default", "other"))
        assert {other.open(*e) for e in emails if e} == {None}
    finally:
        cluster.kubectl("delete", "agentteam", "sealed", "--wait=false", check=False)
