"""Agent identities on Vault, in real pods: agent pods on the real node log in to OpenBao with
their own ServiceAccount tokens, read the team's model key from Vault (never from a Secret or an
environment variable the operator filled), and delegate with certificates signed by the team's
transit key.

OpenBao runs as a real server (raft, TLS from the dev CA) on loopback, relayed to the node's
pods on the bridge's gateway; its Kubernetes auth reviews the pods' tokens with the session's
API server. The operator is restarted with Vault settings for this test and without them after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.scripted_model import scripted_model
from tests.support import Cluster, dev_settings

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import agent_pods, get_team, real_team
from hive.dev.node import RealNode
from hive.dev.vault import DevVault
from hive.kube.tokens import token_reviewer
from hive.ports import free_port

pytestmark = pytest.mark.e2e

MODEL_PATH = "hive/default/vaulted/model"
KEY = "sk-from-vault"


@pytest.fixture(scope="module")
def vault_for_pods(
    cluster: Cluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """OpenBao up and reachable from the node's pods; yields the operator's Vault settings."""
    state = tmp_path_factory.mktemp("pod-vault")
    server = DevVault(dev_settings(state, vault_port=free_port(), vault_cluster_port=free_port()))
    relay_port = free_port()
    try:
        up = server.up()
        print(
            f"\nOpenBao {'initialised and ' if up.initialised else ''}unsealed in {up.seconds:.1f}s"
        )
        server.configure_kubernetes_auth(
            cluster.plane.url,
            cluster.plane.pki.ca.cert.read_text(),
            token_reviewer(cluster.client, "hive-system"),
        )
        server.client().secrets.kv.v2.create_or_update_secret(MODEL_PATH, secret={"api-key": KEY})
        listen = real_node.relay("vault-relay", relay_port, "127.0.0.1", server.settings.vault_port)
        yield {**server.operator_env(), "HIVE_VAULT__POD_ADDRESS": f"https://{listen}"}
    finally:
        real_node.processes.stop("vault-relay")
        server.down()


@pytest.fixture
def operator_with_vault(
    operator: OperatorProcess, vault_for_pods: dict[str, str]
) -> Iterator[OperatorProcess]:
    before = dict(operator.env)
    operator.stop()
    operator.env.update(vault_for_pods)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        operator.env.clear()
        operator.env.update(before)
        operator.start()


SCRIPT = {
    "lead": [
        {"json": {"subtasks": [{"description": "Find a fact", "capabilities": ["research"]}]}},
        {"when": "gave researcher", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "Done."},
    ],
    "researcher": [{"content": "A fact."}],
}
AGENTS = [
    {"name": "lead", "role": "senior", "subordinates": ["researcher"]},
    {"name": "researcher", "role": "junior", "capabilities": ["research"]},
]


def audit_records(cluster: Cluster, pod: str) -> list[dict[str, Any]]:
    """The team's audit log as the agent in `pod` wrote it."""
    path = "/tmp/hive-audit/default.vaulted.audit.jsonl"
    out = cluster.kubectl("exec", pod, "--", "cat", path).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_agent_pods_log_in_to_vault_read_the_model_key_and_delegate_with_certificates(
    cluster: Cluster, operator_with_vault: OperatorProcess, real_node: RealNode
) -> None:
    with scripted_model(SCRIPT, host=real_node.gateway()) as model:
        team = real_team("vaulted", real_node, model.url, "Find a fact", AGENTS)
        team["spec"]["model"]["vaultRef"] = {"path": MODEL_PATH, "key": "api-key"}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(team))
        try:

            def run_over() -> dict[str, Any] | None:
                run = get_team(cluster, "vaulted").get("status", {}).get("run") or {}
                return run if run.get("outcome") not in (None, "Running") else None

            run = wait_for(run_over, 180, "the team's run to end")
            assert run["outcome"] == "Succeeded", (run, get_team(cluster, "vaulted")["status"])
            assert model.authorizations, "the model was never called"
            assert set(model.authorizations) == {f"Bearer {KEY}"}
            status = get_team(cluster, "vaulted")["status"]
            assert {i["agent"]: i["bound"] for i in status["identities"]} == {
                "lead": True,
                "researcher": True,
            }
            # The lead's delegation reached the researcher with a certificate signed by the
            # team's transit key, checked there: lead's root grant, then lead -> researcher.
            researcher = agent_pods(cluster, "vaulted")["researcher"]["metadata"]["name"]
            checks = [
                r for r in audit_records(cluster, researcher) if r["action"] == "certificate-check"
            ]
            assert checks, "the researcher checked no certificate"
            assert {r["outcome"] for r in checks} == {"allowed"}
            assert len(checks[0]["authority"]) == 2
            deployment = json.loads(
                cluster.kubectl("get", "deployment", "vaulted-lead", "-o", "json").stdout
            )
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            names = {e["name"] for e in container.get("env") or []}
            assert "HIVE_MODEL_API_KEY" not in names  # the key never passes through the pod spec
            assert "HIVE_VAULT__ADDRESS" in names
        finally:
            cluster.kubectl("delete", "agentteam", "vaulted", "--wait=false")
