"""Delegation certificates: issue, attenuate, verify, and each reason a certificate is refused."""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey

from hive.runtime.identity.certs import (
    SEPARATOR,
    Certificate,
    CertificateRefused,
    LocalSigner,
    Reason,
    Verifier,
    delegate,
    root_grant,
    sign_link,
)
from hive.runtime.identity.transit import TransitKeys, TransitSigner, team_key

NOW = 1_800_000_000.0
TEAM = "default/bees"
CAPS = ("research", "search", "writing", "review")
TOOLS = ("web", "calc", "files")

SIGNER = LocalSigner.generate("team-key")


def verifier(signer: LocalSigner = SIGNER) -> Verifier:
    return Verifier(TEAM, "lead", signer.keys())


def root(signer: LocalSigner = SIGNER, **changes: Any) -> Certificate:
    args: dict[str, Any] = {
        "team": TEAM,
        "coordinator": "lead",
        "capabilities": CAPS,
        "tools": TOOLS,
        "budget": 10_000,
        "deadline": NOW + 3600,
        "expires": NOW + 600,
    }
    return root_grant(signer, **(args | changes))


def refused(wire: str, reason: Reason, *, subject: str | None = None, now: float = NOW) -> None:
    with pytest.raises(CertificateRefused) as caught:
        verifier().verify(wire, now, subject)
    assert caught.value.reason is reason, caught.value


def test_a_delegated_certificate_verifies_and_names_its_chain() -> None:
    senior = delegate(SIGNER, root(), "senior", capabilities=["research", "writing"], budget=5000)
    junior = delegate(SIGNER, senior, "junior", tools=["web"], expires=NOW + 60)
    cert = verifier().verify(junior.wire, NOW, "junior")
    assert cert.grant.capabilities == {"research", "writing"}
    assert cert.grant.tools == {"web"}
    assert cert.grant.budget == 5000
    assert cert.authority == ["lead->lead", "lead->senior", "senior->junior"]


def test_links_are_standard_jws_that_a_jose_library_verifies() -> None:
    cert = delegate(SIGNER, root(), "junior", tools=["web"])
    public = SIGNER.private.public_key()
    key = OKPKey.import_key(public)  # type: ignore[arg-type]
    for link in cert.links:
        decoded = jws.deserialize_compact(link.token, key, algorithms=["Ed25519"])
        assert json.loads(decoded.payload)["sub"] == link.grant.subject
        assert decoded.headers()["kid"] == "team-key"


def test_issuing_more_than_one_holds_is_refused() -> None:
    with pytest.raises(CertificateRefused) as caught:
        delegate(SIGNER, root(), "junior", tools=["web", "shell"])
    assert caught.value.reason is Reason.WIDENED


@pytest.mark.parametrize(
    ("widen", "what"),
    [
        ({"capabilities": frozenset({*CAPS, "admin"})}, "capabilities"),
        ({"tools": frozenset({*TOOLS, "shell"})}, "tools"),
        ({"budget": 10_001}, "budget"),
        ({"budget": None}, "budget"),
        ({"deadline": NOW + 3601}, "deadline"),
        ({"expires": NOW + 601}, "expiry"),
    ],
)
def test_a_widened_link_is_refused(widen: dict[str, Any], what: str) -> None:
    parent = root()
    widened = sign_link(SIGNER, replace(parent.grant, subject="junior", **widen), parent)
    with pytest.raises(CertificateRefused) as caught:
        verifier().verify(widened.wire, NOW)
    assert caught.value.reason is Reason.WIDENED
    assert what in str(caught.value)


