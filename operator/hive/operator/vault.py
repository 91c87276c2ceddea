"""The operator's only Vault I/O: apply a team's identity plan, remove a team's identities.

The plan is computed by hive.reconcile.vault (pure); this module writes it with hvac, the same
calls against HashiCorp Vault and OpenBao. Every failure is one of three reasons, which the
team's Ready condition carries::

    VaultUnavailable   not reachable, or answering 5xx          (Unavailable: retried)
    VaultSealed        reachable but sealed                     (Unavailable: retried)
    VaultDenied        the operator's token or role is refused  (ExternalFailure)

Applying checks the seal and the operator's token before writing anything; if a write fails
half-way, what this call created is removed again, so a team never holds half an identity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
import requests

from hive.errors import ExternalFailure, HiveError, Unavailable
from hive.reconcile.vault import IdentityPlan, leftovers
from hive.settings import KubeSettings, VaultSettings

UNAVAILABLE, SEALED, DENIED = "VaultUnavailable", "VaultSealed", "VaultDenied"


class VaultProblem(HiveError):
    """A Vault failure with the reason the team's Ready condition shows."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.retryable = reason != DENIED


def as_hive_error(problem: VaultProblem) -> HiveError:
    if problem.reason == DENIED:
        return ExternalFailure(problem.message)
    return Unavailable(problem.message)


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

    def __init__(self, settings: VaultSettings, kube: KubeSettings) -> None:
        if not settings.address:
            raise ValueError("IdentityStore needs vault.address")
        self.settings = settings
        self.address = settings.address
        self.jwt_file = settings.jwt_file or kube.service_account_dir / "token"
        self._client: hvac.Client | None = None

    # --- the operator's own login ----------------------------------------------------------
    def _new_client(self, token: str | None = None) -> hvac.Client:
        verify: bool | str = str(self.settings.ca_file) if self.settings.ca_file else True
        return hvac.Client(
            url=self.address, token=token, verify=verify, timeout=self.settings.request_timeout_s
        )

    def client(self) -> hvac.Client:
        """A client with a valid token: the token file, or a Kubernetes login as `role`."""
        if self._client is not None:
            return self._client
        with _vault_errors(self.address):
            if self.settings.token_file is not None:
                client = self._new_client(self.settings.token_file.read_text().strip())
            elif self.settings.role:
                client = self._new_client()
                client.auth.kubernetes.login(
                    self.settings.role,
                    self.jwt_file.read_text().strip(),
                    mount_point=self.settings.auth_mount,
                )
            else:
                raise VaultProblem(DENIED, "set vault.role or vault.token_file for the operator")
        self._client = client
        return client

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
                self._client = None  # a token that expired: log in again once
                client = self.client()
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

    def remove(self, prefix: str, transit_key: str) -> list[str]:
        """Delete every role and policy under `prefix` and the transit key; returns the names
        removed. Raises VaultProblem when Vault cannot be reached (the caller bounds retries)."""
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
            with contextlib.suppress(hvac.exceptions.InvalidPath):
                client.secrets.transit.update_key_configuration(
                    transit_key, deletion_allowed=True, mount_point=transit
                )
                client.secrets.transit.delete_key(transit_key, mount_point=transit)
                removed.append(f"transit key {transit_key}")
        return removed

    def names(self, prefix: str) -> set[str]:
        """Policies and roles under `prefix` (what a team still holds)."""
        client = self._checked()
        with _vault_errors(self.address):
            policies, roles = self._existing(client, prefix)
        return policies | roles
