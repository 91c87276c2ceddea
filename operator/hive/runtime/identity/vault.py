"""A Vault session: log in with a ServiceAccount token, renew, log in again.

``AgentVault`` logs in through the Kubernetes auth method as the agent's role (the operator made
it: hive.reconcile.vault), renews its token once two thirds of its TTL have passed, and logs in
again when renewal fails or the token cannot be renewed for long enough (its max TTL). A read
refused with 403 because the token went away (expired, revoked, a restored server) logs in again
and is tried once more; a second 403 is a real denial. The JWT file is read at every login: the
kubelet rotates a projected token in place. Works the same against HashiCorp Vault and OpenBao.
The operator keeps its own session the same way (``fresh()``, as its role ``vault.role``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr

from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.settings import VaultSettings

RENEW_AT = 2 / 3  # of the token's TTL


class AgentVault:
    """One agent's logged-in Vault client, kept fresh."""

    def __init__(
        self,
        settings: VaultSettings,
        *,
        role: str,
        jwt_file: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.address:
            raise InvalidInput("vault.address", "an agent needs the Vault address to log in")
        self.settings = settings
        self.role = role
        self.jwt_file = jwt_file
        self.clock = clock
        verify: bool | str = str(settings.ca_file) if settings.ca_file else True
        self.client = hvac.Client(
            url=settings.address, verify=verify, timeout=settings.request_timeout_s
        )
        self._lock = threading.Lock()
        self._ttl_s = 0.0
        self._since = 0.0
        self.logins = 0
        self.renewals = 0

    # --- the token -------------------------------------------------------------------------
    def login(self) -> None:
        jwt = self.jwt_file.read_text().strip()
        answer = self.client.auth.kubernetes.login(
            self.role, jwt, mount_point=self.settings.auth_mount
        )
        self._took(answer["auth"]["lease_duration"])
        self.logins += 1

    def _took(self, ttl_s: float) -> None:
        self._ttl_s = float(ttl_s)
        self._since = self.clock()

    def fresh(self) -> hvac.Client:
        """The client, holding a token that is good for a while yet (the operator's session
        uses this before its own writes; hvac errors of the login come through unchanged)."""
        with self._lock:
            self._fresh()
            return self.client

    def forget_token(self) -> None:
        """Drop the token (refused by Vault): the next `fresh()` logs in again."""
        with self._lock:
            self.client.token = None

    def _fresh(self) -> None:
        """Log in the first time; renew past two thirds of the TTL; log in again if that fails."""
        if not self.client.token:
            self.login()
            return
        if self.clock() - self._since < self._ttl_s * RENEW_AT:
            return
        before = self._ttl_s
        try:
            answer = self.client.auth.token.renew_self()
            ttl = float(answer["auth"]["lease_duration"])
            self.renewals += 1
        except (hvac.exceptions.VaultError, requests.RequestException):
            ttl = 0.0
        if ttl < before * (1 - RENEW_AT):  # capped by max TTL: a new login gives a full one
            self.login()
        else:
            self._took(ttl)

    # --- reads -----------------------------------------------------------------------------
    def read(self, path: str, key: str) -> SecretStr:
        """The value of `key` in KV v2 secret `path` (relative to the KV mount)."""
        with self._lock:
            try:
                return self._read(path, key)
            except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
                self.client.token = None  # the token went away: log in again, once
            try:
                return self._read(path, key)
            except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
                raise ExternalFailure(
                    f"vault: role {self.role} may not read {path} (403 permission denied)"
                ) from exc

    def _read(self, path: str, key: str) -> SecretStr:
        try:
            self._fresh()
            answer = self.client.secrets.kv.v2.read_secret_version(
                path, mount_point=self.settings.kv_mount, raise_on_deleted_version=True
            )
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            raise
        except requests.RequestException as exc:
            raise Unavailable(f"vault {self.settings.address}: {type(exc).__name__}") from exc
        except hvac.exceptions.VaultDown as exc:
            raise Unavailable(f"vault {self.settings.address} is sealed") from exc
        except hvac.exceptions.InvalidPath as exc:
            raise ExternalFailure(f"vault: no secret at {path}") from exc
        except hvac.exceptions.VaultError as exc:
            raise Unavailable(f"vault {self.settings.address}: {exc}") from exc
        data = answer["data"]["data"]
        if key not in data:
            raise ExternalFailure(f"vault: secret {path} has no key {key!r}")
        return SecretStr(str(data[key]))
