"""Delegation certificates: who may do what for whom, signed link by link up to the team's root.

A certificate is a chain of links, the team's root grant first. Each link is a compact JWS
(RFC 7515) signed with Ed25519 (``alg: Ed25519``, RFC 9864; any JOSE library verifies it with
the team's public key) whose payload names the issuer and the subject, the team, the subject's
capabilities and constraints (tools allowed, token budget, deadline), an expiry, and the SHA-256
of the link above it (``prf``). The coordinator, the team's senior at the top, issues the root
grant to itself; whoever holds a certificate may issue one for someone else from it, never with
more than its own (attenuation). On the wire the links travel joined by ``~``, root first.

`Verifier.verify` checks every link's signature against the team's keys, the chain (each link
names the one above it and is issued by its subject; the root is the coordinator's own grant),
attenuation at every link, expiry and the deadline against `now`, and the team. A refusal is a
`CertificateRefused` whose `reason` says which check failed. Signatures come from a `Signer`: a
local Ed25519 key here, or the team's Vault transit key (`hive.runtime.identity.transit`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hive.errors import HiveError

ALGORITHM = "Ed25519"
TYPE = "hive-delegation+jwt"
SEPARATOR = "~"
VERIFIED_LINKS = 4096  # signature checks remembered per verifier (by the link's hash)


class Reason(StrEnum):
    """Why a certificate was refused; each names one failed check."""

    MISSING = "missing"  # no certificate where one is required (HTTP 401)
    MALFORMED = "malformed"  # not a chain of JWS links with the expected claims
    FORGED = "forged"  # a signature does not verify, or its key is not the team's
    WIDENED = "widened"  # a link grants more than the link above it
    EXPIRED = "expired"  # past a link's expiry or the deadline
    WRONG_TEAM = "wrong-team"  # issued for another team
    BROKEN_CHAIN = "broken-chain"  # links do not follow each other, or no root grant on top
    WRONG_SUBJECT = "wrong-subject"  # presented by or to an agent it does not name
    NOT_GRANTED = "not-granted"  # a call outside the holder's grant (a tool, the budget)


class CertificateRefused(HiveError):
    """A certificate failed a check; `reason` says which."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"delegation certificate refused ({reason}): {detail}")
        self.reason = reason


class Signer(Protocol):
    """Signs bytes with the team's Ed25519 key; `key_id` names the key for verifiers."""

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class Keys(Protocol):
    """The team's public keys by key id; None for a key that is not the team's."""

    def public_key(self, key_id: str) -> Ed25519PublicKey | None: ...


@dataclass(frozen=True)
class LocalSigner:
    """An Ed25519 key held in this process (tests, ``hive run``)."""

    private: Ed25519PrivateKey
    key_id: str = "local"

    @classmethod
    def generate(cls, key_id: str = "local") -> LocalSigner:
        return cls(Ed25519PrivateKey.generate(), key_id)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def keys(self) -> KeyRing:
        return KeyRing({self.key_id: self.private.public_key()})


@dataclass(frozen=True)
class KeyRing:
    """Public keys known in advance."""

    known: Mapping[str, Ed25519PublicKey]

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self.known.get(key_id)


