"""What is done with each finding: redact, mask, hash (salted per team), pseudonymise
reversibly, or allow; and the restoring of pseudonyms for the run's requester.

Replacement goes through Presidio's anonymizer engine (one custom operator per entity type).
Reversible pseudonyms are the value sealed deterministically by the team's keyring
(`hive.runtime.privacy.keyring`: the team's Vault transit key where a Vault is configured, else
AES-SIV under the key from the team's Secret), so the same value always gives the same
pseudonym and a model can still tell two people apart: ``PERSON_<base32>`` in general; an email
stays an email (``<base32>@pseudonym.invalid``) and digits stay digits where the format matters
(cards, phones: a Luhn-valid stand-in of the same layout, its digits from the keyring's digest,
kept in this process's table to be restored). Anyone who may use the key restores a sealed
pseudonym, so pseudonyms written to memory in one pod are restored in another. A value the
keyring cannot seal (Vault not answering) is redacted, never passed in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hive.api.privacy import PrivacySpec, Strategy
from hive.errors import ExternalFailure, InvalidInput
from hive.runtime.privacy.detect import Finding
from hive.runtime.privacy.keyring import Keyring, LocalKeyring

log = logging.getLogger(__name__)

EMAIL_DOMAIN = "pseudonym.invalid"
FORMAT_PRESERVED = frozenset({"CREDIT_CARD", "PHONE_NUMBER"})
TOKEN = re.compile(r"\b([A-Z][A-Z0-9_]*?)_([a-z2-7]{24,})\b|\b([a-z2-7]{24,})@pseudonym\.invalid\b")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def derive_key(secret: str | bytes | None) -> bytes:
    """A 64-byte AES-SIV key from the configured secret (any length), or a random one."""
    if secret is None:
        return os.urandom(64)
    raw = secret.encode() if isinstance(secret, str) else secret
    if len(raw) < 16:
        raise InvalidInput("HIVE_PRIVACY__KEY", "is shorter than 16 bytes")
    return hashlib.sha512(b"hive-privacy-key\x00" + raw).digest()


def sealed_in(pseudonym: str) -> tuple[str, bytes] | None:
    """(entity type, sealed bytes) of a sealed pseudonym (not a stand-in), or None."""
    match = TOKEN.fullmatch(pseudonym)
    if match is None:
        return None
    entity, sealed = (match[1], match[2]) if match[2] else ("EMAIL_ADDRESS", match[3])
    try:
        return entity, _unb32(sealed)
    except ValueError:
        return None


def _luhn_digit(digits: str) -> str:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        n = int(ch)
        if index % 2 == 0:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str((10 - total % 10) % 10)


@dataclass
class Pseudonyms:
    """Reversible pseudonyms under one team key: `keyring`, or a local one from `key`."""

    key: bytes = b""
    keyring: Keyring | None = None
    # format-preserving stand-ins: stand-in -> (entity, value)
    _table: dict[str, tuple[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.keyring is None:
            if len(self.key) != 64:
                raise InvalidInput("HIVE_PRIVACY__KEY", "a pseudonym key is 64 bytes")
            self.keyring = LocalKeyring(self.key)

    @property
    def ring(self) -> Keyring:
        assert self.keyring is not None
        return self.keyring

    def prepare(self, items: list[tuple[str, str]]) -> None:
        """Seal the (entity, value) pairs of one text ahead, together, where the keyring can
        (a transit key: one request for them all)."""
        seal_many = getattr(self.keyring, "seal_many", None)
        wanted = [(e, v) for e, v in items if e not in FORMAT_PRESERVED]
        if seal_many is not None and wanted:
            seal_many(wanted)

    def make(self, entity: str, value: str) -> str:
        if entity in FORMAT_PRESERVED:
            return self._stand_in(entity, value)
        sealed = _b32(self.ring.seal(entity, value))
        if entity == "EMAIL_ADDRESS":
            return f"{sealed}@{EMAIL_DOMAIN}"
        return f"{entity}_{sealed}"

    def _stand_in(self, entity: str, value: str) -> str:
        """Same layout as `value` (separators kept), digits from the keyring's digest; for cards
        the last digit makes it Luhn-valid, and the first is 0 (no issuer) so it is no real
        card."""
        stream = self.ring.digest(entity, value)
        count = sum(c.isdigit() for c in value)
        digits = "0" + "".join(str(int(stream[i : i + 2], 16) % 10) for i in range(0, 64, 2))
        digits = (digits * 2)[: count - 1] if entity == "CREDIT_CARD" else digits[:count]
        if entity == "CREDIT_CARD":
            digits += _luhn_digit(digits)
        it = iter(digits)
        out = "".join(next(it) if c.isdigit() else c for c in value)
        with self._lock:
            self._table[out] = (entity, value)
        return out

    def is_pseudonym(self, text: str) -> bool:
        """Whether `text` is a pseudonym made here (not to be handled twice)."""
        if TOKEN.fullmatch(text):
            return True
        with self._lock:
            return text in self._table

    def restore(self, text: str) -> str:
        return self.restore_counted(text)[0]

    def restore_counted(self, text: str) -> tuple[str, list[str]]:
        """`text` with the pseudonyms made under this key restored, and the entity type of each
        one restored."""
        restored_entities: list[str] = []

        def one(match: re.Match[str]) -> str:
            entity, sealed = (match[1], match[2]) if match[2] else ("EMAIL_ADDRESS", match[3])
            try:
                raw = _unb32(sealed)
            except ValueError:
                return match[0]
            value = self.ring.open(entity, raw)
            if value is None:  # not one of ours: left as it is
                return match[0]
            restored_entities.append(entity)
            return value

        restored = TOKEN.sub(one, text)
        with self._lock:
            table = dict(self._table)
        for stand_in, (entity, value) in table.items():
            if stand_in in restored:
                restored_entities += [entity] * restored.count(stand_in)
                restored = restored.replace(stand_in, value)
        return restored, restored_entities


def replacement(
    spec: PrivacySpec, finding: Finding, value: str, salt: bytes | None, pseudonyms: Pseudonyms
) -> str:
    """What `value` (a finding of type finding.entity) becomes under `spec` (`salt`: of the hash
    strategy; None hashes with the keyring's digest)."""
    rule = spec.strategy(finding.entity)
    strategy = Strategy(rule.strategy) if rule else Strategy.ALLOW
    if strategy is Strategy.REDACT:
        return f"<{finding.entity}>"
    if strategy is Strategy.MASK:
        keep = rule.keep_last if rule else 4
        cut = max(0, len(value) - keep)
        return "".join("*" if c.isalnum() else c for c in value[:cut]) + value[cut:]
    if strategy is Strategy.HASH:
        if salt is None:  # the team's keyring (its transit key): one digest team-wide
            try:
                return f"<{finding.entity}:{pseudonyms.ring.digest(finding.entity, value)[:16]}>"
            except ExternalFailure as exc:
                log.warning("hash of %s not made, redacted instead: %s", finding.entity, exc)
                return f"<{finding.entity}>"
        digest = hmac.new(salt, f"{finding.entity}\x00{value}".encode(), hashlib.sha256)
        return f"<{finding.entity}:{digest.hexdigest()[:16]}>"
    if strategy is Strategy.PSEUDONYMISE:
        try:
            return pseudonyms.make(finding.entity, value)
        except ExternalFailure as exc:  # never in clear: redacted while the key is away
            log.warning("pseudonym of %s not made, redacted instead: %s", finding.entity, exc)
            return f"<{finding.entity}>"
    return value


def apply(
    spec: PrivacySpec,
    text: str,
    findings: Sequence[Finding],
    salt: bytes | None,
    pseudonyms: Pseudonyms,
) -> str:
    """`text` with every finding handled by its strategy, through Presidio's anonymizer."""
    handled = [
        f for f in findings if (r := spec.strategy(f.entity)) and r.strategy != Strategy.ALLOW
    ]
    if not handled:
        return text
    from presidio_anonymizer import RecognizerResult
    from presidio_anonymizer.entities import OperatorConfig

    def operator(entity: str) -> OperatorConfig:
        def handle(value: str) -> str:
            return replacement(spec, Finding(entity, 0, 0, 1.0), value, salt, pseudonyms)

        return OperatorConfig("custom", {"lambda": handle})

    results = [RecognizerResult(f.entity, f.start, f.end, f.score) for f in handled]
    operators = {f.entity: operator(f.entity) for f in handled}
    return str(_engine().anonymize(text, results, operators).text)


_ENGINE: list[Any] = []


def _engine() -> Any:
    if not _ENGINE:
        from presidio_anonymizer import AnonymizerEngine

        _ENGINE.append(AnonymizerEngine())  # type: ignore[no-untyped-call]
    return _ENGINE[0]
