"""ToolVersion chains and SandboxPolicy checks, against brute force where it exists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.reconcile.admission import check_tool_version, tool_version_warnings
from hive.reconcile.sandboxpolicy import quantity, verify
from hive.reconcile.toolversion import plan_tool

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def tool(version: str, source: str | None = None, deprecated: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tool": "search",
        "version": version,
        "inputSchema": {"type": "object"},
        "implementation": {"kind": "builtin", "ref": "search"},
        "deprecation": {"deprecated": deprecated},
    }
    if source:
        spec["migration"] = {
            "from": source,
            "steps": [{"op": "rename", "field": "q", "to": "query"}],
        }
    return {"metadata": {"name": f"search-{version}", "generation": 1}, "spec": spec}


def team(range_: str) -> dict[str, Any]:
    agent = {"name": "dev", "role": "junior", "tools": [{"name": "search", "version": range_}]}
    return {"metadata": {"name": "t"}, "spec": {"agents": [agent]}}


def test_chain_latest_and_consumers() -> None:
    objs = [
        tool("1.0.0"),
        tool("1.1.0", "1.0.0"),
        tool("2.0.0", "1.1.0"),
        tool("2.1.0-rc.1", "2.0.0"),
    ]
    status = plan_tool(objs, [team("^1.0"), team(">=2.0.0 <3")], T0)
    assert status["search-2.0.0"].latest is True, "a pre-release is never the latest"
    assert status["search-2.0.0"].migration_path == ["1.0.0", "1.1.0", "2.0.0"]
    assert [c.agent for c in status["search-1.1.0"].consumers] == ["t/dev"]
    assert [c.agent for c in status["search-2.0.0"].consumers] == ["t/dev"]
    assert all(s.migration_path_valid for s in status.values())


def test_deprecated_versions_are_not_chosen_by_ranges() -> None:
    status = plan_tool([tool("1.0.0"), tool("1.1.0", "1.0.0", deprecated=True)], [team("^1")], T0)
    assert [c.agent for c in status["search-1.0.0"].consumers] == ["t/dev"]
    assert status["search-1.1.0"].consumers == []
    assert status["search-1.1.0"].deprecated is True


def test_missing_and_skipping_migrations_break_the_chain() -> None:
    status = plan_tool([tool("1.0.0"), tool("1.1.0"), tool("1.2.0", "1.0.0")], [], T0)
    ready = {n: s.conditions[0] for n, s in status.items()}
    assert ready["search-1.1.0"].message == "1.1.0 has no spec.migration, but 1.0.0 is older"
    assert ready["search-1.2.0"].message == "1.2.0: spec.migration.from 1.0.0 skips 1.1.0"
    assert ready["search-1.0.0"].status == "True"


def test_a_migration_from_a_missing_version_breaks_the_chain_even_on_the_oldest() -> None:
    status = plan_tool([tool("1.1.0", "1.0.0"), tool("1.2.0", "1.1.0")], [], T0)
    for name in ("search-1.1.0", "search-1.2.0"):
        ready = status[name].conditions[0]
        assert (ready.status, ready.reason) == ("False", "MigrationChainBroken")
        assert ready.message == (
            "1.1.0: spec.migration.from 1.0.0 does not exist (versions: 1.1.0, 1.2.0)"
        )
        assert status[name].migration_path_valid is False
    assert status["search-1.2.0"].migration_path == ["1.1.0", "1.2.0"]


def test_a_migration_from_a_newer_version_breaks_the_chain() -> None:
    status = plan_tool([tool("1.0.0", "1.1.0"), tool("1.1.0", "1.0.0")], [], T0)
    ready = status["search-1.0.0"].conditions[0]
    assert ready.message == "1.0.0: spec.migration.from 1.1.0 is not older than 1.0.0"
    assert status["search-1.1.0"].migration_path_valid is False


def test_admission_refuses_holes_and_warns_of_migrations_from_nowhere() -> None:
    siblings = [tool("1.0.0"), tool("1.1.0", "1.0.0")]
    hole = check_tool_version(tool("1.2.0", "1.0.0")["spec"], siblings, "search-1.2.0")
    assert hole == "spec.migration.from: 1.0.0 skips 1.1.0 (a hole in the chain)"
    later = tool("3.0.0", "2.0.0")["spec"]
    assert check_tool_version(later, siblings, "search-3.0.0") is None, "2.0.0 may come next"
    assert tool_version_warnings(later, siblings, "search-3.0.0") == [
        "spec.migration.from: search 2.0.0 does not exist (versions: 1.0.0, 1.1.0); this "
        "version stays Ready=False (MigrationChainBroken) until 2.0.0 is applied"
    ]
    first = tool("2.0.0", "1.0.0")["spec"]
    assert check_tool_version(first, [], "search-2.0.0") is None
    assert tool_version_warnings(first, [], "search-2.0.0") == [
        "spec.migration.from: search 1.0.0 does not exist (no other version of search "
        "exists); this version stays Ready=False (MigrationChainBroken) until 1.0.0 is applied"
    ]
    own = tool("1.1.0", "1.0.0")["spec"]
    assert check_tool_version(own, siblings, "search-1.1.0") is None
    assert tool_version_warnings(own, siblings, "search-1.1.0") == []
    assert tool_version_warnings(tool("1.0.0")["spec"], [], "search-1.0.0") == []


def test_quantities() -> None:
    assert quantity("250m") == 0.25
    assert quantity("256Mi") == 256 * 2**20
    assert quantity("1G") == 10**9
    assert quantity("2") == 2


modules = st.lists(
    st.sampled_from(["os", "os.path", "json", "socket", "re", "re.sub"]), max_size=4, unique=True
)


@settings(max_examples=80, deadline=None)
@given(modules, modules)
def test_a_conflict_is_found_exactly_when_some_module_is_both_allowed_and_denied(
    allow: list[str], deny: list[str]
) -> None:
    policy = SandboxPolicySpec.model_validate({"modules": {"allow": allow, "deny": deny}})
    names = {m for entry in allow + deny for m in (entry, f"{entry}.sub")}

    def covered(entries: list[str], module: str) -> bool:
        return any(module == e or module.startswith(e + ".") for e in entries)

    conflict = any(covered(allow, m) and covered(deny, m) for m in names)
    proof = verify(policy)
    assert proof.holds is not conflict, proof.message


def test_the_message_says_what_was_checked_in_plain_words() -> None:
    ok = verify(SandboxPolicySpec.model_validate({"limits": {"cpuSeconds": 5, "memory": "64Mi"}}))
    assert ok.holds
    assert ok.message.startswith("checked: no module is both allowed and denied")
    assert "5s of CPU fits in the 30s timeout on 1 CPU(s)" in ok.message
    assert "64Mi of memory leaves the interpreter its 32Mi" in ok.message
    assert "prov" not in ok.message
    slow = verify(
        SandboxPolicySpec.model_validate(
            {"limits": {"cpu": "500m", "cpuSeconds": 20, "timeoutSeconds": 30}}
        )
    )
    assert slow.message == (
        "spec.limits.cpuSeconds: 20s of CPU cannot be used within timeoutSeconds 30s on 0.5 CPU(s)"
    )
    small = verify(SandboxPolicySpec.model_validate({"limits": {"memory": "16Mi"}}))
    assert small.message == "spec.limits.memory: 16Mi is below the 32Mi an interpreter needs"
