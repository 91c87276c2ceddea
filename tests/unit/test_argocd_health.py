"""Argo CD health checks: each kind's health.lua, run under a real Lua 5.1, meets its cases.

Every `argocd/health/hive.dev/<Kind>/health_test.yaml` case is run the way Argo CD runs a custom
health check: the object becomes Lua tables (lists 1-indexed) in the global `obj`, and the script
returns `{status, message}`. A property test checks the rules themselves on generated statuses,
and the generated argocd-cm patch must match the scripts.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from lupa import lua51

REPO = Path(__file__).resolve().parents[2]
HEALTH = REPO / "argocd" / "health" / "hive.dev"
KINDS = ("AgentTeam", "ToolVersion", "SandboxPolicy", "ChaosExperiment", "MemoryStore")
SUSPENDABLE = {"AgentTeam", "ChaosExperiment"}
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(lua: Any, value: Any) -> Any:
    """A JSON-like value as Argo hands it to Lua: maps and lists become tables, lists 1-indexed."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    if isinstance(value, dt.datetime):  # YAML timestamps are strings in the API object
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def run_health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) that `kind`'s health.lua gives for `obj`, in a fresh Lua 5.1 state."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    g = lua.globals()
    for unsafe in ("require", "dofile", "loadfile", "io", "os", "package"):
        g[unsafe] = None  # Argo loads each script alone: nothing may be pulled in from outside
    for unopened in ("string", "math", "coroutine", "debug"):
        g[unopened] = None  # an argocd-cm check gets only base, table, package and a safe os
    g.obj = to_lua(lua, obj)
    hs = lua.execute((HEALTH / kind / "health.lua").read_text(encoding="utf-8"))
    assert lua51.lua_type(hs) == "table", f"{kind}: health.lua must return a table"
    status, message = hs["status"], hs["message"]
    assert isinstance(status, str), f"{kind}: hs.status is {status!r}"
    assert isinstance(message, str), f"{kind}: hs.message is {message!r}"
    assert status in ARGO_STATUSES
    return status, message


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def cases() -> list[Any]:
    out = []
    for kind in KINDS:
        spec = HEALTH / kind / "health_test.yaml"
        if not spec.exists():
            continue
        for case in load_yaml(spec)["tests"]:
            name = Path(case["inputPath"]).stem
            out.append(pytest.param(kind, case, id=f"{kind}/{name}"))
    return out


def test_every_kind_has_a_health_check() -> None:
    from hive.api.kinds import KINDS as REGISTERED

    folders = {p.name for p in HEALTH.iterdir() if p.is_dir()}
    assert folders == set(KINDS)
    assert {k.kind for k in REGISTERED} <= folders, "a registered kind has no Argo CD health check"
    for kind in KINDS:
        assert (HEALTH / kind / "health.lua").is_file(), kind
        assert (HEALTH / kind / "health_test.yaml").is_file(), kind


@pytest.mark.parametrize("kind", KINDS)
def test_cases_cover_the_rules(kind: str) -> None:
    folder = HEALTH / kind
    tests = load_yaml(folder / "health_test.yaml")["tests"]
    inputs = {t["inputPath"] for t in tests}
    assert len(tests) >= 5
    assert len(inputs) == len(tests), "a testdata file is listed twice"
    on_disk = {f"testdata/{p.name}" for p in (folder / "testdata").glob("*.yaml")}
    assert inputs == on_disk, "every testdata file is a case and every case has its file"
    for needed in (
        "testdata/healthy.yaml",
        "testdata/degraded.yaml",
        "testdata/progressing_no_status.yaml",
        "testdata/progressing_stale_generation.yaml",
    ):
        assert needed in inputs
    statuses = {t["healthStatus"]["status"] for t in tests}
    assert {"Healthy", "Degraded", "Progressing"} <= statuses
    assert ("Suspended" in statuses) == (kind in SUSPENDABLE)
    if kind == "ChaosExperiment":
        assert "testdata/degraded_verdict_fail.yaml" in inputs
    for t in tests:
        obj = load_yaml(folder / t["inputPath"])
        assert obj["apiVersion"] == "hive.dev/v1alpha1"
        assert obj["kind"] == kind
        assert isinstance(obj["metadata"]["generation"], int)


@pytest.mark.parametrize(("kind", "case"), cases())
def test_health_lua(kind: str, case: dict[str, Any]) -> None:
    obj = load_yaml(HEALTH / kind / case["inputPath"])
    status, message = run_health(kind, obj)
    assert (status, message) == (case["healthStatus"]["status"], case["healthStatus"]["message"])


