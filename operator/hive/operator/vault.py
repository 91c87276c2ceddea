"""The operator's only Vault I/O: apply a team's identity plan, remove a team's identities.

The plan is computed by hive.reconcile.vault (pure); this module writes it with hvac, the same
calls against HashiCorp Vault and OpenBao. Every failure is one of three reasons, which the
team's Ready condition carries::

    VaultUnavailable   not reachable, or answering 5xx          (Unavailable: retried)
    VaultSealed        reachable but sealed                     (Unavailable: retried)
    VaultDenied        the operator's token or role is refused  (ExternalFailure)

The operator's own token: in a cluster a Kubernetes login as ``vault.role`` with its
ServiceAccount token (the JWT file is read again at every login), renewed past two thirds of its
TTL and replaced by a new login when renewal cannot extend it (hive.runtime.identity.vault, the
same session agents keep); in the local environment the token file ``hive dev up`` writes.

Applying checks the seal and the operator's token before writing anything; if a write fails
half-way, what this call created is removed again, so a team never holds half an identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
import requests

from hive.api.agentteam import AgentTeamSpec, AgentTeamStatus
from hive.errors import HiveError
from hive.reconcile.vault import (
    IdentityPlan,
    Mounts,
    identities_status,
    identity_plan,
    leftovers,
    orphaned_teams,
    pseudonym_key,
    team_prefix,
    transit_key,
)
from hive.runtime.identity.vault import AgentVault
from hive.settings import KubeSettings, Settings, VaultSettings

log = logging.getLogger(__name__)
UNAVAILABLE, SEALED, DENIED = "VaultUnavailable", "VaultSealed", "VaultDenied"


class VaultProblem(HiveError):
    """A Vault failure with the reason the team's Ready condition shows."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.retryable = reason != DENIED


