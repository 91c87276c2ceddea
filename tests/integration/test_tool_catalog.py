"""Catalog tools of kind http against a real HTTP service on loopback: the sample web-search
chain migrated from 1.0 to 1.1 at call time, retries on 429/503 and past the timeout, auth from
a Secret's value, schema checks on both sides, the outcome's metrics, and an agent whose model
sends bad arguments hearing why; a builtin version running the sandboxed code tool, and a
composite whose steps meet the agent's faults."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from hive.api.agentteam import AgentSpec, AgentTeamSpec, RunOutcome
from hive.api.chaos import Fault
from hive.api.toolversion import ToolVersionSpec
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.ports import free_port
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import AimedFault
from hive.runtime.teams.team import Team
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import (
    DEPRECATED_CALLS,
    CallCounts,
    CallOutcome,
    Catalog,
    CatalogEntry,
    publish_to,
)
from hive.runtime.tooling.compose.kind import CompositeKind
from hive.runtime.tooling.compose.run import StepFailed
from hive.runtime.tooling.http import HttpKind
from hive.runtime.tooling.kinds import KindRegistry
from hive.runtime.tools import ToolRegistry
from tests.scripted_model import Script, scripted_model
from tests.tools_servers.http_tool import HttpToolServer, http_tool_server

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parents[2] / "operator/hive/samples/toolversions-web-search.yaml"


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with http_tool_server() as running:
        yield running


def web_search_chain(url: str) -> list[CatalogEntry]:
    """The sample's two versions, pointed at the test service; 1.1 maps its result back."""
    entries = []
    for doc in yaml.safe_load_all(SAMPLE.read_text()):
        spec = doc["spec"]
        spec["implementation"]["ref"] = f"{url}/v{spec['version'][:3]}/search"
        if spec["version"] == "1.1.0":
            spec["migration"]["reverse"] = [{"op": "rename", "field": "items", "to": "results"}]
        parsed = ToolVersionSpec.model_validate(spec)
        entries.append(CatalogEntry(parsed, doc["metadata"]["name"], "sample"))
    return entries


def http_version(tool: str, url: str, **implementation: Any) -> CatalogEntry:
    spec = {
        "tool": tool,
        "version": "1.0.0",
        "inputSchema": {"type": "object"},
        "implementation": {"kind": "http", "ref": url, **implementation},
    }
    return CatalogEntry(ToolVersionSpec.model_validate(spec), f"{tool}-1.0.0", "test")


STRING = {"type": "string"}


def replace_spec(entry: CatalogEntry, **changes: Any) -> CatalogEntry:
    spec = ToolVersionSpec.model_validate({**entry.spec.model_dump(), **changes})
    return CatalogEntry(spec, entry.name, entry.source)


def agent(*tools: dict[str, Any]) -> AgentSpec:
    return AgentSpec.model_validate({"name": "searcher", "role": "specialist", "tools": tools})


async def registry_of(
    catalog: Catalog, spec: AgentSpec, **toolbox_args: Any
) -> tuple[Toolbox, ToolRegistry]:
    kinds = KindRegistry([HttpKind(backoff_s=0.01)])
    toolbox = Toolbox(catalog=catalog, kinds=kinds, **toolbox_args)
    registry = toolbox.for_agent(spec, None)
    await toolbox.started()
    return toolbox, registry


async def call(registry: ToolRegistry, name: str, arguments: dict[str, Any]) -> Any:
    return await registry.call(registry.check(name, arguments), arguments)


async def test_a_caller_written_for_1_0_is_migrated_to_1_1_and_gets_a_1_0_result(
    server: HttpToolServer,
) -> None:
    outcomes: list[CallOutcome] = []
    counts = CallCounts()
    catalog = Catalog(web_search_chain(server.url))
    toolbox, registry = await registry_of(
        catalog,
        agent({"name": "web-search", "version": "^1.0"}),
        counts=counts,
        publish=outcomes.append,
    )
    try:
        (schema,) = registry.schemas()
        assert schema["function"]["parameters"]["required"] == ["q"], "the model sees 1.0"
        result = await call(registry, "web-search", {"q": "bees"})
        assert result == {"results": ["bees #0", "bees #1", "bees #2"], "limit": 10}
        with pytest.raises(InvalidInput, match="q"):
            registry.check("web-search", {"query": "bees"})
    finally:
        await toolbox.close()
    (outcome,) = outcomes
    assert (outcome.version, outcome.written_for, outcome.outcome, outcome.status) == (
        "1.1.0",
        "1.0.0",
        "ok",
        "200",
    )
    assert [(c["tool"], c["version"], c["calls"]) for c in counts.counts()] == [
        ("web-search", "1.1.0", 1)
    ]