def test_lua_sees_lists_one_indexed_and_missing_fields_as_nil() -> None:
    """The harness itself: a Ready condition second in the list is found, a null is absent."""
    ready: dict[str, Any] = {"type": "Ready", "status": "True", "reason": "Verified"}
    ready |= {"message": "ok", "observedGeneration": 2}
    other: dict[str, Any] = {"type": "Progressing", "status": "False", "reason": "Done"}
    other |= {"message": "done", "observedGeneration": 2}
    obj = {
        "metadata": {"name": "p", "generation": 2},
        "spec": {},
        "status": {"observedGeneration": None, "conditions": [other, ready]},
    }
    assert run_health("SandboxPolicy", obj) == ("Healthy", "Verified: ok")


# The rules from the issue, written once more in Python, to check the scripts on any status.


def expected_status(kind: str, obj: dict[str, Any]) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status")
    generation = obj["metadata"]["generation"]
    if kind == "AgentTeam" and spec.get("suspend") is True:
        return "Suspended"
    if kind == "ChaosExperiment" and (
        spec.get("pause") is True or (status or {}).get("phase") == "Paused"
    ):
        return "Suspended"
    if status is None:
        return "Progressing"
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    if ready is None:
        return "Progressing"
    if ready.get("observedGeneration") != generation:
        return "Progressing"
    if status.get("observedGeneration") not in (None, generation):
        return "Progressing"
    if (
        kind == "ChaosExperiment"
        and status.get("phase") == "Completed"
        and status.get("verdict") == "Fail"
    ):
        return "Degraded"
    return {"True": "Healthy", "False": "Degraded"}.get(ready["status"], "Progressing")


generations = st.integers(min_value=1, max_value=4)
conditions = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Ready", "Progressing", "Degraded"]),
        "status": st.sampled_from(["True", "False", "Unknown"]),
        "reason": st.sampled_from(["Verified", "InvalidSpec", "Reconciling"]),
        "message": st.sampled_from(["it holds", "spec.x: bad"]),
        "lastTransitionTime": st.just("2026-03-02T10:15:00Z"),
    },
    optional={"observedGeneration": generations},
)
statuses = st.none() | st.fixed_dictionaries(
    {"conditions": st.lists(conditions, max_size=3, unique_by=lambda c: c["type"])},
    optional={
        "observedGeneration": generations,
        "phase": st.sampled_from(["Pending", "Running", "Paused", "Completed", "Failed"]),
        "verdict": st.sampled_from(["Pass", "Fail", "Stopped"]),
    },
)
specs = st.fixed_dictionaries({}, optional={"suspend": st.booleans(), "pause": st.booleans()})


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=300, deadline=None)
@given(generation=generations, spec=specs, status=statuses)
def test_health_lua_follows_the_rules(
    kind: str, generation: int, spec: dict[str, Any], status: dict[str, Any] | None
) -> None:
    obj = {"metadata": {"name": "x", "generation": generation}, "spec": spec, "status": status}
    got, message = run_health(kind, obj)
    assert got == expected_status(kind, obj)
    assert message
    if got == "Healthy":
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
        assert ready["status"] == "True"
        assert ready["observedGeneration"] == generation
    if message.startswith("Waiting for the operator to observe generation"):
        assert got == "Progressing"
        assert message.split()[7] == str(generation)
    if got == "Degraded" and "verdict Fail" not in message:
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
        assert message == f"{ready['reason']}: {ready['message']}"


# The argocd-cm patch, generated from the scripts.


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("argocd_cm", REPO / "hack" / "argocd_cm.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_argocd_cm_patch_is_generated_from_the_scripts() -> None:
    patch = REPO / "argocd" / "argocd-cm-patch.yaml"
    text = patch.read_text(encoding="utf-8")
    assert text == generator().render(), "run python hack/argocd_cm.py"
    cm = yaml.safe_load(text)
    assert cm["apiVersion"] == "v1"
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == "argocd-cm"
    key = "resource.customizations.health.hive.dev_{}"
    lua = {key.format(kind): (HEALTH / kind / "health.lua").read_text("utf-8") for kind in KINDS}
    assert cm["data"] == lua


def test_generator_check_reports_drift(tmp_path: Path) -> None:
    script = str(REPO / "hack" / "argocd_cm.py")
    ok = subprocess.run([sys.executable, script, "--check"], capture_output=True, check=False)
    assert ok.returncode == 0, ok.stderr
    stale = tmp_path / "argocd-cm-patch.yaml"
    stale.write_text(generator().render().replace("Healthy", "Fine"), encoding="utf-8")
    drift = subprocess.run(
        [sys.executable, script, "--check", "--output", str(stale)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert drift.returncode == 1
    assert "out of date" in drift.stderr
    assert generator().main(["--output", str(stale)]) == 0
    assert generator().main(["--check", "--output", str(stale)]) == 0
