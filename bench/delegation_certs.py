"""What delegation certificates cost: issue and verify per delegation, and per peer call.

    python bench/delegation_certs.py [--rounds 5000] [--calls 1000] [--depth 3]

1. Issue: a certificate for a subordinate from a chain `--depth` links deep (local Ed25519
   key), per delegation, p50/p99 in µs.
2. Verify, with the team's public key cached: a whole chain never seen before (every link's
   signature checked), and a new delegation below a chain already seen (the usual case: a
   peer's senior issues many; the links above it were checked once). Goal: ≤ 200 µs p50.
3. Peer-call overhead: the same ``/v1/tasks`` call from a `RemoteMember` to a `PeerServer` on
   loopback (an agent that answers at once), with and without certificates (the caller's chain
   presents one, the server requires and verifies it); calls alternate between the two setups
   so drift hits both. Reported for the steady state (the same certificate every call of a
   task) and for a new certificate every call (issued and verified in full each time); and
   as pods call each other, each request also signed by the caller's own Ed25519 key and the
   signature checked (hive.runtime.identity.peerauth). Goal: ≤ 0.5 ms p50 added.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import AgentSpec
from hive.runtime.events import EventBus
from hive.runtime.identity.certs import Certificate, LocalSigner, Verifier, delegate, root_grant
from hive.runtime.identity.delegation import Authority, Scope
from hive.runtime.identity.peerauth import PeerSigner, PeerVerifier, public_key_text, signing_key
from hive.runtime.models import Reply, Usage
from hive.runtime.resilience.calls import EMPTY, Chain
from hive.runtime.teams.members import LocalMember
from hive.runtime.teams.peers import PeerServer, RemoteMember

TEAM = "default/bench"
SIGNER = LocalSigner.generate("hive-default-bench:v1")
CAPS = ("research", "search", "writing", "review")
TOOLS = ("web", "calc", "files")
LEAD_KEY = b"l" * 32  # the lead's own secret key, as the operator mounts it


def chain_of(depth: int, now: float) -> Certificate:
    cert = root_grant(
        SIGNER,
        team=TEAM,
        coordinator="lead",
        capabilities=CAPS,
        tools=TOOLS,
        budget=100_000,
        deadline=now + 3600,
        expires=now + 3600,
    )
    for i in range(depth - 1):
        cert = delegate(SIGNER, cert, f"agent-{i}", budget=100_000 - i)
    return cert


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1]


def line(name: str, values: Sequence[float], unit: str = "µs") -> None:
    data = list(values)
    p50, p99 = quantile(data, 0.5), quantile(data, 0.99)
    print(f"  {name:<62} p50 {p50:8.1f} {unit}   p99 {p99:8.1f} {unit}")


def timed(work: Callable[[], Any], rounds: int) -> list[float]:
    clock = time.perf_counter_ns
    times = []
    for _ in range(rounds):
        start = clock()
        work()
        times.append((clock() - start) / 1000)
    return times


def certificates(rounds: int, depth: int) -> None:
    now = time.time()
    parent = chain_of(depth, now)
    print(f"certificates (Ed25519 JWS links; each new one below a chain of {depth} links):")
    issue = timed(lambda: delegate(SIGNER, parent, "junior", tools=["web"]), rounds)
    line("issue one delegation", issue)

    leaves = [delegate(SIGNER, parent, f"junior-{i}", tools=["web"]) for i in range(rounds)]
    keys = SIGNER.keys()
    cold = []
    for leaf in leaves:
        verifier = Verifier(TEAM, "lead", keys)  # nothing verified yet; key at hand
        start = time.perf_counter_ns()
        verifier.verify(leaf.wire, now)
        cold.append((time.perf_counter_ns() - start) / 1000)
    line(f"verify a whole new chain ({depth + 1} signatures)", cold)

    verifier = Verifier(TEAM, "lead", keys)
    verifier.verify(parent.wire, now)
    warm = []
    for leaf in leaves:
        start = time.perf_counter_ns()
        verifier.verify(leaf.wire, now)
        warm.append((time.perf_counter_ns() - start) / 1000)
    line("verify a new delegation below a chain seen before (goal 200)", warm)
    again = timed(lambda: verifier.verify(leaves[0].wire, now), rounds)
    line("verify a certificate seen before", again)


@dataclass
class InstantModel:
    usage: Usage = field(default_factory=Usage)

    async def complete(self, messages: Any, tools: Any = None, **extra: Any) -> Reply:
        return Reply(content="done", tool_calls=[], finish_reason="stop")

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def authority(agent: str, require: bool) -> Authority:
    scopes = {"worker": Scope(frozenset(CAPS), frozenset(TOOLS))}
    return Authority(agent, SIGNER, Verifier(TEAM, "lead", SIGNER.keys()), scopes, require=require)


async def per_call_ms(remote: RemoteMember, before: Callable[[], None] | None = None) -> float:
    if before is not None:
        before()
    start = time.perf_counter_ns()
    await remote.execute("t", ("lead", "worker"))
    return (time.perf_counter_ns() - start) / 1e6


async def peer_calls(calls: int) -> None:
    spec = AgentSpec(name="worker", role="junior")
    servers = {}
    keys = {"lead": public_key_text(LEAD_KEY), "worker": public_key_text(b"w" * 32)}
    for name, auth, callers in (
        ("plain", None, None),
        ("certified", authority("worker", True), None),
        ("signed", authority("worker", True), PeerVerifier.of_texts("worker", keys)),
    ):
        member = LocalMember(spec=spec, model=InstantModel(), goal="bench", bus=EventBus())
        servers[name] = PeerServer(member, authority=auth, callers=callers)
        await servers[name].start()
    caller = authority("lead", False)
    plain = RemoteMember(spec, f"http://127.0.0.1:{servers['plain'].port}", chain=EMPTY)
    certified = RemoteMember(
        spec,
        f"http://127.0.0.1:{servers['certified'].port}",
        chain=Chain((caller.middleware,), "lead"),
    )
    signed = RemoteMember(
        spec,
        f"http://127.0.0.1:{servers['signed'].port}",
        chain=Chain((caller.middleware,), "lead"),
        signer=PeerSigner("lead", signing_key(LEAD_KEY)),
    )
    server_authority = servers["certified"].authority
    assert server_authority is not None

    def fresh() -> None:  # a new certificate every call: nothing issued or verified before
        caller._issued.clear()
        server_authority.verifier._verified = None

    root = chain_of(1, time.time())
    try:
        with caller.holding(root):
            for _ in range(100):  # warm up
                await per_call_ms(plain)
                await per_call_ms(certified)
                await per_call_ms(signed)
            results: dict[str, list[float]] = {"plain": [], "steady": [], "fresh": [], "signed": []}
            for _ in range(calls):
                results["plain"].append(await per_call_ms(plain))
                results["steady"].append(await per_call_ms(certified))
                results["fresh"].append(await per_call_ms(certified, fresh))
                results["signed"].append(await per_call_ms(signed))
    finally:
        for server in servers.values():
            await server.stop()
    print(f"peer calls (/v1/tasks on loopback, {calls} each, interleaved):")
    line("without certificates", results["plain"], "ms")
    line("with certificates, the same one each call", results["steady"], "ms")
    line("with certificates, a new one each call (issue + verify)", results["fresh"], "ms")
    line("signed by the caller + the same certificate (what pods do)", results["signed"], "ms")
    base = statistics.median(results["plain"])
    for name in ("steady", "fresh", "signed"):
        added = statistics.median(results[name]) - base
        print(f"  added p50 ({name}): {added * 1000:.0f} µs (goal ≤ 500 µs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    certificates(args.rounds, args.depth)
    asyncio.run(peer_calls(args.calls))


if __name__ == "__main__":
    main()
