"""Who calls: every request between a team's agents is signed by the calling agent.

Each agent holds one secret key of its own (a file the operator mounts from the team's
agent-keys Secret, `hive.reconcile.agentkeys`). From it the agent derives an Ed25519 signing
key (`signing_key`); the operator derives the same public keys and gives every agent of the
team the public keys of all of them (``peerKeys`` in its configuration). A request carries

    Hive-Signature: agent=<caller>, ts=<unix seconds>, nonce=<hex>, sig=<base64url>

over the method, the path, the body's SHA-256, the time, the nonce and the callee's name, so a
signature proves possession of the caller's key (the key never crosses the wire), holds for
one callee and one exact request, and a request seen on the wire cannot be sent again: the
callee refuses a time outside its window and a nonce it has already seen within it. A request
without a signature is refused with 401, one whose signature fails with 403
(`PeerRefused.status`). A delegation certificate that comes with a request must have been
issued by the agent that signed it (see `hive.runtime.teams.peers`): a certificate someone
else copied is worth nothing without its issuer's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hive.errors import HiveError, InvalidInput

HEADER = "Hive-Signature"
WINDOW_S = 60.0  # a signature's time may be this far from the callee's clock
NONCES_KEPT = 100_000  # per callee, within the window; the oldest go first
SEED_LABEL = b"hive-peer-signing/1"


class PeerRefused(HiveError):
    """A peer request whose caller is not proven; `status` is the HTTP answer (401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def signing_key(agent_key: bytes) -> Ed25519PrivateKey:
    """The agent's Ed25519 key, derived from its own secret key (the operator derives the same
    public key from the same secret)."""
    seed = hmac.new(agent_key, SEED_LABEL, hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(agent_key: bytes) -> str:
    raw = signing_key(agent_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(raw)


def read_agent_key(path: Path) -> bytes:
    """An agent key file as the operator writes it: hex text."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise InvalidInput("agent.key_file", f"no agent key at {path} ({exc})") from exc


def _message(method: str, path: str, body: bytes, ts: str, nonce: str, callee: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(("hive-peer/1", method.upper(), path, digest, ts, nonce, callee)).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PeerSigner:
    """Signs this agent's requests to its peers."""

    agent: str
    key: Ed25519PrivateKey
    clock: Callable[[], float] = time.time

    @classmethod
    def from_file(cls, agent: str, path: Path) -> PeerSigner:
        return cls(agent, signing_key(read_agent_key(path)))

    def header(self, method: str, path: str, body: bytes, callee: str) -> str:
        ts, nonce = f"{self.clock():.3f}", os.urandom(12).hex()
        signature = self.key.sign(_message(method, path, body, ts, nonce, callee))
        return f"agent={self.agent}, ts={ts}, nonce={nonce}, sig={_b64(signature)}"


def _fields(header: str) -> dict[str, str]:
    fields = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    return fields


@dataclass
class PeerVerifier:
    """Checks the signature of each request to `agent`, with the team's public keys."""

    agent: str
    keys: Mapping[str, Ed25519PublicKey]
    window_s: float = WINDOW_S
    clock: Callable[[], float] = time.time
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)

    @classmethod
    def of_texts(cls, agent: str, keys: Mapping[str, str]) -> PeerVerifier:
        """From the public keys as the operator writes them (base64url of the raw 32 bytes)."""
        try:
            loaded = {
                name: Ed25519PublicKey.from_public_bytes(_unb64(text))
                for name, text in keys.items()
            }
        except ValueError as exc:
            raise InvalidInput("peerKeys", f"not an Ed25519 public key ({exc})") from exc
        return cls(agent, loaded)

    def verify(self, header: str | None, method: str, path: str, body: bytes) -> str:
        """The caller of a request whose signature holds; raises `PeerRefused` otherwise."""
        if not header:
            raise PeerRefused(401, f"{self.agent} takes peer calls only from a signing agent")
        fields = _fields(header)
        caller, ts, nonce, sig = (fields.get(k, "") for k in ("agent", "ts", "nonce", "sig"))
        if not (caller and ts and nonce and sig):
            raise PeerRefused(403, f"the {HEADER} header lacks agent, ts, nonce or sig")
        key = self.keys.get(caller)
        if key is None:
            raise PeerRefused(403, f"{caller!r} is no agent of this team")
        try:
            when = float(ts)
        except ValueError:
            raise PeerRefused(403, f"the signature's time {ts!r} is not a number") from None
        now = self.clock()
        if abs(now - when) > self.window_s:
            raise PeerRefused(
                403, f"the signature of {caller} is {now - when:+.0f} s off this agent's clock"
            )
        try:
            key.verify(_unb64(sig), _message(method, path, body, ts, nonce, self.agent))
        except (InvalidSignature, ValueError):
            raise PeerRefused(403, f"the signature of {caller} does not hold") from None
        self._forget_before(now - self.window_s)
        if nonce in self._seen:
            raise PeerRefused(403, f"a request of {caller} was sent again (nonce seen)")
        self._seen[nonce] = when
        if len(self._seen) > NONCES_KEPT:
            self._seen.popitem(last=False)
        return caller

    def _forget_before(self, oldest: float) -> None:
        while self._seen:
            when = next(iter(self._seen.values()))
            if when >= oldest:
                return
            self._seen.popitem(last=False)
