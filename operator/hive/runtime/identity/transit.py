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
    """Signs with the transit key `name`; its `key_id` is ``<name>:v<version>`` of the last
    signature (the latest version until the first one)."""

    client: Any  # hvac.Client
    name: str
    mount: str = "transit"
    key_id: str = ""

    def __post_init__(self) -> None:
        if not self.key_id:
            self.key_id = f"{self.name}:v1"

    def sign(self, data: bytes) -> bytes:
        response = self.client.secrets.transit.sign_data(
            name=self.name,
            hash_input=base64.b64encode(data).decode(),
            mount_point=self.mount,
        )
        signature = str(response["data"]["signature"])
        prefix, _, encoded = signature.rpartition(":")
        if not prefix.startswith("vault:v"):
            raise ExternalFailure(f"transit key {self.name}: unexpected signature {prefix!r}")
        self.key_id = f"{self.name}:{prefix.removeprefix('vault:')}"
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
