"""What an agent's Vault identity costs at start: login with its ServiceAccount token, then the
model key, on a real OpenBao and a real API server.

    python -m bench.vault_login [--rounds 200]     (from the repository root)

Starts its own control plane (etcd, kube-apiserver) and an OpenBao server (raft storage, TLS,
initialised and unsealed as `hive dev up` does it), gives one agent its identity as the
operator does (policy, Kubernetes-auth role), and measures, per round, on loopback:

1. login: the Kubernetes auth login with the agent's ServiceAccount token (OpenBao asks the
   API server to review the token: TokenReview);
2. read: the model key from KV v2 with the token of that login;
3. login + read: what an agent pod pays before its first model call;
4. the peer in the same run: the same read with a Vault token held already (what a process
   that kept its token pays, and what an environment variable filled from a Secret costs
   nothing of).

Also prints the server's cold start (init + unseal) and a restart (unseal only).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ServiceAccount
from tests.support import dev_settings, free_port

from hive.api.agentteam import AgentTeamSpec
from hive.dev.controlplane import ControlPlane
from hive.dev.vault import DevVault
from hive.kube.client import sync_client
from hive.kube.tokens import service_account_token, token_reviewer
from hive.operator.vault import IdentityStore
from hive.reconcile.vault import Mounts, identity_name, identity_plan
from hive.runtime.identity.vault import AgentVault
from hive.settings import KubeSettings, VaultSettings

NS, TEAM, AGENT = "default", "bench", "lead"
MODEL = "teams/bench/model"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms"


def timed(rounds: int, step: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        plane = ControlPlane(dev_settings(Path(folder) / "plane", kwok_nodes=0))
        vault = DevVault(
            dev_settings(
                Path(folder) / "vault", vault_port=free_port(), vault_cluster_port=free_port()
            )
        )
        try:
            plane.up()
            client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig))
            cold = vault.up()
            print(f"openbao cold start (init + unseal): {cold.seconds:.2f} s")
            vault.down()
            warm = vault.up()
            print(f"openbao restart (unseal only):      {warm.seconds:.2f} s")
            vault.configure_kubernetes_auth(
                plane.url, plane.pki.ca.cert.read_text(), token_reviewer(client, "hive-system")
            )
            account = f"{TEAM}-{AGENT}"
            client.create(ServiceAccount(metadata=ObjectMeta(name=account, namespace=NS)))
            spec = AgentTeamSpec.model_validate(
                {
                    "goal": "bench",
                    "model": {"name": "m", "vaultRef": {"path": MODEL, "key": "api-key"}},
                    "agents": [{"name": AGENT, "role": "senior"}],
                }
            )
            settings = VaultSettings(
                address=vault.address, ca_file=vault.ca_file, token_file=vault.operator_token_file
            )
            plan = identity_plan(NS, TEAM, spec, Mounts(), token_ttl_s=900, token_max_ttl_s=3600)
            IdentityStore(settings, KubeSettings(kubeconfig=plane.kubeconfig)).apply(plan)
            vault.client().secrets.kv.v2.create_or_update_secret(
                MODEL, secret={"api-key": "sk-bench"}
            )
            jwt = Path(folder) / "token"
            jwt.write_text(service_account_token(client, NS, account))
            agent_settings = settings.model_copy(update={"token_file": None})
            role = identity_name(NS, TEAM, AGENT)

            def session() -> AgentVault:
                return AgentVault(agent_settings, role=role, jwt_file=jwt)

            logged_in = session()
            logged_in.login()
            rounds = args.rounds
            login = timed(rounds, lambda: session().login())
            read = timed(rounds, lambda: logged_in.read(MODEL, "api-key"))
            both = timed(rounds, lambda: session().read(MODEL, "api-key"))
            held = logged_in.client
            peer = timed(
                rounds,
                lambda: held.secrets.kv.v2.read_secret_version(
                    MODEL, mount_point="secret", raise_on_deleted_version=True
                ),
            )
            print(f"rounds: {rounds}")
            print(f"login (kubernetes auth + TokenReview): {percentiles(login)}")
            print(f"read model key (KV v2):                {percentiles(read)}")
            print(f"login + read (an agent's start):       {percentiles(both)}")
            print(f"peer: read with a token held already: {percentiles(peer)}")
        finally:
            vault.down()
            plane.down(purge=True)


if __name__ == "__main__":
    main()
