"""`hive run` with Vault: a local run reads its model key as the team's own identity, as a pod.

A team whose model names `vaultRef` gets its key from Vault, never from the environment. In a
cluster each agent pod logs in with its projected ServiceAccount token; a local run does the
same with a token the API server issues (TokenRequest) for the ServiceAccount of the team's
coordinator, `<team>-<coordinator>` in the team's namespace, and logs in as that agent's
Kubernetes-auth role. Both exist once the team is applied to a cluster whose operator has Vault
(`hive dev up` makes such a cluster), so a developer runs the very identity the pods would.
The token is asked for ten minutes, written to a private temporary file for the login, and
removed at once. In one process every agent shares the run's memory, so delegation
certificates (which guard calls between pods) are not issued here.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from pydantic import SecretStr

from hive.api.agentteam import AgentTeamSpec, coordinator_of
from hive.cli.teamfile import documents
from hive.errors import HiveError, InvalidInput
from hive.kube.client import sync_client
from hive.kube.tokens import service_account_token
from hive.reconcile.meta import account_name
from hive.reconcile.vault import identity_name
from hive.runtime.identity.vault import AgentVault
from hive.settings import Settings

TOKEN_S = 600


def team_identity(path: Path) -> tuple[str, str]:
    """(name, namespace) of the AgentTeam in `path`: whose identity a local run takes."""
    for doc in documents(path):
        if isinstance(doc, dict) and doc.get("kind") == "AgentTeam":
            meta = doc.get("metadata") or {}
            name = meta.get("name")
            if isinstance(name, str) and name:
                return name, str(meta.get("namespace") or "default")
    raise InvalidInput(
        "model.vaultRef",
        f"{path} holds no AgentTeam with metadata.name: a Vault identity is a team's",
    )


def local_model_key(path: Path, spec: AgentTeamSpec, settings: Settings) -> SecretStr:
    """The key at spec.model.vaultRef, read as the team's coordinator."""
    ref = spec.model.vault_ref
    assert ref is not None
    if not settings.vault.address:
        raise InvalidInput(
            "model.vaultRef", "set HIVE_VAULT__ADDRESS (and HIVE_VAULT__CA_FILE) to read the key"
        )
    team, namespace = team_identity(path)
    agent = coordinator_of(spec)
    account = account_name(team, agent)
    try:
        jwt = service_account_token(
            sync_client(settings.kube), namespace, account, expiration_s=TOKEN_S
        )
    except HiveError as exc:
        raise InvalidInput(
            "model.vaultRef",
            f"no token for ServiceAccount {namespace}/{account} ({exc}); the team's identities "
            f"exist once it is applied to a cluster whose operator has Vault: kubectl apply -f "
            f"{path}",
        ) from exc
    with tempfile.TemporaryDirectory(prefix="hive-run-") as folder:
        jwt_file = Path(folder) / "token"
        jwt_file.touch(mode=0o600)
        jwt_file.write_text(jwt)
        session = AgentVault(
            settings.vault, role=identity_name(namespace, team, agent), jwt_file=jwt_file
        )
        try:
            return session.read(ref.path, ref.key)
        finally:
            with contextlib.suppress(Exception):  # it would expire anyway; leave nothing behind
                session.client.auth.token.revoke_self()