async def test_a_pinned_caller_of_1_1_sees_1_1_and_is_not_migrated(server: HttpToolServer) -> None:
    catalog = Catalog(web_search_chain(server.url))
    spec = agent({"name": "web-search", "version": "^1.0", "pinned": "1.1.0"})
    toolbox, registry = await registry_of(catalog, spec)
    try:
        (schema,) = registry.schemas()
        assert schema["function"]["parameters"]["required"] == ["query"]
        result = await call(registry, "web-search", {"query": "wasps", "limit": 1})
        assert result == {"items": ["wasps #0"], "limit": 1}
    finally:
        await toolbox.close()


@pytest.mark.parametrize("status", [429, 503])
async def test_429_and_5xx_are_retried_with_backoff_and_give_up_after_the_retries(
    server: HttpToolServer, status: int
) -> None:
    catalog = Catalog(
        [
            http_version("patient", f"{server.url}/flaky/p{status}?fail=2&status={status}"),
            http_version(
                "impatient", f"{server.url}/flaky/i{status}?fail=9&status={status}", retries=1
            ),
        ]
    )
    toolbox, registry = await registry_of(
        catalog, agent({"name": "patient"}, {"name": "impatient"})
    )
    try:
        assert await call(registry, "patient", {}) == {"attempts": 3}
        with pytest.raises(Unavailable, match=f"answered {status}"):
            await call(registry, "impatient", {})
    finally:
        await toolbox.close()


@pytest.mark.parametrize("how", ["bearer", "header", "query"])
async def test_the_credential_goes_where_auth_says(server: HttpToolServer, how: str) -> None:
    auth = {"type": how, "secretRef": {"name": "search-creds", "key": "token"}}
    catalog = Catalog([http_version("guarded", f"{server.url}/auth/{how}", auth=auth)])

    async def secrets(_: object) -> dict[str, str]:
        return {"search-creds/token": server.token}

    toolbox, registry = await registry_of(catalog, agent({"name": "guarded"}), secrets_for=secrets)
    try:
        assert await call(registry, "guarded", {}) == {"ok": True, "how": how}
    finally:
        await toolbox.close()


async def test_a_wrong_credential_is_an_error_naming_the_tool(server: HttpToolServer) -> None:
    auth = {"type": "bearer", "secretRef": {"name": "search-creds", "key": "token"}}
    catalog = Catalog([http_version("guarded", f"{server.url}/auth/bearer", auth=auth)])

    async def secrets(_: object) -> dict[str, str]:
        return {"search-creds/token": "wrong"}

    toolbox, registry = await registry_of(catalog, agent({"name": "guarded"}), secrets_for=secrets)
    try:
        with pytest.raises(ExternalFailure, match=r"tool guarded 1\.0\.0: .* answered 401"):
            await call(registry, "guarded", {})
    finally:
        await toolbox.close()


async def test_an_answer_that_breaks_the_output_schema_is_refused_with_the_place(
    server: HttpToolServer,
) -> None:
    entry = http_version("strict", f"{server.url}/bad-output")
    spec = entry.spec.model_copy(
        update={
            "output_schema": {
                "type": "object",
                "properties": {"results": {"type": "array"}},
            }
        }
    )
    spec.model_fields_set.add("output_schema")
    catalog = Catalog([CatalogEntry(spec, entry.name, entry.source)])
    toolbox, registry = await registry_of(catalog, agent({"name": "strict"}))
    try:
        with pytest.raises(ExternalFailure, match="breaks its outputSchema at results: "):
            await call(registry, "strict", {})
    finally:
        await toolbox.close()


async def test_a_model_sending_arguments_that_break_the_schema_hears_why_and_recovers(
    server: HttpToolServer,
) -> None:
    team = AgentTeamSpec.model_validate(
        {
            "goal": "search",
            "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
            "agents": [
                {
                    "name": "searcher",
                    "role": "specialist",
                    "tools": [{"name": "web-search", "version": "^1.0"}],
                }
            ],
        }
    )
    script: Script = [
        {"tool_calls": [{"name": "web-search", "arguments": {"query": "bees"}}]},
        {"tool_calls": [{"name": "web-search", "arguments": {"q": "bees"}}]},
        {"content": "done"},
    ]
    catalog = Catalog(web_search_chain(server.url))
    toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([HttpKind()]))
    try:
        with scripted_model(script) as model_server:
            model = OpenAICompatible(model_server.url, "m", max_retries=0)
            registry = toolbox.for_agent(team.agents[0], None)
            await toolbox.started()
            result = await Team.local(team, model, tools=lambda _: registry).run()
            requests = model_server.requests
    finally:
        await toolbox.close()
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    told = [m["content"] for r in requests for m in r["messages"] if m["role"] == "tool"]
    assert "'q' is a required property" in told[0]
    assert json.loads(told[-1])["results"] == ["bees #0", "bees #1", "bees #2"]


