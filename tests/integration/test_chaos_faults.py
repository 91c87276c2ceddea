"""Faults reach the agents: the real model client, tools, peers and sandbox tool meet them.

Each test runs the real runtime (OpenAICompatible against the scripted model server on
loopback, a RemoteMember against a peer API, ``hive run``) with the faults middleware in its
chain, and checks that the caller sees what the fault claims to be.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel

from hive.api.agentteam import AgentSpec, RunOutcome
from hive.api.chaos import Fault
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.models import InvalidModelOutput, OpenAICompatible
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.faultfiles import FaultFolder
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import AimedFault
from hive.runtime.sandbox.limits import SandboxLimits
from hive.runtime.sandbox.result import ExecutionResult
from hive.runtime.sandbox.tool import run_python_tool
from hive.runtime.teams.peers import RemoteMember
from hive.runtime.tools import Tool, ToolRegistry
from tests.scripted_model import scripted_model

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def injector_with(*faults: dict[str, Any], agents: tuple[str, ...] = ("writer",)) -> FaultInjector:
    injector = FaultInjector()
    injector.load(
        [
            AimedFault("exp", i, Fault.model_validate(f), frozenset(agents), None, None, 1)
            for i, f in enumerate(faults)
        ],
        [],
    )
    return injector


def model_at(url: str, injector: FaultInjector) -> OpenAICompatible:
    plain = OpenAICompatible(url, "scripted", max_retries=0)
    return replace(plain, chain=ChainParts(faults=injector).chain("")).for_agent("writer")


async def test_model_latency_is_seen_by_the_client() -> None:
    with scripted_model([{"content": "late"}, {"content": "on time"}]) as server:
        model = model_at(server.url, injector_with({"type": "latency", "latencyMs": 300}))
        started = time.perf_counter()
        reply = await model.complete([{"role": "user", "content": "hi"}])
        took = time.perf_counter() - started
        assert reply.content == "late"
        assert took >= 0.3, took
        bystander = replace(model, user="lead", chain=model.chain.with_agent("lead"))
        started = time.perf_counter()
        await bystander.complete([{"role": "user", "content": "hi"}])
        assert time.perf_counter() - started < 0.3


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, Unavailable), (429, Unavailable), (404, InvalidInput), (401, InvalidInput)],
)
async def test_a_model_error_is_the_error_the_client_raises_for_its_status(
    status: int, error: type[Exception]
) -> None:
    with scripted_model([]) as server:
        model = model_at(server.url, injector_with({"type": "error", "httpStatus": status}))
        with pytest.raises(error):
            await model.complete([{"role": "user", "content": "hi"}])
        assert server.requests == []  # the fault stood in for the server
    # the real server answering that status makes the client raise the same
    with scripted_model([{"status": status}]) as server, pytest.raises(error):
        await model_at(server.url, FaultInjector()).complete([{"role": "user", "content": "x"}])


async def test_a_model_error_without_a_status_is_a_server_error_with_its_message() -> None:
    with scripted_model([]) as server:
        injector = injector_with({"type": "error", "httpStatus": 400, "errorMessage": "bad day"})
        with pytest.raises(ExternalFailure, match="HTTP 400: bad day"):
            await model_at(server.url, injector).complete([{"role": "user", "content": "hi"}])


async def test_a_model_timeout_waits_then_fails_as_no_answer() -> None:
    with scripted_model([]) as server:
        model = model_at(server.url, injector_with({"type": "timeout", "latencyMs": 200}))
        started = time.perf_counter()
        with pytest.raises(Unavailable, match="no answer"):
            await model.complete([{"role": "user", "content": "hi"}])
        assert time.perf_counter() - started >= 0.2


async def test_an_empty_answer_reaches_the_client() -> None:
    with scripted_model([{"content": "full"}]) as server:
        model = model_at(server.url, injector_with({"type": "empty-answer"}))
        reply = await model.complete([{"role": "user", "content": "hi"}])
        assert reply.content == ""
        assert reply.tool_calls == []


class Verdict(BaseModel):
    score: float


async def test_malformed_json_takes_the_structured_output_repair_path() -> None:
    answers = [{"json": {"score": 0.5}}] * 3
    with scripted_model(answers) as server:
        model = model_at(server.url, injector_with({"type": "malformed-json"}))
        with pytest.raises(InvalidModelOutput, match="no valid Verdict after 3 answers"):
            await model.structured([{"role": "user", "content": "score it"}], Verdict, repairs=2)
        assert len(server.requests) == 3
        repair = server.requests[1]["messages"][-1]["content"]
        assert repair.startswith("That was not valid")
    half = [{"json": {"score": 0.5}}] * 40
    with scripted_model(half) as server:  # at 50%, repairs get valid answers through
        model = model_at(server.url, injector_with({"type": "malformed-json", "probability": 0.5}))
        for _ in range(5):
            verdict = await model.structured([{"role": "user", "content": "x"}], Verdict, repairs=8)
            assert verdict.score == 0.5


async def test_a_squeezed_token_budget_cuts_the_answer() -> None:
    with scripted_model([{"content": "one two three four five six"}]) as server:
        injector = injector_with({"type": "resource", "resource": "tokens", "maxTokens": 2})
        reply = await model_at(server.url, injector).complete([{"role": "user", "content": "x"}])
        assert reply.content == "one two"
        assert reply.finish_reason == "length"


async def test_tool_faults_delay_and_fail_tool_calls() -> None:
    calls: list[str] = []

    async def search(query: str) -> str:
        calls.append(query)
        return "found"

    tool = Tool("search", "Search.", {"type": "object"}, search)
    injector = injector_with(
        {"type": "latency", "target": "tool", "latencyMs": 200},
        {"type": "error", "target": "tool", "dependency": "search", "errorMessage": "index gone"},
    )
    registry = ToolRegistry.of([tool])
    registry.chain = ChainParts(faults=injector).chain("writer")
    started = time.perf_counter()
    with pytest.raises(Unavailable, match="tool 'search': HTTP 500: index gone"):
        await registry.call(tool, {"query": "q"})
    assert time.perf_counter() - started >= 0.2
    assert calls == []
    injector.load(injector.faults[:1], [])  # latency only: the call goes through, late
    assert await registry.call(tool, {"query": "q"}) == "found"
    assert calls == ["q"]


class SlowRunner:
    limits = SandboxLimits()

    def __init__(self) -> None:
        self.cancelled = False

    async def execute(self, code: str, limits: SandboxLimits | None = None) -> ExecutionResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ExecutionResult("done", "", 0, None, 30, 30, 0)


async def test_a_sandbox_kill_ends_the_running_execution_as_killed() -> None:
    runner = SlowRunner()
    injector = injector_with({"type": "sandbox-kill", "latencyMs": 100})
    tool = run_python_tool(runner, chain=ChainParts(faults=injector).chain("writer"))
    started = time.perf_counter()
    result = await tool.function(code="while True: pass")
    assert time.perf_counter() - started < 5
    assert runner.cancelled
    assert result["ok"] is False
    assert result["signal"] == 9
    assert "killed" in result["message"]


@pytest.fixture
async def peer() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def tasks(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"agent": "lead", "output": "done", "ok": True})

    app = web.Application()
    app.router.add_post("/v1/tasks", tasks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


async def test_a_partition_makes_calls_to_a_cut_off_peer_fail_as_unreachable(
    peer: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = peer
    lead = AgentSpec.model_validate({"name": "lead", "role": "senior"})
    injector = injector_with({"type": "network-partition"}, agents=("lead",))
    from_writer = RemoteMember(lead, url, chain=ChainParts(faults=injector).chain("writer"))
    with pytest.raises(Unavailable, match="agent lead: unreachable \\(network partition"):
        await from_writer.execute("write")
    assert seen == []
    injector.load([], [])  # the partition is lifted
    assert (await from_writer.execute("write")).output == "done"
    assert len(seen) == 1


async def test_a_changed_fault_file_is_in_force_within_2_seconds(tmp_path: Path) -> None:
    """The folder is updated the way Kubernetes updates a mounted ConfigMap: the files are
    links through ``..data``, a link to a timestamped folder that is swapped atomically."""

    def publish(files: dict[str, str], version: int) -> None:
        data = tmp_path / f"..v{version}"
        data.mkdir()
        for name, text in files.items():
            (data / name).write_text(text)
            link = tmp_path / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        staging = tmp_path / "..data_tmp"
        staging.symlink_to(data.name)
        os.replace(staging, tmp_path / "..data")

    publish({}, 0)
    injector = FaultInjector()
    folder = FaultFolder(tmp_path, injector, ["writer"])
    stop = asyncio.Event()
    watching = asyncio.create_task(folder.run(stop))
    try:
        await asyncio.sleep(0.1)
        assert injector.faults == ()
        text = {"experiment": "exp", "agents": ["writer"], "faults": [{"type": "empty-answer"}]}
        publish({"exp.json": json.dumps(text)}, 1)
        changed = time.perf_counter()
        while not injector.faults:
            assert time.perf_counter() - changed < 2, "the change was not seen within 2 s"
            await asyncio.sleep(0.02)
        took = time.perf_counter() - changed
        print(f"fault file change in force after {took:.3f} s")
        with scripted_model([{"content": "full"}]) as server:
            reply = await model_at(server.url, injector).complete([{"role": "user", "content": ""}])
            assert reply.content == ""
        publish({"exp.json": json.dumps({**text, "faults": []})}, 2)
        changed = time.perf_counter()
        while injector.faults:
            assert time.perf_counter() - changed < 2, "the removal was not seen within 2 s"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await watching


def test_hive_run_with_chaos_changes_the_runs_outcome(tmp_path: Path) -> None:
    proposals = {
        name: [
            {"json": {"proposal": f"Go, says {name}", "rationale": "one static binary"}},
            {"json": {"votes": [{"proposal": 1, "vote": "accept", "reason": "fine"}]}},
        ]
        * 3
        for name in ("pragmatist", "purist", "operator")
    }
    experiment = tmp_path / "chaos.yaml"
    experiment.write_text(
        "apiVersion: hive.dev/v1alpha1\nkind: ChaosExperiment\nmetadata: {name: outage}\n"
        "spec:\n  selector: {team: choose, mode: all}\n  duration: 5m\n  seed: 3\n"
        "  faults:\n  - {type: error, target: llm, httpStatus: 503}\n"
    )

    def run(*extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        report = tmp_path / "report.json"
        with scripted_model(proposals) as server:
            result = subprocess.run(
                [
                    *(sys.executable, "-m", "hive", "run", str(EXAMPLES / "negotiation.yaml")),
                    *("--endpoint", server.url, "--no-live", "--report", str(report), *extra),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert "Traceback" not in result.stderr, result.stderr
        return result, json.loads(report.read_text())

    calm, calm_report = run()
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert calm_report["outcome"] == "Succeeded"
    stormy, stormy_report = run("--chaos", str(experiment))
    assert stormy.returncode != 0
    assert stormy_report["outcome"] != "Succeeded"
    assert "HTTP 503" in json.dumps(stormy_report)
    for agent in ("pragmatist", "purist", "operator"):
        assert f"error fault(s) in {agent}'s calls" in stormy.stdout, stormy.stdout


async def test_agent_pods_report_their_injections_and_skipped_faults_in_their_entries(
    tmp_path: Path,
) -> None:
    from hive.cli.agent import watch_faults
    from hive.runtime.pod import AgentPod, PodConfig
    from tests.integration.test_pods import AGENTS, SCRIPT, MemoryStatus, write_configs
    from tests.support import free_port

    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "slow-writer.json").write_text(
        json.dumps(
            {
                "experiment": "slow-writer",
                "agents": ["writer"],
                "faults": [{"type": "latency", "latencyMs": 50}, {"type": "meteor"}],
            }
        )
    )
    status = MemoryStatus()
    ports = {a["name"]: free_port() for a in AGENTS}
    stop = asyncio.Event()
    with scripted_model(SCRIPT) as server:
        paths = write_configs(tmp_path, server.url, ports)
        model = OpenAICompatible(server.url, "m", max_retries=0)
        serving, watching = [], []
        for name, path in paths.items():
            config = replace(PodConfig.load(path, name), faults_path=faults)
            injector = FaultInjector()
            chain = ChainParts(faults=injector).chain(name)
            pod = AgentPod(
                config, replace(model, chain=chain), status, port=ports[name], chain=chain
            )
            watching.append(watch_faults(config, name, injector, pod, stop))
            serving.append(asyncio.create_task(pod.serve(stop)))
        await status.until(
            lambda: bool(status.runs) and status.runs[-1].outcome != RunOutcome.RUNNING, 30
        )
        stop.set()
        await asyncio.gather(*serving, *(w for w in watching if w is not None))
    assert status.runs[-1].outcome == RunOutcome.SUCCEEDED
    writer = status.entries["writer"]
    assert [(f.experiment, f.type, f.count) for f in writer.faults] == [
        ("slow-writer", "latency", 1)
    ]
    assert status.entries["lead"].faults == []
    for entry in status.entries.values():
        assert [p.experiment for p in entry.fault_problems] == ["slow-writer"]
        assert "faults[1]" in entry.fault_problems[0].message