@dataclass(frozen=True)
class Grant:
    """What one link says: `issuer` lets `subject` act for `team` within these limits."""

    issuer: str
    subject: str
    team: str
    capabilities: frozenset[str]
    tools: frozenset[str]
    budget: int | None  # tokens; None: no limit
    deadline: float | None  # Unix time the work must be done by; None: none
    expires: float  # Unix time
    parent: str | None = None  # SHA-256 (base64url) of the link above; None for the root

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "team": self.team,
            "cap": sorted(self.capabilities),
            "tools": sorted(self.tools),
            "exp": self.expires,
        }
        if self.budget is not None:
            claims["budget"] = self.budget
        if self.deadline is not None:
            claims["deadline"] = self.deadline
        if self.parent is not None:
            claims["prf"] = self.parent
        return claims

    @classmethod
    def from_claims(cls, claims: Any) -> Grant:
        if not isinstance(claims, dict):
            raise CertificateRefused(Reason.MALFORMED, "the payload is not a JSON object")
        try:
            budget, deadline = claims.get("budget"), claims.get("deadline")
            grant = cls(
                issuer=_text(claims["iss"]),
                subject=_text(claims["sub"]),
                team=_text(claims["team"]),
                capabilities=_texts(claims["cap"]),
                tools=_texts(claims["tools"]),
                budget=None if budget is None else _integer(budget),
                deadline=None if deadline is None else _number(deadline),
                expires=_number(claims["exp"]),
                parent=None if claims.get("prf") is None else _text(claims["prf"]),
            )
        except (KeyError, TypeError) as exc:
            raise CertificateRefused(Reason.MALFORMED, f"bad or missing claim {exc}") from exc
        return grant

    def widening(self, parent: Grant) -> str | None:
        """What this grant has beyond `parent`, or None when it is within it."""
        if not self.capabilities <= parent.capabilities:
            return f"capabilities {sorted(self.capabilities - parent.capabilities)}"
        if not self.tools <= parent.tools:
            return f"tools {sorted(self.tools - parent.tools)}"
        if parent.budget is not None and (self.budget is None or self.budget > parent.budget):
            return f"token budget {self.budget} over {parent.budget}"
        if parent.deadline is not None and (
            self.deadline is None or self.deadline > parent.deadline
        ):
            return f"deadline {self.deadline} after {parent.deadline}"
        if self.expires > parent.expires:
            return f"expiry {self.expires} after {parent.expires}"
        return None


@dataclass(frozen=True)
class Link:
    token: str  # the compact JWS
    grant: Grant

    @property
    def digest(self) -> str:
        return _b64(hashlib.sha256(self.token.encode()).digest())


@dataclass(frozen=True)
class Certificate:
    """A chain of links, the team's root grant first; the last names the holder."""

    links: tuple[Link, ...]

    @property
    def grant(self) -> Grant:
        return self.links[-1].grant

    @property
    def wire(self) -> str:
        return SEPARATOR.join(link.token for link in self.links)

    @property
    def authority(self) -> list[str]:
        """Who granted what, root first: ``issuer->subject`` per link (for audit records)."""
        return [f"{link.grant.issuer}->{link.grant.subject}" for link in self.links]


def sign_link(signer: Signer, grant: Grant, parent: Certificate | None = None) -> Certificate:
    """Sign `grant` below `parent` as it is, without checking it (`delegate` checks)."""
    if parent is not None:
        grant = replace(grant, parent=parent.links[-1].digest)
    header = {"alg": ALGORITHM, "typ": TYPE, "kid": signer.key_id}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(grant.claims()))}"
    token = f"{signing_input}.{_b64(signer.sign(signing_input.encode()))}"
    return Certificate((*(parent.links if parent else ()), Link(token, grant)))


def root_grant(
    signer: Signer,
    *,
    team: str,
    coordinator: str,
    capabilities: Iterable[str],
    tools: Iterable[str],
    budget: int | None,
    deadline: float | None,
    expires: float,
) -> Certificate:
    """The team's root grant: the coordinator's certificate for itself, top of every chain."""
    grant = Grant(
        issuer=coordinator,
        subject=coordinator,
        team=team,
        capabilities=frozenset(capabilities),
        tools=frozenset(tools),
        budget=budget,
        deadline=deadline,
        expires=expires,
    )
    return sign_link(signer, grant)


def delegate(
    signer: Signer,
    parent: Certificate,
    subject: str,
    *,
    capabilities: Iterable[str] | None = None,
    tools: Iterable[str] | None = None,
    budget: int | None = None,
    deadline: float | None = None,
    expires: float | None = None,
) -> Certificate:
    """A certificate for `subject` from `parent`'s holder; each limit is the parent's where not
    given, and narrower ones are kept (a wider one is refused as `Reason.WIDENED`)."""
    above = parent.grant
    grant = Grant(
        issuer=above.subject,
        subject=subject,
        team=above.team,
        capabilities=above.capabilities if capabilities is None else frozenset(capabilities),
        tools=above.tools if tools is None else frozenset(tools),
        budget=above.budget if budget is None else budget,
        deadline=above.deadline if deadline is None else deadline,
        expires=above.expires if expires is None else expires,
    )
    widened = grant.widening(above)
    if widened is not None:
        raise CertificateRefused(Reason.WIDENED, f"{above.subject} cannot grant {widened}")
    return sign_link(signer, grant, parent)


