"""The operator's side of tool versions in use: status.consumers with the calls agents report
within the window, the Deprecated condition naming who still calls, and the refusal to delete
the only version an agent's range allows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hive.api.toolversion import ToolVersionSpec
from hive.reconcile.admission import check_tool_version_delete
from hive.reconcile.agentteam import TeamObserved, plan_team
from hive.reconcile.toolversion import plan_tool
from tests.unit.test_agentteam_reconcile import OWNER, PODS, POLICY, T0, spec

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def version(number: str, previous: str | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tool": "search",
        "version": number,
        "inputSchema": {"type": "object"},
        "implementation": {"kind": "http", "ref": "http://search/"},
        **extra,
    }
    if previous:
        spec["migration"] = {"from": previous}
    return {"metadata": {"name": f"search-{number}", "generation": 2}, "spec": spec}


Calls = dict[str, list[tuple[str, int, dt.datetime]]]


def team(name: str, ranges: dict[str, str], calls: Calls) -> dict[str, Any]:
    agents = [
        {"name": agent, "role": "junior", "tools": [{"name": "search", "version": wanted}]}
        for agent, wanted in ranges.items()
    ]
    entries = [
        {
            "name": agent,
            "toolCalls": [
                {"tool": "search", "version": v, "calls": n, "lastCall": at.isoformat()}
                for v, n, at in made
            ],
        }
        for agent, made in calls.items()
    ]
    return {"metadata": {"name": name}, "spec": {"agents": agents}, "status": {"agents": entries}}


def test_consumers_count_reported_calls_within_the_window() -> None:
    objects = [version("1.0.0"), version("1.1.0", "1.0.0", deprecation={"deprecated": True})]
    teams = [
        team(
            "t",
            {"old": "~1.0.0", "new": "^1.0"},
            {
                "old": [("1.0.0", 7, NOW - dt.timedelta(minutes=5))],
                "new": [("1.1.0", 3, NOW - dt.timedelta(minutes=1))],
                "gone": [("1.0.0", 9, NOW - dt.timedelta(hours=3))],  # outside the window
            },
        )
    ]
    status = plan_tool(objects, teams, NOW, calls_window_s=3600)
    first = {c.agent: (c.selects, c.calls) for c in status["search-1.0.0"].consumers}
    assert first == {"t/old": (True, 7), "t/new": (True, 0)}, "1.1.0 is deprecated"
    counted = status["search-1.0.0"]
    assert (counted.consumer_count, counted.calls) == (2, 7)  # kubectl get tv's columns
    second = status["search-1.1.0"].consumers
    assert [(c.agent, c.selects, c.calls) for c in second] == [("t/new", False, 3)]
    deprecated = {c.type: c for c in status["search-1.1.0"].conditions}["Deprecated"]
    assert (deprecated.status, deprecated.reason) == ("True", "StillCalled")
    assert "still called by t/new (3 calls)" in deprecated.message
    current = {c.type: c for c in status["search-1.0.0"].conditions}["Deprecated"]
    assert current.status == "False"


def test_deleting_the_only_version_a_range_allows_is_refused_naming_the_agent() -> None:
    objects = [version("1.0.0"), version("1.1.0", "1.0.0"), version("2.0.0", "1.1.0")]
    teams = [team("t", {"pinned-old": "~1.0.0", "any-one": "^1.0"}, {})]
    refused = check_tool_version_delete(objects[0], objects, teams)
    assert refused is not None
    assert "search-1.0.0 (search 1.0.0)" in refused
    assert "t/pinned-old ('~1.0.0')" in refused
    assert "any-one" not in refused, "1.1.0 still matches ^1.0"
    assert check_tool_version_delete(objects[1], objects, teams) is None
    assert check_tool_version_delete(objects[2], objects, teams) is None


def test_an_agent_may_read_only_the_secrets_its_tools_name() -> None:
    team_spec = spec()
    team_spec["agents"][0]["tools"] = [{"name": "search"}]
    observed = TeamObserved(
        sandbox_policies={"strict": POLICY},
        tool_secrets={"search": ["search-creds"], "other": ["not-this-one"]},
    )
    plan = plan_team(OWNER, team_spec, None, observed, PODS, T0)
    roles = {c["metadata"]["name"]: c["rules"] for c in plan.children if c["kind"] == "Role"}
    first = team_spec["agents"][0]["name"]
    secret_rules = [r for r in roles[f"research-{first}"] if r["resources"] == ["secrets"]]
    assert secret_rules == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["search-creds"],
            "verbs": ["get"],
        }
    ]
    others = [name for name in roles if name != f"research-{first}"]
    assert all(not any(r["resources"] == ["secrets"] for r in roles[n]) for n in others)


def test_an_agent_may_read_only_the_config_maps_its_tools_documents_are_in() -> None:
    team_spec = spec()
    team_spec["agents"][0]["tools"] = [{"name": "shelter"}]
    observed = TeamObserved(
        sandbox_policies={"strict": POLICY},
        tool_config_maps={"shelter": ["shelter-openapi"], "other": ["not-this-one"]},
    )
    plan = plan_team(OWNER, team_spec, None, observed, PODS, T0)
    roles = {c["metadata"]["name"]: c["rules"] for c in plan.children if c["kind"] == "Role"}
    first = team_spec["agents"][0]["name"]
    document_rules = [r for r in roles[f"research-{first}"] if r["resources"] == ["configmaps"]]
    assert document_rules == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["shelter-openapi"],
            "verbs": ["get"],
        }
    ]
    others = [name for name in roles if name != f"research-{first}"]
    assert all(not any(r["resources"] == ["configmaps"] for r in roles[n]) for n in others)


def test_a_version_names_the_config_map_of_its_document() -> None:
    source = {"configMapRef": {"name": "shelter-openapi", "key": "openapi.yaml"}}
    version = ToolVersionSpec.model_validate(
        {
            "tool": "shelter",
            "version": "1.0.0",
            "implementation": {"kind": "openapi", "openapi": source},
        }
    )
    assert version.config_map_names() == ["shelter-openapi"]
    inline = ToolVersionSpec.model_validate(
        {"tool": "s", "version": "1.0.0", "implementation": {"kind": "http", "ref": "http://x"}}
    )
    assert inline.config_map_names() == []


def test_an_agent_may_reach_the_ports_of_its_tools_endpoints() -> None:
    team_spec = spec()
    team_spec["agents"][0]["tools"] = [{"name": "shelter"}]
    observed = TeamObserved(
        sandbox_policies={"strict": POLICY}, tool_ports={"shelter": [8443], "other": [9999]}
    )
    plan = plan_team(OWNER, team_spec, None, observed, PODS, T0)
    policies = {c["metadata"]["name"]: c for c in plan.children if c["kind"] == "NetworkPolicy"}
    first = team_spec["agents"][0]["name"]

    def ports(name: str) -> set[int]:
        rules = policies[name]["spec"]["egress"]
        return {p["port"] for r in rules if "to" not in r for p in r.get("ports", [])}

    assert 8443 in ports(f"research-{first}")
    assert 9999 not in ports(f"research-{first}")
    others = [name for name in policies if name != f"research-{first}"]
    assert all(8443 not in ports(n) for n in others)


def test_a_version_names_the_ports_of_its_endpoints() -> None:
    def ports(implementation: dict[str, Any]) -> list[int]:
        spec = {"tool": "t", "version": "1.0.0", "implementation": implementation}
        return ToolVersionSpec.model_validate(spec).endpoint_ports()

    assert ports({"kind": "http", "ref": "http://search:8080/v1"}) == [8080]
    assert ports({"kind": "http", "ref": "https://search/v1"}) == [443]
    assert ports({"kind": "mcp", "mcp": {"url": "http://calc/mcp"}}) == [80]
    assert ports({"kind": "mcp", "mcp": {"command": "calc"}}) == []
    openapi = {"url": "http://docs:9000/openapi.json", "server": "https://api:8443"}
    assert ports({"kind": "openapi", "openapi": openapi}) == [8443, 9000]
    assert ports({"kind": "builtin", "ref": "python"}) == []