@contextlib.contextmanager
def _vault_errors(address: str) -> Iterator[None]:
    try:
        yield
    except VaultProblem:
        raise
    except requests.RequestException as exc:
        raise VaultProblem(UNAVAILABLE, f"{address} unreachable ({type(exc).__name__})") from exc
    except hvac.exceptions.VaultDown as exc:
        raise VaultProblem(SEALED, f"{address} is sealed") from exc
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
        raise VaultProblem(DENIED, f"{address} refused the operator: {exc}") from exc
    except (hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway) as exc:
        raise VaultProblem(UNAVAILABLE, f"{address}: {exc}") from exc
    except hvac.exceptions.VaultError as exc:
        raise VaultProblem(UNAVAILABLE, f"{address}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Applied:
    agent: str
    name: str
    bound: bool


class IdentityStore:
    """Agent identities in one Vault, written with the operator's own token."""

    def __init__(
        self,
        settings: VaultSettings,
        kube: KubeSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.address:
            raise ValueError("IdentityStore needs vault.address")
        self.settings = settings
        self.address = settings.address
        self.jwt_file = settings.jwt_file or kube.service_account_dir / "token"
        self._client: hvac.Client | None = None  # with the token file's token
        # In a cluster: a Kubernetes login as `role` with the operator's ServiceAccount token,
        # renewed past two thirds of its TTL and replaced at its max TTL, as an agent's is.
        self.session: AgentVault | None = None
        if settings.token_file is None and settings.role:
            self.session = AgentVault(
                settings, role=settings.role, jwt_file=self.jwt_file, clock=clock
            )

    # --- the operator's own login ----------------------------------------------------------
    def _new_client(self, token: str | None = None) -> hvac.Client:
        verify: bool | str = str(self.settings.ca_file) if self.settings.ca_file else True
        return hvac.Client(
            url=self.address, token=token, verify=verify, timeout=self.settings.request_timeout_s
        )

    def client(self) -> hvac.Client:
        """A client with a valid token: the token file's, or a Kubernetes login as `role`
        (logged in at first use, renewed or logged in again when it is getting old)."""
        with _vault_errors(self.address):
            if self.settings.token_file is not None:
                if self._client is None:
                    token = self.settings.token_file.read_text().strip()
                    self._client = self._new_client(token)
                return self._client
            if self.session is not None:
                return self.session.fresh()
            raise VaultProblem(DENIED, "set vault.role or vault.token_file for the operator")

    def _forget_token(self) -> None:
        self._client = None
        if self.session is not None:
            self.session.forget_token()

    def _checked(self) -> hvac.Client:
        """Reachable, unsealed, and the operator's token accepted; else a VaultProblem."""
        probe = self._new_client()
        with _vault_errors(self.address):
            if probe.sys.is_sealed():
                raise VaultProblem(SEALED, f"{self.address} is sealed")
            try:
                client = self.client()
                client.auth.token.lookup_self()
            except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
                self._forget_token()  # a token that went away (revoked, a restored server)
                client = self.client()  # read the file or log in again, once
                client.auth.token.lookup_self()
        return client

    # --- identities ------------------------------------------------------------------------
    def _role_path(self, name: str) -> str:
        return f"/v1/auth/{self.settings.auth_mount}/role/{name}"

    def _existing(self, client: hvac.Client, prefix: str) -> tuple[set[str], set[str]]:
        policies = set(client.sys.list_acl_policies()["data"]["keys"])
        try:
            listed = client.adapter.list(f"/v1/auth/{self.settings.auth_mount}/role")
            roles = set(listed["data"]["keys"]) if listed else set()
        except hvac.exceptions.InvalidPath:
            roles = set()
        return (
            {p for p in policies if p.startswith(prefix)},
            {r for r in roles if r.startswith(prefix)},
        )

    def _write(self, client: hvac.Client, plan: IdentityPlan) -> None:
        transit = self.settings.transit_mount
        client.secrets.transit.create_key(plan.transit_key, key_type="ed25519", mount_point=transit)
        if plan.pseudonym_key is not None:  # spec.privacy: deterministic, per-value derived keys
            client.secrets.transit.create_key(
                plan.pseudonym_key,
                key_type="aes256-gcm96",
                derived=True,
                convergent_encryption=True,
                mount_point=transit,
            )
        for identity in plan.identities:
            client.sys.create_or_update_acl_policy(identity.name, identity.policy_hcl)
            body: dict[str, Any] = {
                "bound_service_account_names": [identity.service_account],
                "bound_service_account_namespaces": [identity.namespace],
                "token_policies": [identity.name],
                "token_ttl": identity.token_ttl_s,
                "token_max_ttl": identity.token_max_ttl_s,
            }
            client.adapter.post(self._role_path(identity.name), json=body)

    def apply(self, plan: IdentityPlan) -> list[Applied]:
        """Write every agent's policy and role (and the team's transit key); remove the names
        of agents no longer in the plan. All or nothing for what this call adds."""
        client = self._checked()
        with _vault_errors(self.address):
            policies, roles = self._existing(client, plan.prefix)
            try:
                self._write(client, plan)
            except BaseException:
                with contextlib.suppress(Exception):  # undo what was new in this call
                    for name in plan.names() - roles:
                        client.adapter.delete(self._role_path(name))
                    for name in plan.names() - policies:
                        client.sys.delete_acl_policy(name)
                raise
            for name in leftovers(plan, roles):
                client.adapter.delete(self._role_path(name))
            for name in leftovers(plan, policies):
                client.sys.delete_acl_policy(name)
        return [Applied(i.agent, i.name, True) for i in plan.identities]

    def remove(self, prefix: str, transit_key: str, *more_keys: str) -> list[str]:
        """Delete every role and policy under `prefix` and the transit keys (`transit_key`,
        `more_keys` where they exist); returns the names removed. Raises VaultProblem when Vault
        cannot be reached (the caller bounds retries)."""
        client = self._checked()
        removed: list[str] = []
        with _vault_errors(self.address):
            policies, roles = self._existing(client, prefix)
            for name in sorted(roles):
                client.adapter.delete(self._role_path(name))
                removed.append(f"role {name}")
            for name in sorted(policies):
                client.sys.delete_acl_policy(name)
                removed.append(f"policy {name}")
            transit = self.settings.transit_mount
            for key in (transit_key, *more_keys):
                with contextlib.suppress(hvac.exceptions.InvalidPath):  # none: nothing to delete
                    client.secrets.transit.read_key(key, mount_point=transit)
                    client.secrets.transit.update_key_configuration(
                        key, deletion_allowed=True, mount_point=transit
                    )
                    client.secrets.transit.delete_key(key, mount_point=transit)
                    removed.append(f"transit key {key}")
        return removed

    def names(self, prefix: str) -> set[str]:
        """Policies and roles under `prefix` (what a team still holds)."""
        client = self._checked()
        with _vault_errors(self.address):
            policies, roles = self._existing(client, prefix)
        return policies | roles


# --- what the AgentTeam reconcile and the resync call (async: hvac blocks) ---------------------
FORGET_ATTEMPTS = 5
REAPPLY_S = 300.0  # an unchanged plan is written again this often (a Vault restored from backup)
_stores: dict[str, IdentityStore] = {}
_applied: dict[str, tuple[str, float]] = {}  # team prefix -> (plan, when it was applied)


def store_for(settings: Settings) -> IdentityStore | None:
    """The process's IdentityStore, or None when the operator is not set up with Vault."""
    if not settings.vault.address:
        return None
    key = settings.vault.model_dump_json()
    if key not in _stores:
        _stores[key] = IdentityStore(settings.vault, settings.kube)
    return _stores[key]


def plan_for(settings: Settings, namespace: str, team: str, spec: AgentTeamSpec) -> IdentityPlan:
    vault = settings.vault
    return identity_plan(
        namespace,
        team,
        spec,
        Mounts(vault.auth_mount, vault.kv_mount, vault.transit_mount),
        token_ttl_s=vault.token_ttl_s,
        token_max_ttl_s=vault.token_max_ttl_s,
    )


@dataclass(frozen=True)
class TeamIdentities:
    plan: IdentityPlan
    problem: VaultProblem | None


def replace_identities(status: AgentTeamStatus, identities: TeamIdentities) -> AgentTeamStatus:
    bound = identities.problem is None
    return status.model_copy(update={"identities": identities_status(identities.plan, bound=bound)})


def forget_applied() -> None:
    """Write every plan again on its next reconcile (as after a restart of the operator)."""
    _applied.clear()


async def ensure_identities(store: IdentityStore, plan: IdentityPlan) -> VaultProblem | None:
    """Apply `plan` (again only when it changed or REAPPLY_S passed); a VaultProblem is
    returned (and logged), never raised."""
    digest = repr(plan)
    last = _applied.get(plan.prefix)
    if last is not None and last[0] == digest and time.monotonic() - last[1] < REAPPLY_S:
        return None
    try:
        await asyncio.to_thread(store.apply, plan)
    except VaultProblem as problem:
        _applied.pop(plan.prefix, None)
        log.warning("vault identities of %s*: %s", plan.prefix, problem)
        return problem
    _applied[plan.prefix] = (digest, time.monotonic())
    return None


async def forget_team(store: IdentityStore, namespace: str, team: str) -> None:
    """Remove a deleted team's roles, policies and transit key: FORGET_ATTEMPTS tries, then
    the leftovers are reported and left to the resync's sweep once Vault is back."""
    prefix, key = team_prefix(namespace, team), transit_key(namespace, team)
    _applied.pop(prefix, None)
    for attempt in range(1, FORGET_ATTEMPTS + 1):
        try:
            removed = await asyncio.to_thread(
                store.remove, prefix, key, pseudonym_key(namespace, team)
            )
        except VaultProblem as problem:
            if attempt == FORGET_ATTEMPTS:
                log.error(
                    "AgentTeam %s/%s: Vault roles and policies %s* left behind after %d tries "
                    "(%s); they are removed once Vault answers again",
                    namespace,
                    team,
                    prefix,
                    attempt,
                    problem,
                )
                return
            await asyncio.sleep(2.0 * attempt)
        else:
            if removed:
                log.info("AgentTeam %s/%s: removed from Vault %s", namespace, team, removed)
            return


async def sweep(
    store: IdentityStore, teams: set[tuple[str, str]], only_namespace: str | None = None
) -> None:
    """Remove what teams that no longer exist still hold in Vault (deleted while it was away);
    an operator that watches one namespace (`only_namespace`) sweeps only that one's teams."""
    try:
        names = await asyncio.to_thread(store.names, "hive_")
    except VaultProblem as problem:
        log.warning("vault sweep skipped: %s", problem)
        return
    for namespace, team in sorted(orphaned_teams(names, teams)):
        if only_namespace is not None and namespace != only_namespace:
            continue  # another operator's, or one this operator does not watch
        log.warning("AgentTeam %s/%s is gone but held Vault names: removing them", namespace, team)
        await forget_team(store, namespace, team)
