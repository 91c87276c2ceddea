"""ToolVersion chains and SandboxPolicy proofs, against brute force where it exists."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.reconcile.admission import check_tool_version
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
    assert status["search-1.1.0"].consumers == ["t/dev"]
    assert status["search-2.0.0"].consumers == ["t/dev"]
    assert all(s.migration_path_valid for s in status.values())


def test_deprecated_versions_are_not_chosen_by_ranges() -> None:
    status = plan_tool([tool("1.0.0"), tool("1.1.0", "1.0.0", deprecated=True)], [team("^1")], T0)
    assert status["search-1.0.0"].consumers == ["t/dev"]
    assert status["search-1.1.0"].consumers == []
    assert status["search-1.1.0"].deprecated is True


def test_missing_and_skipping_migrations_break_the_chain() -> None:
    status = plan_tool([tool("1.0.0"), tool("1.1.0"), tool("1.2.0", "1.0.0")], [], T0)
    ready = {n: s.conditions[0] for n, s in status.items()}
    assert ready["search-1.1.0"].message == "1.1.0 has no spec.migration, but 1.0.0 is older"
    assert ready["search-1.2.0"].message == "1.2.0: spec.migration.from 1.0.0 skips 1.1.0"
    assert ready["search-1.0.0"].status == "True"


def test_admission_refuses_holes_but_allows_a_missing_predecessor() -> None:
    siblings = [tool("1.0.0"), tool("1.1.0", "1.0.0")]
    hole = check_tool_version(tool("1.2.0", "1.0.0")["spec"], siblings, "search-1.2.0")
    assert hole == "spec.migration.from: 1.0.0 skips 1.1.0 (a hole in the chain)"
    later = check_tool_version(tool("3.0.0", "2.0.0")["spec"], siblings, "search-3.0.0")
    assert later is None, "2.0.0 may still be applied"


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
def test_z3_finds_a_conflict_exactly_when_brute_force_does(
    allow: list[str], deny: list[str]
) -> None:
    policy = SandboxPolicySpec.model_validate({"modules": {"allow": allow, "deny": deny}})
    conflict = any(
        a == d or a.startswith(d + ".") or d.startswith(a + ".") for a in allow for d in deny
    )
    proof = verify(policy)
    assert proof.holds is not conflict, proof.message


def test_proofs_run_at_once_from_many_threads() -> None:
    """The webhook (kopf's thread pool) and the reconciler may prove at the same time."""
    good = SandboxPolicySpec.model_validate({"modules": {"deny": ["socket", "ctypes"]}})
    bad = SandboxPolicySpec.model_validate({"modules": {"allow": ["os"], "deny": ["os.path"]}})

    def prove(i: int) -> bool:
        return verify(good if i % 2 else bad).holds

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(prove, range(200)))
    assert results == [bool(i % 2) for i in range(200)]