async def test_a_deprecated_version_works_and_warns_once_with_an_event_and_a_counter(
    server: HttpToolServer, caplog: pytest.LogCaptureFixture
) -> None:
    entry = http_version("old-search", f"{server.url}/echo")
    spec = entry.spec.model_copy(
        update={
            "deprecation": entry.spec.deprecation.model_copy(
                update={"deprecated": True, "message": "use new-search"}
            )
        }
    )
    catalog = Catalog([CatalogEntry(spec, entry.name, entry.source)])
    bus = EventBus()
    toolbox, registry = await registry_of(
        catalog, agent({"name": "old-search"}), publish=publish_to(bus)
    )
    before = DEPRECATED_CALLS.labels("searcher", "old-search", "1.0.0")._value.get()
    try:
        with caplog.at_level(logging.WARNING, logger="hive.runtime.tooling.catalog"):
            for n in range(3):
                assert await call(registry, "old-search", {"n": n}) == {"n": n}
    finally:
        await toolbox.close()
    warned = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warned == [
        "agent searcher calls tool old-search 1.0.0, which is deprecated: use new-search"
    ]
    events = list(bus.history)
    assert [(e.kind, e.agent) for e in events] == [(EventKind.TOOL_OUTCOME, "searcher")] * 3
    assert {
        k: events[0].data[k] for k in ("tool", "version", "outcome", "status", "deprecated")
    } == {
        "tool": "old-search",
        "version": "1.0.0",
        "outcome": "ok",
        "status": "200",
        "deprecated": True,
    }
    assert events[0].data["latency_s"] > 0
    after = DEPRECATED_CALLS.labels("searcher", "old-search", "1.0.0")._value.get()
    assert after - before == 3


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_call_past_its_timeout_is_tried_again_then_unavailable_and_measured(
    server: HttpToolServer,
) -> None:
    slow = f"{server.url}/slow/sluggish?seconds=30"
    catalog = Catalog(
        [
            http_version("sluggish", slow, timeoutSeconds=0.3, retries=1),
            http_version("prompt", f"{server.url}/echo"),
        ]
    )
    outcomes: list[CallOutcome] = []
    toolbox, registry = await registry_of(
        catalog, agent({"name": "sluggish"}, {"name": "prompt"}), publish=outcomes.append
    )
    late = {"agent": "searcher", "tool": "sluggish", "version": "1.0.0", "outcome": "Unavailable"}
    ok = {"agent": "searcher", "tool": "prompt", "version": "1.0.0", "outcome": "ok"}
    timed = {"tool": "sluggish", "version": "1.0.0"}
    before = (
        sample("hive_tool_calls_total", **late),
        sample("hive_tool_calls_total", **ok),
        sample("hive_tool_call_seconds_count", **timed),
        sample("hive_tool_call_seconds_sum", **timed),
    )
    try:
        with pytest.raises(
            Unavailable,
            match=r"tool sluggish 1\.0\.0: no answer from http://127\.0\.0\.1:\d+"
            r"/slow/sluggish in 0\.3 s",
        ):
            await call(registry, "sluggish", {})
        assert await call(registry, "prompt", {"n": 1}) == {"n": 1}
    finally:
        await toolbox.close()
    async with httpx.AsyncClient() as client:
        arrived = (await client.get(f"{server.url}/calls/sluggish")).json()["calls"]
    assert arrived == 2, "the first attempt and one retry"
    assert [(o.tool, o.outcome, o.status) for o in outcomes] == [
        ("sluggish", "Unavailable", "timeout"),
        ("prompt", "ok", "200"),
    ]
    assert outcomes[0].latency_s >= 0.6, "two attempts of 0.3 s each"
    after = (
        sample("hive_tool_calls_total", **late),
        sample("hive_tool_calls_total", **ok),
        sample("hive_tool_call_seconds_count", **timed),
        sample("hive_tool_call_seconds_sum", **timed),
    )
    assert [a - b for a, b in zip(after[:3], before[:3], strict=True)] == [1, 1, 1]
    assert after[3] - before[3] == pytest.approx(outcomes[0].latency_s)