def test_a_forged_signature_or_a_foreign_key_is_refused() -> None:
    cert = delegate(SIGNER, root(), "junior")
    header, payload, _ = cert.links[-1].token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["tools"] = [*TOOLS, "shell"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = cert.links[-1].token.split(".")[2]
    tampered = SEPARATOR.join((cert.links[0].token, f"{header}.{forged_payload}.{sig}"))
    refused(tampered, Reason.FORGED)
    impostor = LocalSigner.generate("team-key")  # same key id, another key
    refused(delegate(impostor, root(impostor), "junior").wire, Reason.FORGED)
    stranger = LocalSigner.generate("stranger")
    refused(delegate(stranger, root(stranger), "junior").wire, Reason.FORGED)


def test_expired_and_past_deadline_are_refused() -> None:
    cert = delegate(SIGNER, root(), "junior", expires=NOW + 10, deadline=NOW + 20)
    verifier().verify(cert.wire, NOW + 9)
    refused(cert.wire, Reason.EXPIRED, now=NOW + 10)
    late = delegate(SIGNER, root(), "junior", deadline=NOW + 5)
    refused(late.wire, Reason.EXPIRED, now=NOW + 6)


def test_another_teams_certificate_is_refused() -> None:
    refused(delegate(SIGNER, root(team="default/wasps"), "junior").wire, Reason.WRONG_TEAM)


def test_a_chain_that_does_not_start_at_the_coordinators_root_is_refused() -> None:
    refused(root(coordinator="mallory").wire, Reason.BROKEN_CHAIN)
    a = delegate(SIGNER, root(), "a")
    b = delegate(SIGNER, root(), "b")
    spliced = SEPARATOR.join((a.links[0].token, a.links[1].token, b.links[1].token))
    refused(spliced, Reason.BROKEN_CHAIN)
    skipped = delegate(SIGNER, a, "c")
    refused(SEPARATOR.join((skipped.links[0].token, skipped.links[2].token)), Reason.BROKEN_CHAIN)
    # the link names its parent, but someone other than the parent's subject issued it
    other = sign_link(SIGNER, replace(a.grant, issuer="b", subject="c"), a)
    refused(other.wire, Reason.BROKEN_CHAIN)


def test_a_certificate_presented_to_the_wrong_agent_is_refused() -> None:
    refused(delegate(SIGNER, root(), "junior").wire, Reason.WRONG_SUBJECT, subject="writer")


@pytest.mark.parametrize(
    "wire",
    [
        "not-a-jws",
        "a.b.c",
        "e30.e30.AA",  # {} header: not Ed25519
        base64.urlsafe_b64encode(b'{"alg":"Ed25519"}').decode().rstrip("=") + ".W10.AA",
    ],
)
def test_malformed_certificates_are_refused(wire: str) -> None:
    refused(wire, Reason.MALFORMED)


def test_a_missing_certificate_is_its_own_reason() -> None:
    refused("", Reason.MISSING)


def test_a_link_with_a_bad_claim_is_malformed() -> None:
    bad = sign_link(SIGNER, replace(root().grant, budget=True))  # type: ignore[arg-type]
    refused(bad.wire, Reason.MALFORMED)


# -- properties: attenuation holds over any chain hypothesis can build ------------------------

step = st.fixed_dictionaries(
    {
        "capabilities": st.none() | st.sets(st.sampled_from(CAPS)),
        "tools": st.none() | st.sets(st.sampled_from(TOOLS)),
        "budget": st.none() | st.integers(0, 10_000),
        "deadline": st.none() | st.floats(NOW + 1, NOW + 3600),
        "expires": st.none() | st.floats(NOW + 1, NOW + 600),
    }
)


def narrowed(parent: Certificate, wish: dict[str, Any]) -> dict[str, Any]:
    """`wish` cut down to what `parent` holds: what a careful issuer asks for."""
    above = parent.grant
    out = dict(wish)
    if wish["capabilities"] is not None:
        out["capabilities"] = wish["capabilities"] & above.capabilities
    if wish["tools"] is not None:
        out["tools"] = wish["tools"] & above.tools
    for key, limit in (
        ("budget", above.budget),
        ("deadline", above.deadline),
        ("expires", above.expires),
    ):
        if wish[key] is not None and limit is not None:
            out[key] = min(wish[key], limit)
    return out


def build(steps: list[dict[str, Any]]) -> Certificate:
    cert = root()
    for i, wish in enumerate(steps):
        cert = delegate(SIGNER, cert, f"agent-{i}", **narrowed(cert, wish))
    return cert


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=0, max_size=6))
def test_any_chain_built_by_attenuating_verifies_and_never_grows(
    steps: list[dict[str, Any]],
) -> None:
    cert = build(steps)
    checked = verifier().verify(cert.wire, NOW)
    grants = [link.grant for link in checked.links]
    for above, below in itertools.pairwise(grants):
        assert below.capabilities <= above.capabilities
        assert below.tools <= above.tools
        assert below.expires <= above.expires
        assert above.budget is None or (below.budget is not None and below.budget <= above.budget)
    # expiry propagates: once any link above has expired, the whole chain is refused
    earliest = min(g.expires for g in grants)
    refused(cert.wire, Reason.EXPIRED, now=earliest)


