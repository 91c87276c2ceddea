"""The model gateway served as its own process (`hive gateway serve`) in front of model
servers that are processes too: one failing (HTTP 503), one slow, one quick; a real HTTP
client calls it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.gateway_models import ROOT, ModelProcess, model_process

pytestmark = pytest.mark.integration

BREAKER = {
    "failureRateThreshold": 0.5,
    "windowSize": 2,
    "minimumCalls": 2,
    "openDurationSeconds": 120,
}


def route(name: str, server: ModelProcess, model: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "endpoint": server.url, "model": model, **extra}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ModelProcess]]:
    with (
        model_process("failing", status=503) as failing,
        model_process("slow", delay=0.3) as slow,
        model_process("quick") as quick,
        model_process("busy", status=429) as busy,
    ):
        yield {"failing": failing, "slow": slow, "quick": quick, "busy": busy}


@pytest.fixture(scope="module")
def gateway(
    servers: dict[str, ModelProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    failing, slow, quick = servers["failing"], servers["slow"], servers["quick"]
    teams = {
        "busy": {
            "model": "m",
            "gateway": {
                "routes": [
                    route("busy", servers["busy"], "busy-busy"),
                    route("quick", quick, "busy-quick", priority=1),
                ]
            },
        },
        "fallback": {
            "model": "m",
            "breaker": BREAKER,
            "gateway": {
                "routes": [
                    route("failing", failing, "fallback-failing", priority=0),
                    route("slow", slow, "fallback-slow", priority=1),
                ]
            },
        },
        "latency": {
            "model": "m",
            "gateway": {
                "strategy": "least-latency",
                "routes": [
                    route("slow", slow, "latency-slow"),
                    route("quick", quick, "latency-quick"),
                ],
            },
        },
        "limited": {
            "model": "m",
            "gateway": {
                "routes": [
                    route(
                        "quick",
                        quick,
                        "limited-quick",
                        limits={"requestsPerMinute": 600, "burstSeconds": 0.5},
                    )
                ]
            },
        },
        "budget": {
            "model": "m",
            "gateway": {
                "spendLimit": 10,
                "routes": [
                    route(
                        "quick",
                        quick,
                        "budget-quick",
                        promptCostPer1k=1000,
                        completionCostPer1k=1000,
                    )
                ],
            },
        },
        "services": {
            "model": "m",
            "gateway": {
                "routes": [route("quick", quick, "services-quick", services=["chat", "embeddings"])]
            },
        },
    }
    config = tmp_path_factory.mktemp("gateway") / "gateway.json"
    config.write_text(json.dumps({"teams": teams}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hive",
            "gateway",
            "serve",
            str(config),
            "--port",
            "0",
            "--max-wait",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), "the gateway did not start"
        yield url.removesuffix("/v1")
    finally:
        process.terminate()
        process.wait(10)


def chat(base: str, team: str, text: str = "hello", **extra: Any) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "user": "alice", **extra}
    return httpx.post(f"{base}/teams/{team}/v1/chat/completions", json=body, timeout=60)


def arrivals(server: ModelProcess, model: str) -> list[float]:
    return sorted(a["at"] for a in server.arrivals() if a["model"] == model)


def test_a_failing_route_falls_back_and_cools_down(
    gateway: str, servers: dict[str, ModelProcess]
) -> None:
    for _ in range(5):
        answer = chat(gateway, "fallback")
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Hive-Route"] == "slow"
        assert "route;dur=" in answer.headers["Server-Timing"]
        assert answer.json()["choices"][0]["message"]["content"].startswith("slow:")
    # two failures open the failing route's breaker: the next calls go to the slow route only
    assert len(arrivals(servers["failing"], "fallback-failing")) == 2
    assert len(arrivals(servers["slow"], "fallback-slow")) == 5


def test_a_429_cools_the_route_down_at_once(gateway: str, servers: dict[str, ModelProcess]) -> None:
    for _ in range(3):
        answer = chat(gateway, "busy")
        assert answer.status_code == 200
        assert answer.headers["X-Hive-Route"] == "quick"
    # one 429 is enough: the route gets nothing more within its Retry-After (120 s)
    assert len(arrivals(servers["busy"], "busy-busy")) == 1


def test_least_latency_picks_the_quicker_route_once_both_are_measured(gateway: str) -> None:
    routes = [chat(gateway, "latency").headers["X-Hive-Route"] for _ in range(6)]
    assert set(routes[:2]) == {"slow", "quick"}  # each unmeasured route is tried once
    assert routes[2:] == ["quick"] * 4


def test_the_rate_limit_holds_over_every_window(
    gateway: str, servers: dict[str, ModelProcess]
) -> None:
    # 600 requests per minute (10/s), a bucket of half a second (5): 30 calls at once
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda i: chat(gateway, "limited", f"call {i}"), range(30)))
    assert [a.status_code for a in answers] == [200] * 30
    times = arrivals(servers["quick"], "limited-quick")
    assert len(times) == 30
    for i, start in enumerate(times):  # any one second holds at most 5 + 10 (+1 for rounding)
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 16
    assert times[-1] - times[0] >= (30 - 5) / 10 * 0.9  # the bucket refills at 10/s


def test_the_spend_limit_refuses_a_call_before_it_is_sent(
    gateway: str, servers: dict[str, ModelProcess]
) -> None:
    assert chat(gateway, "budget").status_code == 200  # 15 tokens at 1 per token: spent 15
    refused = chat(gateway, "budget")
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded"
    assert "spec.model.gateway.spendLimit" in error["message"]
    assert "team budget has spent 15 of its limit 10" in error["message"]
    assert len(arrivals(servers["quick"], "budget-quick")) == 1
    usage = httpx.get(f"{gateway}/teams/budget/usage", timeout=10).json()
    assert usage["spent"] == 15
    assert usage["rows"][0]["agent"] == "alice"
    assert usage["rows"][0]["route"] == "quick"
    metrics = httpx.get(f"{gateway}/metrics", timeout=10).text
    assert 'hive_gateway_budget_refusals_total{team="budget"} 1.0' in metrics


def test_embeddings_presets_models_and_metrics(gateway: str) -> None:
    body = {"model": "m", "input": ["one", "three"]}
    vectors = httpx.post(f"{gateway}/teams/services/v1/embeddings", json=body, timeout=30)
    assert vectors.status_code == 200, vectors.text
    assert [d["embedding"][0] for d in vectors.json()["data"]] == [3.0, 5.0]
    translated = chat(gateway, "services", "bonjour", model="translate:German")
    assert translated.status_code == 200
    streamed = chat(gateway, "services", "piece by piece", stream=True)
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    assert streamed.headers["Transfer-Encoding"] == "chunked"  # passed on as it comes
    assert "piece by piece" in streamed.text
    usage = httpx.get(f"{gateway}/teams/services/usage", timeout=10).json()
    # embeddings 3, the translation 10, the stream 10 (read from its usage chunk)
    assert sum(r["promptTokens"] for r in usage["rows"]) == 23
    ids = [m["id"] for m in httpx.get(f"{gateway}/teams/services/v1/models").json()["data"]]
    assert ids[0] == "m"
    assert "summarize" in ids
    image = [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    vision = httpx.post(
        f"{gateway}/teams/services/v1/chat/completions",
        timeout=30,
        json={"model": "m", "messages": [{"role": "user", "content": image}]},
    )
    assert vision.status_code == 400
    assert "no route that serves vision" in vision.json()["error"]["message"]
    metrics = httpx.get(f"{gateway}/metrics", timeout=10).text
    assert (
        'hive_gateway_requests_total{agent="alice",model="translate:German",outcome="ok",'
        'route="quick",team="services"} 1.0' in metrics
    )


def test_one_team_per_path(gateway: str) -> None:
    answer = httpx.post(f"{gateway}/v1/chat/completions", json={"messages": []}, timeout=10)
    assert answer.status_code == 400
    assert "/teams/<team>/v1" in answer.json()["error"]["message"]
    assert (
        httpx.post(f"{gateway}/teams/nobody/v1/chat/completions", json={}, timeout=10).status_code
        == 400
    )


async def test_a_run_without_a_gateway_process_takes_the_routes_through_its_chain(
    servers: dict[str, ModelProcess],
) -> None:
    from hive.api.agentteam import AgentTeamSpec
    from hive.runtime.gateway.middleware import routed_calls
    from hive.runtime.models import OpenAICompatible
    from hive.runtime.resilience.chain import ChainParts

    spec = AgentTeamSpec.model_validate(
        {
            "goal": "answer",
            "model": {
                "name": "m",
                "gateway": {
                    "routes": [
                        route("failing", servers["failing"], "chain-failing"),
                        route("quick", servers["quick"], "chain-quick", priority=1),
                    ]
                },
            },
            "agents": [{"name": "lead", "role": "senior"}],
        }
    )
    routing = routed_calls("run", spec, max_wait_s=5)
    assert routing is not None
    model = OpenAICompatible(
        "http://127.0.0.1:9/v1", "m", chain=ChainParts(routing=routing).chain("lead")
    )
    reply = await model.complete([{"role": "user", "content": "hi"}])
    assert reply.content == "quick: hi"
    assert reply.prompt_tokens == 10
    assert len(arrivals(servers["failing"], "chain-failing")) == 1
    assert routing.router.ledger.rows[("lead", "m", "quick")].requests == 1


async def test_a_run_sends_a_routes_key_from_its_setting() -> None:
    """`hive run` has no Secret to read: a route's key comes from
    HIVE_GATEWAY__ROUTE_KEYS__<route>, and a route without one is named before any call."""
    from pydantic import SecretStr

    from hive.api.agentteam import AgentTeamSpec
    from hive.errors import InvalidInput
    from hive.runtime.gateway.middleware import routed_calls
    from hive.runtime.models import OpenAICompatible
    from hive.runtime.resilience.chain import ChainParts

    with model_process("keyed", api_key="sk-local") as server:
        spec = AgentTeamSpec.model_validate(
            {
                "goal": "answer",
                "model": {
                    "name": "m",
                    "gateway": {
                        "routes": [route("keyed", server, "keyed", secretRef={"name": "keyed-key"})]
                    },
                },
                "agents": [{"name": "lead", "role": "senior"}],
            }
        )
        with pytest.raises(InvalidInput) as missing:
            routed_calls("run", spec, max_wait_s=5, keys={})
        assert missing.value.field == "spec.model.gateway.routes[0].secretRef"
        assert "HIVE_GATEWAY__ROUTE_KEYS__KEYED" in missing.value.problem
        routing = routed_calls("run", spec, max_wait_s=5, keys={"keyed": SecretStr("sk-local")})
        assert routing is not None
        model = OpenAICompatible(
            "http://127.0.0.1:9/v1", "m", chain=ChainParts(routing=routing).chain("lead")
        )
        reply = await model.complete([{"role": "user", "content": "hi"}])
        assert reply.content == "keyed: hi"
        assert server.refused() == []
