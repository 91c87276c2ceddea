"""Peers on loopback that take calls only with a delegation certificate from their team."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.errors import ExternalFailure
from hive.runtime.events import EventBus
from hive.runtime.identity.audit import AuditLog
from hive.runtime.identity.certs import (
    Certificate,
    LocalSigner,
    Verifier,
    delegate,
    sign_link,
)
from hive.runtime.identity.delegation import HELD, SCHEME, Authority, scopes, team_root
from hive.runtime.models import OpenAICompatible, Reply, Usage
from hive.runtime.pod import AgentPod, PodConfig
from hive.runtime.resilience.calls import Chain
from hive.runtime.teams.members import LocalMember, WorkResult
from hive.runtime.teams.peers import PeerServer, RemoteMember
from tests.integration.test_pods import AGENTS, SCRIPT, MemoryStatus, write_configs
from tests.scripted_model import scripted_model
from tests.support import free_port

pytestmark = pytest.mark.integration

TEAM = "default/bees"
SPEC = AgentTeamSpec.model_validate(
    {
        "goal": "bees",
        "model": {
            "provider": "openai-compatible",
            "endpoint": "http://127.0.0.1:1/v1",
            "name": "m",
        },
        "pattern": "hierarchical",
        "budget": {"maxTokens": 5000},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["researcher"]},
            {"name": "researcher", "role": "junior", "capabilities": ["research"]},
        ],
    }
)
SIGNER = LocalSigner.generate("hive-default-bees:v1")


@dataclass
class Model:
    """Answers at once and notes the certificate its agent works under."""

    usage: Usage = field(default_factory=Usage)
    seen: list[Certificate | None] = field(default_factory=list)

    async def complete(self, messages: Sequence[Any], tools: Any = None, **extra: Any) -> Reply:
        held = HELD.get()
        self.seen.append(held.certificate if held else None)
        self.usage.completion_tokens += 10
        return Reply(content="done", tool_calls=[], finish_reason="stop")

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")


def authority(agent: str, member: LocalMember | None = None, require: bool = True) -> Authority:
    return Authority(
        agent,
        SIGNER,
        Verifier(TEAM, "lead", SIGNER.keys()),
        scopes(SPEC.agents),
        tokens=member.tokens if member else lambda: 0,
        require=require,
    )


def member(name: str, model: Model) -> LocalMember:
    spec = next(a for a in SPEC.agents if a.name == name)
    return LocalMember(spec=spec, model=model, goal=SPEC.goal, bus=EventBus())


@dataclass
class Pods:
    lead: PeerServer
    researcher: PeerServer
    researcher_model: Model
    to_researcher: RemoteMember  # as the lead calls it
    audit: Path  # the researcher's audit log

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]

    def url(self, server: PeerServer) -> str:
        return f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def pods(tmp_path: Path) -> AsyncIterator[Pods]:
    researcher_model = Model()
    researcher = member("researcher", researcher_model)
    lead = member("lead", Model())
    lead_authority = authority("lead", lead)
    to_researcher = RemoteMember(
        researcher.spec, "", chain=Chain((lead_authority.middleware,), "lead")
    )

    async def lead_by_calling_the_researcher(
        senior: LocalMember, task: str, chain: tuple[str, ...]
    ) -> WorkResult:
        return await to_researcher.execute(task, (*chain, "researcher"))

    lead.leader = lead_by_calling_the_researcher
    servers = [
        PeerServer(lead, authority=lead_authority),
        PeerServer(
            researcher,
            audit=AuditLog(tmp_path / "default.bees.audit.jsonl"),
            authority=authority("researcher", researcher),
        ),
    ]
    for server in servers:
        await server.start()
    to_researcher.url = f"http://127.0.0.1:{servers[1].port}"
    try:
        yield Pods(
            servers[0],
            servers[1],
            researcher_model,
            to_researcher,
            tmp_path / "default.bees.audit.jsonl",
        )
    finally:
        for server in servers:
            await server.stop()


def root(**changes: Any) -> Certificate:
    cert = team_root(SIGNER, SPEC, TEAM, "lead", time.time(), 600)
    return sign_link(SIGNER, replace(cert.grant, **changes)) if changes else cert


async def post(url: str, wire: str | None) -> httpx.Response:
    headers = {"Authorization": f"{SCHEME} {wire}"} if wire is not None else {}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{url}/v1/tasks", json={"task": "t"}, headers=headers)


async def test_a_delegation_across_two_peers_carries_an_attenuated_certificate(
    pods: Pods,
) -> None:
    response = await post(pods.url(pods.lead), root().wire)
    assert response.status_code == 200, response.text
    assert response.json()["ok"]
    [held] = pods.researcher_model.seen
    assert held is not None
    assert held.authority == ["lead->lead", "lead->researcher"]
    assert held.grant.capabilities == {"research"}
    assert held.grant.budget == 5000
    check = next(r for r in pods.records() if r["action"] == "certificate-check")
    assert check["outcome"] == "allowed"
    assert check["authority"] == ["lead->lead", "lead->researcher"]


async def test_the_senior_presents_a_certificate_it_issues_from_its_own(pods: Pods) -> None:
    authority_ = authority("lead")
    with authority_.holding(root()):
        result = await pods.to_researcher.execute("t", ("lead", "researcher"))
    assert result.ok
    with pytest.raises(ExternalFailure, match=r"refused \(missing\)"):
        await pods.to_researcher.execute("t", ("lead", "researcher"))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda r: delegate(LocalSigner.generate("x"), r, "researcher"), "forged"),
        (
            lambda r: sign_link(
                SIGNER,
                replace(r.grant, subject="researcher", tools=frozenset({"shell"})),
                r,
            ),
            "widened",
        ),
        (
            lambda r: delegate(SIGNER, root(expires=time.time() - 1), "researcher"),
            "expired",
        ),
        (lambda r: delegate(SIGNER, root(team="default/wasps"), "researcher"), "wrong-team"),
        (lambda r: delegate(SIGNER, r, "lead"), "wrong-subject"),
        (lambda r: "garbage", "malformed"),
    ],
)
async def test_a_bad_certificate_gets_403_with_its_reason(
    pods: Pods, make: Any, reason: str
) -> None:
    made = make(root())
    wire = made if isinstance(made, str) else made.wire
    response = await post(pods.url(pods.researcher), wire)
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == reason
    assert f"refused ({reason})" in response.json()["error"]
    assert pods.researcher_model.seen == []
    check = next(r for r in pods.records() if r["action"] == "certificate-check")
    assert check["outcome"] == "refused"
    assert f"refused ({reason})" in check["reason"]


async def test_a_call_without_a_certificate_gets_401(pods: Pods) -> None:
    response = await post(pods.url(pods.researcher), None)
    assert response.status_code == 401
    assert response.json()["reason"] == "missing"
    async with httpx.AsyncClient() as client:
        healthz = await client.get(f"{pods.url(pods.researcher)}/healthz")
    assert healthz.status_code == 200


async def test_without_required_certificates_peers_answer_as_before() -> None:
    researcher = member("researcher", Model())
    server = PeerServer(researcher, authority=authority("researcher", require=False))
    await server.start()
    try:
        assert (await post(f"http://127.0.0.1:{server.port}", None)).status_code == 200
        forged = delegate(LocalSigner.generate("x"), root(), "researcher").wire
        assert (await post(f"http://127.0.0.1:{server.port}", forged)).status_code == 403
    finally:
        await server.stop()


async def test_pods_that_require_certificates_run_a_team_under_the_coordinators_root(
    tmp_path: Path,
) -> None:
    status = MemoryStatus()
    ports = {a["name"]: free_port() for a in AGENTS}
    with scripted_model(SCRIPT) as server:
        paths = write_configs(tmp_path, server.url, ports, AGENTS, "hierarchical")
        model = OpenAICompatible(server.url, "m", max_retries=0)
        pods = {}
        for name, path in paths.items():
            config = PodConfig.load(path, name)
            team = f"{config.namespace}/{config.team}"
            auth = Authority.of_team(
                name, config.spec, team, "lead", SIGNER, SIGNER.keys(), require=True
            )
            pods[name] = AgentPod(
                config,
                model,
                status,
                port=ports[name],
                heartbeat_s=60,
                chain=Chain((auth.middleware,), name),
                authority=auth,
            )
        stop = asyncio.Event()
        tasks = [asyncio.create_task(pod.serve(stop)) for pod in pods.values()]
        await status.until(
            lambda: bool(status.runs) and status.runs[-1].outcome != RunOutcome.RUNNING, 30
        )
        stop.set()
        await asyncio.gather(*tasks)
    assert status.runs[-1].outcome == RunOutcome.SUCCEEDED, status.runs[-1].message
    assert status.runs[-1].delegations == 2