widenings = st.sampled_from(["capabilities", "tools", "budget", "deadline", "expires"])


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=6), st.data(), widenings)
def test_widening_any_link_of_any_chain_is_refused(
    steps: list[dict[str, Any]], data: st.DataObject, what: str
) -> None:
    at = data.draw(st.integers(0, len(steps) - 1), label="link")
    cert = build(steps[:at])
    above = cert.grant
    grant = replace(above, issuer=above.subject, subject=f"agent-{at}")
    if what == "capabilities":
        grant = replace(grant, capabilities=above.capabilities | {"admin"})
    elif what == "tools":
        grant = replace(grant, tools=above.tools | {"shell"})
    elif what == "budget":
        grant = replace(grant, budget=(above.budget or 0) + 1)
    elif what == "deadline":
        grant = replace(grant, deadline=(above.deadline or NOW) + 1)
    else:
        grant = replace(grant, expires=above.expires + 1)
    cert = sign_link(SIGNER, grant, cert)
    for i, wish in enumerate(steps[at + 1 :], at + 1):
        cert = sign_link(
            SIGNER, replace(cert.grant, issuer=cert.grant.subject, subject=f"agent-{i}"), cert
        )
        del wish
    refused(cert.wire, Reason.WIDENED, now=NOW)


# -- the Vault transit signer, against a fake transit API ---------------------------------------


class FakeTransit:
    """``client.secrets.transit`` of hvac, with one ed25519 key."""

    def __init__(self) -> None:
        self.signer = LocalSigner.generate()
        self.reads = 0

    def sign_data(
        self, name: str, hash_input: str, key_version: int, mount_point: str
    ) -> dict[str, Any]:
        assert (name, key_version, mount_point) == ("hive-default-bees", 1, "transit")
        signature = self.signer.sign(base64.b64decode(hash_input))
        return {"data": {"signature": "vault:v1:" + base64.b64encode(signature).decode()}}

    def read_key(self, name: str, mount_point: str) -> dict[str, Any]:
        self.reads += 1
        raw = self.signer.private.public_key().public_bytes_raw()
        keys = {"1": {"public_key": base64.b64encode(raw).decode()}}
        return {"data": {"keys": keys, "latest_version": 1}}


class FakeClient:
    def __init__(self) -> None:
        self.transit = FakeTransit()

    @property
    def secrets(self) -> Any:
        return self


def test_transit_signs_and_its_public_key_is_fetched_once() -> None:
    client = FakeClient()
    name = team_key("default", "bees")
    signer = TransitSigner.latest(client, name)
    keys = TransitKeys(client, name)
    check = Verifier(TEAM, "lead", keys)
    cert = delegate(signer, root(signer), "junior")  # type: ignore[arg-type]
    assert signer.key_id == "hive-default-bees:v1"
    for _ in range(3):
        check.verify(cert.wire, NOW)
        check.verify(delegate(signer, cert, "other").wire, NOW)
    assert client.transit.reads == 2  # the signer's latest version, then the public key
    assert keys.public_key("hive-default-wasps:v1") is None