async def test_an_unreachable_server_is_an_error_naming_the_tool_and_the_url() -> None:
    catalog = Catalog([http_version("nowhere", f"http://127.0.0.1:{free_port()}/x", retries=1)])
    outcomes: list[CallOutcome] = []
    toolbox, registry = await registry_of(
        catalog, agent({"name": "nowhere"}), publish=outcomes.append
    )
    try:
        with pytest.raises(
            Unavailable, match=r"tool nowhere 1\.0\.0: http://127\.0\.0\.1:\d+/x unreachable"
        ):
            await call(registry, "nowhere", {})
    finally:
        await toolbox.close()
    assert [(o.outcome, o.status) for o in outcomes] == [("Unavailable", "unreachable")]


async def test_a_ref_that_is_not_a_url_leaves_the_tool_out_with_the_reason() -> None:
    catalog = Catalog([http_version("odd", "ftp://example/x")])
    toolbox, registry = await registry_of(catalog, agent({"name": "odd"}))
    try:
        with pytest.raises(
            InvalidInput, match=r"implementation\.ref: 'ftp://example/x' is not an http"
        ):
            registry.check("odd", {})
    finally:
        await toolbox.close()


async def test_a_builtin_version_runs_the_sandboxed_code_tool_under_the_tool_s_name() -> None:
    spec = ToolVersionSpec.model_validate(
        {
            "tool": "code",
            "version": "1.0.0",
            "description": "Run Python code.",
            "inputSchema": {
                "type": "object",
                "properties": {"code": {"type": "string"}},
                "required": ["code"],
            },
            "implementation": {"kind": "builtin", "ref": "python"},
        }
    )
    catalog = Catalog([CatalogEntry(spec, "code-1.0.0", "test")])
    outcomes: list[CallOutcome] = []
    toolbox = Toolbox(catalog=catalog, publish=outcomes.append)
    try:
        registry = toolbox.for_agent(agent({"name": "code"}), None)
        await toolbox.started()
        (schema,) = registry.schemas()
        assert schema["function"]["name"] == "code"
        result = await call(registry, "code", {"code": "print(6 * 7)"})
        with pytest.raises(InvalidInput, match="'code' is a required property"):
            registry.check("code", {"source": "print(1)"})
    finally:
        await toolbox.close()
    assert (result["exit_code"], result["stdout"].strip()) == (0, "42")
    assert [(o.tool, o.outcome) for o in outcomes] == [("code", "ok")]


async def test_a_composite_s_steps_pass_the_agent_s_chain_where_faults_meet_them(
    server: HttpToolServer,
) -> None:
    """A fault aimed at the step's tool (not at the composite) fails the step, named in the
    composite's error with its inputs; without it the same graph runs."""
    echo = http_version("echo", f"{server.url}/echo")
    echo = replace_spec(echo, input_schema={"type": "object", "properties": {"text": STRING}})
    relay = ToolVersionSpec.model_validate(
        {
            "tool": "relay",
            "version": "1.0.0",
            "inputSchema": {"type": "object", "properties": {"topic": STRING}},
            "outputSchema": {"type": "object", "properties": {"said": {"type": "object"}}},
            "implementation": {
                "kind": "composite",
                "composite": {"source": "COMPOSITE relay AS\n    echo[text=topic] -> said\n"},
            },
        }
    )
    catalog = Catalog([echo, CatalogEntry(relay, "relay-1.0.0", "test")])
    injector = FaultInjector()
    fault = Fault.model_validate(
        {"type": "error", "target": "tool", "dependency": "echo", "errorMessage": "echo is down"}
    )
    injector.load([AimedFault("exp", 0, fault, frozenset({"searcher"}), None, None, 1)], [])
    kinds = KindRegistry([HttpKind(backoff_s=0.01), CompositeKind()])
    toolbox = Toolbox(catalog=catalog, kinds=kinds, chain=ChainParts(faults=injector).chain(""))
    try:
        registry = toolbox.for_agent(agent({"name": "relay"}), None)
        await toolbox.started()
        with pytest.raises(StepFailed, match="echo is down") as failed:
            await call(registry, "relay", {"topic": "bees"})
        message = str(failed.value)
        assert "tool relay 1.0.0: line 2: step echo@* -> said failed: " in message, message
        assert message.endswith('its inputs: {"text": "bees"}'), message
        injector.load([], [])
        assert await call(registry, "relay", {"topic": "bees"}) == {"said": {"text": "bees"}}
    finally:
        await toolbox.close()
