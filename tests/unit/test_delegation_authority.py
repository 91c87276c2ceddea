"""An agent's authority in its call chain: certificates presented to peers, tool calls checked."""

from __future__ import annotations

from typing import Any

import pytest

from hive.runtime.identity.certs import (
    CertificateRefused,
    LocalSigner,
    Reason,
    Verifier,
    root_grant,
)
from hive.runtime.identity.delegation import SCHEME, Authority, Scope
from hive.runtime.resilience.calls import Call, CallKind, Chain

TEAM = "default/bees"
SIGNER = LocalSigner.generate("k")
NOW = 1_800_000_000.0


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


def authority(agent: str = "lead", spent: list[int] | None = None) -> tuple[Authority, Clock]:
    clock = Clock()
    counter = spent if spent is not None else [0]
    return (
        Authority(
            agent,
            SIGNER,
            Verifier(TEAM, "lead", SIGNER.keys()),
            {"researcher": Scope(frozenset({"research"}), frozenset({"web"}))},
            tokens=lambda: counter[0],
            clock=clock,
        ),
        clock,
    )


ROOT = root_grant(
    SIGNER,
    team=TEAM,
    coordinator="lead",
    capabilities={"research", "writing"},
    tools={"web", "calc"},
    budget=100,
    deadline=NOW + 60,
    expires=NOW + 30,
)


async def through(auth: Authority, call: Call) -> Call:
    async def transport() -> Call:
        return call

    return await Chain((auth.middleware,), auth.agent).run(call, transport)


async def test_peer_calls_carry_a_certificate_issued_once_for_the_peer() -> None:
    auth, _ = authority()
    with auth.holding(ROOT):
        first: dict[str, Any] = {}
        second: dict[str, Any] = {}
        await through(auth, Call(CallKind.PEER, "researcher", "execute", request=first))
        await through(auth, Call(CallKind.PEER, "researcher", "execute", request=second))
    assert first == second
    scheme, wire = first["headers"]["Authorization"].split(" ")
    assert scheme == SCHEME
    cert = auth.verifier.verify(wire, NOW, "researcher")
    assert cert.grant.tools == {"web"}
    assert cert.grant.capabilities == {"research"}
    bare: dict[str, Any] = {}
    await through(auth, Call(CallKind.PEER, "researcher", "execute", request=bare))
    assert bare == {}  # nothing held, nothing presented


async def test_tool_calls_stay_within_the_held_certificate() -> None:
    spent = [0]
    auth, clock = authority(spent=spent)
    await through(auth, Call(CallKind.TOOL, "shell", "call"))  # no certificate: not checked
    with auth.holding(ROOT):
        await through(auth, Call(CallKind.TOOL, "web", "call"))
        with pytest.raises(CertificateRefused) as caught:
            await through(auth, Call(CallKind.TOOL, "shell", "call"))
        assert caught.value.reason is Reason.NOT_GRANTED
        spent[0] = 101
        with pytest.raises(CertificateRefused, match="budget of 100"):
            await through(auth, Call(CallKind.TOOL, "web", "call"))
        spent[0] = 50
        clock.now = NOW + 30
        with pytest.raises(CertificateRefused) as caught:
            await through(auth, Call(CallKind.TOOL, "web", "call"))
        assert caught.value.reason is Reason.EXPIRED


def test_a_required_certificate_that_is_missing_is_its_own_reason() -> None:
    auth, _ = authority("researcher")
    assert auth.admit(None) is None
    auth.require = True
    for header in (None, "Bearer x", f"{SCHEME} "):
        with pytest.raises(CertificateRefused) as caught:
            auth.admit(header)
        assert caught.value.reason is Reason.MISSING
