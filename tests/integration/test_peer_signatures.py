"""Peers on loopback that take calls only from an agent of their team that signs them.

The keys come as the operator makes them (`hive.reconcile.agentkeys`): each agent its own
secret, every agent the team's public keys. What an eavesdropper or a pod outside the team can
try — no signature, a key of its own, a request seen on the wire sent again or changed, a
request signed for another peer, a certificate copied from another agent — is refused, and the
refusal is on the audit record.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive.errors import ExternalFailure
from hive.reconcile.agentkeys import agent_key, peer_keys, team_key
from hive.reconcile.meta import Owner
from hive.runtime.identity.certs import LocalSigner, Verifier
from hive.runtime.identity.delegation import SCHEME, Authority, scopes, team_root
from hive.runtime.identity.peerauth import HEADER, PeerSigner, PeerVerifier, signing_key
from hive.runtime.teams.peers import PeerServer, RemoteMember
from tests.integration.test_delegation_peers import SPEC, Model, member

pytestmark = pytest.mark.integration

OWNER = Owner("AgentTeam", "bees", "default", "uid-bees")
MASTER = b"k" * 32
KEYS = peer_keys(OWNER, MASTER, ["lead", "researcher"])


def signer(agent: str, master: bytes = MASTER) -> PeerSigner:
    return PeerSigner(agent, signing_key(agent_key(team_key(master, OWNER), agent)))


@dataclass
class Peers:
    researcher: PeerServer
    lead: PeerServer
    audit: Path

    def url(self, server: PeerServer) -> str:
        return f"http://127.0.0.1:{server.port}"

    def refusals(self) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.audit.read_text().splitlines()]
        return [r for r in records if r["outcome"] == "refused"]


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    from hive.runtime.identity.audit import AuditLog

    audit = tmp_path / "default.bees.audit.jsonl"
    researcher = PeerServer(
        member("researcher", Model()),
        audit=AuditLog(audit),
        callers=PeerVerifier.of_texts("researcher", KEYS),
    )
    lead = PeerServer(member("lead", Model()), callers=PeerVerifier.of_texts("lead", KEYS))
    for server in (researcher, lead):
        await server.start()
    try:
        yield Peers(researcher, lead, audit)
    finally:
        for server in (researcher, lead):
            await server.stop()


def remote(peers: Peers, to: str, as_: PeerSigner | None) -> RemoteMember:
    spec = next(a for a in SPEC.agents if a.name == to)
    server = peers.researcher if to == "researcher" else peers.lead
    return RemoteMember(spec, peers.url(server), signer=as_)


async def raw_post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{url}/v1/tasks",
            content=body,
            headers={"Content-Type": "application/json", **headers},
        )


async def test_a_call_signed_by_an_agent_of_the_team_is_served(peers: Peers) -> None:
    result = await remote(peers, "researcher", signer("lead")).execute("t", ("lead",))
    assert result.ok
    (record,) = [json.loads(line) for line in peers.audit.read_text().splitlines()]
    assert record["outcome"] == "allowed"
    assert record["subject"].endswith("by lead")


async def test_an_unsigned_call_gets_401_and_a_foreign_key_403(peers: Peers) -> None:
    with pytest.raises(ExternalFailure, match="only from a signing agent"):
        await remote(peers, "researcher", None).execute("t", ())
    impostor = signer("lead", master=b"x" * 32)  # claims to be the lead, with a key of its own
    with pytest.raises(ExternalFailure, match="the signature of lead does not hold"):
        await remote(peers, "researcher", impostor).execute("t", ())
    outsider = PeerSigner("drone", impostor.key)
    with pytest.raises(ExternalFailure, match="'drone' is no agent of this team"):
        await remote(peers, "researcher", outsider).execute("t", ())
    assert [r["reason"] for r in peers.refusals()] == [
        "HTTP 401: researcher takes peer calls only from a signing agent",
        "HTTP 403: the signature of lead does not hold",
        "HTTP 403: 'drone' is no agent of this team",
    ]


async def test_what_was_seen_on_the_wire_cannot_be_sent_again_changed_or_elsewhere(
    peers: Peers,
) -> None:
    body = json.dumps({"task": "t", "chain": []}, separators=(",", ":")).encode()
    header = signer("lead").header("POST", "/v1/tasks", body, "researcher")
    url = peers.url(peers.researcher)
    first = await raw_post(url, body, {HEADER: header})
    assert first.status_code == 200, first.text
    again = await raw_post(url, body, {HEADER: header})
    assert again.status_code == 403
    assert "sent again" in again.json()["error"]
    fresh = signer("lead").header("POST", "/v1/tasks", body, "researcher")
    changed = await raw_post(url, body.replace(b'"t"', b'"u"'), {HEADER: fresh})
    assert changed.status_code == 403
    assert "does not hold" in changed.json()["error"]
    for_the_researcher = signer("researcher").header("POST", "/v1/tasks", body, "researcher")
    elsewhere = await raw_post(peers.url(peers.lead), body, {HEADER: for_the_researcher})
    assert elsewhere.status_code == 403, "signed for another peer"


async def test_a_stale_signature_is_refused(peers: Peers) -> None:
    old = PeerSigner("lead", signer("lead").key, clock=lambda: time.time() - 600)
    with pytest.raises(ExternalFailure, match="off this agent's clock"):
        await remote(peers, "researcher", old).execute("t", ())


async def test_a_certificate_counts_only_from_the_agent_that_issued_it() -> None:
    """The researcher presents the lead's own root certificate: it was copied, not issued."""
    local_signer = LocalSigner.generate("hive-default-bees:v1")
    lead = member("lead", Model())
    lead_authority = Authority(
        "lead",
        local_signer,
        Verifier("default/bees", "lead", local_signer.keys()),
        scopes(SPEC.agents),
        require=True,
    )
    server = PeerServer(lead, authority=lead_authority, callers=PeerVerifier.of_texts("lead", KEYS))
    await server.start()
    try:
        root = team_root(local_signer, SPEC, "default/bees", "lead", time.time(), 600)
        body = json.dumps({"task": "t"}).encode()
        url = f"http://127.0.0.1:{server.port}"
        copied = {
            HEADER: signer("researcher").header("POST", "/v1/tasks", body, "lead"),
            "Authorization": f"{SCHEME} {root.wire}",
        }
        refused = await raw_post(url, body, copied)
        assert refused.status_code == 403
        assert "issued by lead, not by the caller researcher" in refused.json()["error"]
        own = {
            HEADER: signer("lead").header("POST", "/v1/tasks", body, "lead"),
            "Authorization": f"{SCHEME} {root.wire}",
        }
        assert (await raw_post(url, body, own)).status_code == 200
    finally:
        await server.stop()