@dataclass
class Verifier:
    """Checks certificates of one team whose root grants its coordinator issues."""

    team: str
    coordinator: str
    keys: Keys
    _verified: OrderedDict[str, Grant] | None = None

    def verify(self, wire: str, now: float, subject: str | None = None) -> Certificate:
        """The certificate `wire` if every check passes (and it names `subject`, when given)."""
        if not wire:
            raise CertificateRefused(Reason.MISSING, "no certificate")
        links = tuple(self._link(token) for token in wire.split(SEPARATOR))
        for link in links:
            if link.grant.team != self.team:
                raise CertificateRefused(
                    Reason.WRONG_TEAM, f"issued for team {link.grant.team}, not {self.team}"
                )
        root = links[0].grant
        if (
            root.parent is not None
            or root.issuer != self.coordinator
            or root.subject != root.issuer
        ):
            raise CertificateRefused(
                Reason.BROKEN_CHAIN,
                f"the chain does not start at the root grant of coordinator {self.coordinator}",
            )
        for above, link in itertools.pairwise(links):
            grant = link.grant
            if grant.parent != above.digest or grant.issuer != above.grant.subject:
                raise CertificateRefused(
                    Reason.BROKEN_CHAIN,
                    f"{grant.issuer}->{grant.subject} does not follow "
                    f"{above.grant.issuer}->{above.grant.subject}",
                )
            widened = grant.widening(above.grant)
            if widened is not None:
                raise CertificateRefused(
                    Reason.WIDENED,
                    f"{grant.issuer}->{grant.subject} grants {widened}",
                )
        leaf = links[-1].grant
        if now >= leaf.expires:  # every link above expires no earlier (attenuation)
            raise CertificateRefused(
                Reason.EXPIRED, f"{leaf.issuer}->{leaf.subject} expired at {leaf.expires:.0f}"
            )
        if leaf.deadline is not None and now >= leaf.deadline:
            raise CertificateRefused(
                Reason.EXPIRED, f"the deadline {leaf.deadline:.0f} of {leaf.subject} has passed"
            )
        if subject is not None and leaf.subject != subject:
            raise CertificateRefused(
                Reason.WRONG_SUBJECT, f"issued to {leaf.subject}, presented to {subject}"
            )
        return Certificate(links)

    def _link(self, token: str) -> Link:
        if self._verified is None:
            self._verified = OrderedDict()
        link_digest = _b64(hashlib.sha256(token.encode()).digest())
        known = self._verified.get(link_digest)
        if known is not None:
            self._verified.move_to_end(link_digest)
            return Link(token, known)
        parts = token.split(".")
        if len(parts) != 3:
            raise CertificateRefused(Reason.MALFORMED, "a link is not a compact JWS")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error) as exc:
            raise CertificateRefused(Reason.MALFORMED, f"a link does not decode: {exc}") from exc
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
            raise CertificateRefused(Reason.MALFORMED, f"a link is not signed with {ALGORITHM}")
        grant = Grant.from_claims(claims)
        key = self.keys.public_key(str(header.get("kid")))
        if key is None:
            raise CertificateRefused(
                Reason.FORGED, f"{grant.issuer}->{grant.subject} is signed with an unknown key"
            )
        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode())
        except InvalidSignature as exc:
            raise CertificateRefused(
                Reason.FORGED, f"the signature of {grant.issuer}->{grant.subject} does not verify"
            ) from exc
        self._verified[link_digest] = grant
        if len(self._verified) > VERIFIED_LINKS:
            self._verified.popitem(last=False)
        return Link(token, grant)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _texts(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return frozenset(_text(v) for v in value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)
