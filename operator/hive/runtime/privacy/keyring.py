"""The keys behind reversible pseudonyms and format-preserving stand-ins: a local key (the
team's Secret, or one made for the process), or the team's key in Vault (or OpenBao) transit.

A keyring seals a value of one entity type into bytes, opens such bytes again, and gives a keyed
digest of a value (the digits of a card's or phone's stand-in). Both kinds are deterministic:
one value of one entity type always gives the same sealed bytes under one key, so a model can
tell two people apart and one value keeps one pseudonym across the team's pods.

`TransitKeyring` uses the team's ``aes256-gcm96`` transit key made with ``derived`` and
``convergent_encryption`` (the operator creates it: `hive.reconcile.vault.pseudonym_key`), the
entity type as the derivation context: ``transit/encrypt`` seals, ``transit/decrypt`` opens,
``transit/hmac`` digests; the key never leaves Vault and only the team's agents may use it (their
Vault policy). The sealed bytes carry the key version (2 bytes) before the ciphertext, so a
pseudonym made before a rotation is still opened after it. Answers are cached in the process
(one request per distinct value), and the values of one text are sealed in one batch request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from hive.errors import ExternalFailure


class Keyring(Protocol):
    def seal(self, entity: str, value: str) -> bytes: ...

    def open(self, entity: str, sealed: bytes) -> str | None:
        """The value, or None when `sealed` was not made with this key."""
        ...

    def digest(self, entity: str, value: str) -> str:
        """A keyed SHA-256 digest of `value`, 64 hex digits."""
        ...


@dataclass(frozen=True)
class LocalKeyring:
    """AES-SIV (deterministic authenticated encryption) and HMAC-SHA256 under a 64-byte key."""

    key: bytes

    def seal(self, entity: str, value: str) -> bytes:
        return AESSIV(self.key).encrypt(value.encode(), [entity.encode()])

    def open(self, entity: str, sealed: bytes) -> str | None:
        try:
            return AESSIV(self.key).decrypt(sealed, [entity.encode()]).decode()
        except Exception:  # another key's, or a look-alike
            return None

    def digest(self, entity: str, value: str) -> str:
        return hmac.new(self.key, f"{entity}\x00{value}".encode(), hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class TransitKeyring:
    """The team's transit key `name` at `mount`; `client` is a logged-in ``hvac.Client`` (or
    anything that hands one out fresh, as an agent's Vault session does)."""

    client: Any
    name: str
    mount: str = "transit"
    _sealed: dict[tuple[str, str], bytes] = field(default_factory=dict)
    _opened: dict[tuple[str, bytes], str | None] = field(default_factory=dict)
    _digests: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _failed(self, what: str, exc: Exception) -> ExternalFailure:
        return ExternalFailure(f"transit key {self.mount}/{self.name}: {what} failed: {exc}")

    def seal(self, entity: str, value: str) -> bytes:
        with self._lock:
            known = self._sealed.get((entity, value))
        if known is not None:
            return known
        try:
            answer = self.client.secrets.transit.encrypt_data(
                name=self.name,
                plaintext=_b64(value.encode()),
                context=_b64(entity.encode()),
                mount_point=self.mount,
            )
        except Exception as exc:
            raise self._failed("encrypt", exc) from exc
        ciphertext = str(answer["data"]["ciphertext"])
        prefix, version, encoded = ciphertext.split(":", 2)
        if prefix != "vault" or not version.startswith("v"):
            raise ExternalFailure(f"transit key {self.name}: unexpected ciphertext {prefix!r}")
        sealed = int(version[1:]).to_bytes(2, "big") + base64.b64decode(encoded)
        with self._lock:
            self._sealed[(entity, value)] = sealed
            self._opened[(entity, sealed)] = value
        return sealed

    def seal_many(self, items: list[tuple[str, str]]) -> None:
        """Seal the (entity, value) pairs not sealed yet in one ``transit/encrypt`` request (its
        batch input), so a text with several values costs one round trip; `seal` answers them
        from the cache after."""
        with self._lock:
            todo = sorted({i for i in items if i not in self._sealed})
        if len(todo) < 2:
            return
        try:
            answer = self.client.secrets.transit.encrypt_data(
                name=self.name,
                batch_input=[
                    {"plaintext": _b64(value.encode()), "context": _b64(entity.encode())}
                    for entity, value in todo
                ],
                mount_point=self.mount,
            )
            results = answer["data"]["batch_results"]
        except Exception:  # each value is tried on its own then
            return
        for (entity, value), result in zip(todo, results, strict=False):
            ciphertext = str(result.get("ciphertext") or "")
            prefix, _, rest = ciphertext.partition(":")
            version, _, encoded = rest.partition(":")
            if prefix != "vault" or not version.startswith("v") or not encoded:
                continue
            sealed = int(version[1:]).to_bytes(2, "big") + base64.b64decode(encoded)
            with self._lock:
                self._sealed[(entity, value)] = sealed
                self._opened[(entity, sealed)] = value

    def open(self, entity: str, sealed: bytes) -> str | None:
        with self._lock:
            if (entity, sealed) in self._opened:
                return self._opened[(entity, sealed)]
        if len(sealed) < 3:
            return None
        ciphertext = f"vault:v{int.from_bytes(sealed[:2], 'big')}:{_b64(sealed[2:])}"
        try:
            answer = self.client.secrets.transit.decrypt_data(
                name=self.name,
                ciphertext=ciphertext,
                context=_b64(entity.encode()),
                mount_point=self.mount,
            )
            value: str | None = base64.b64decode(answer["data"]["plaintext"]).decode()
        except Exception:  # another team's, refused, or a look-alike: not restored
            value = None
        with self._lock:
            self._opened[(entity, sealed)] = value
        return value

    def digest(self, entity: str, value: str) -> str:
        with self._lock:
            known = self._digests.get((entity, value))
        if known is not None:
            return known
        try:
            answer = self.client.secrets.transit.generate_hmac(
                name=self.name,
                hash_input=_b64(f"{entity}\x00{value}".encode()),
                algorithm="sha2-256",
                mount_point=self.mount,
            )
            encoded = str(answer["data"]["hmac"]).rsplit(":", 1)[1]
            digest = base64.b64decode(encoded).hex()
        except Exception as exc:
            raise self._failed("hmac", exc) from exc
        with self._lock:
            self._digests[(entity, value)] = digest
        return digest
