"""The team's certificate key in Vault (or OpenBao) transit: sign there, verify here.

The operator creates one ed25519 transit key per team, ``hive-<namespace>-<team>``; agents sign
certificate links with ``transit/sign/<key>`` (the private key never leaves Vault) and verify
with the public key from ``transit/keys/<key>``, fetched once per key version and cached, so a
verification makes no request. Vault answers ``vault:v<version>:<base64 signature>``: a plain
Ed25519 signature, which any Ed25519 library checks. Both servers offer these two endpoints
with the same API. `client` is an ``hvac.Client`` already logged in.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hive.errors import ExternalFailure


def team_key(namespace: str, team: str) -> str:
    """The name of a team's transit key."""
    return f"hive-{namespace}-{team}"


@dataclass
class TransitSigner:
    """Signs with one version of the transit key `name` (``key_id`` ``<name>:v<version>``,
    named in each link's header before it is signed); `latest` picks the newest version."""

    client: Any  # hvac.Client
    name: str
    version: int = 1
    mount: str = "transit"

    @classmethod
    def latest(cls, client: Any, name: str, mount: str = "transit") -> TransitSigner:
        response = client.secrets.transit.read_key(name=name, mount_point=mount)
        return cls(client, name, int(response["data"]["latest_version"]), mount)

    @property
    def key_id(self) -> str:
        return f"{self.name}:v{self.version}"

    def sign(self, data: bytes) -> bytes:
        response = self.client.secrets.transit.sign_data(
            name=self.name,
            hash_input=base64.b64encode(data).decode(),
            key_version=self.version,
            mount_point=self.mount,
        )
        signature = str(response["data"]["signature"])
        prefix, _, encoded = signature.rpartition(":")
        if prefix != f"vault:v{self.version}":
            raise ExternalFailure(f"transit key {self.key_id}: unexpected signature {prefix!r}")
        return base64.b64decode(encoded)


@dataclass
class TransitKeys:
    """Public keys of transit key `name`, by ``<name>:v<version>``, fetched when first asked."""

    client: Any  # hvac.Client
    name: str
    mount: str = "transit"
    _cache: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        key = self._cache.get(key_id)
        if key is not None or not key_id.startswith(f"{self.name}:v"):
            return key
        with self._lock:
            response = self.client.secrets.transit.read_key(name=self.name, mount_point=self.mount)
            for version, entry in response["data"]["keys"].items():
                raw = base64.b64decode(entry["public_key"])
                self._cache[f"{self.name}:v{version}"] = Ed25519PublicKey.from_public_bytes(raw)
        return self._cache.get(key_id)
