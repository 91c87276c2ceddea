"""Argo CD health checks under Argo CD's own Lua engine, not only under Lua 5.1.

`make testbin` builds `argocd-health` (hack/argocd-health/main.go) from the Argo CD Go module.
It hands the checks to Argo CD as an argocd-cm ConfigMap read by Argo CD's settings manager, and
runs every `health_test.yaml` case through gitops-engine's `GetResourceHealth` with Argo CD's Lua
overrides (gopher-lua with only the libraries Argo CD opens): the application controller's path.
The unit tests run the same cases under Lua 5.1; this catches what only Argo CD would refuse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
HEALTH = REPO / "argocd" / "health"
PATCH = REPO / "argocd" / "argocd-cm-patch.yaml"


@pytest.fixture(scope="module")
def harness() -> Path:
    binary = get_settings().dev.testbin_dir / "argocd-health"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run make testbin (it builds Argo CD's Lua engine)")
    return binary


def run(harness: Path, *args: str | Path) -> tuple[int, dict[str, Any], str]:
    """Exit status, JSON report and stderr of one harness run."""
    done = subprocess.run(
        [str(harness), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode in (0, 1), f"argocd-health failed to run: {done.stderr}"
    return done.returncode, json.loads(done.stdout), done.stderr


def declared_cases(root: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(group/Kind, inputPath) -> expected healthStatus, for every health_test.yaml under root."""
    out = {}
    for spec in sorted(root.glob("*/*/health_test.yaml")):
        check = f"{spec.parent.parent.name}/{spec.parent.name}"
        for case in yaml.safe_load(spec.read_text(encoding="utf-8"))["tests"]:
            out[(check, case["inputPath"])] = case["healthStatus"]
    return out


def assert_all_pass(report: dict[str, Any], root: Path) -> None:
    declared = declared_cases(root)
    ran = {(c["check"], c["inputPath"]): c for c in report["cases"]}
    assert set(ran) == set(declared), "every declared case runs, and only those"
    assert len(declared) >= 5 * 5
    failed = [c for c in report["cases"] if not c["passed"]]
    assert not failed, json.dumps(failed, indent=2)
    for key, case in ran.items():
        assert case["actual"] == declared[key]
        assert "error" not in case
    assert (report["passed"], report["failed"]) == (len(declared), 0)


def test_engine_is_argo_cds(harness: Path) -> None:
    """The binary names the modules it was built from: Argo CD v3, its gitops-engine, gopher-lua."""
    _, report, _ = run(harness, HEALTH)
    engine = report["engine"]
    assert engine["github.com/argoproj/argo-cd/v3"].startswith("v3.")
    assert "github.com/yuin/gopher-lua" in engine
    assert any("gitops-engine" in module for module in engine)


def test_every_case_passes_under_argo_cd(harness: Path) -> None:
    code, report, stderr = run(harness, HEALTH)
    assert code == 0, stderr
    assert report["source"] == f"the health.lua files in {HEALTH}"
    assert_all_pass(report, HEALTH)


def test_the_generated_argocd_cm_patch_passes_under_argo_cd(harness: Path) -> None:
    """The patch users apply, read by Argo CD's settings manager, gives the same answers."""
    code, report, stderr = run(harness, "-argocd-cm", PATCH, HEALTH)
    assert code == 0, stderr
    assert report["source"] == str(PATCH)
    assert_all_pass(report, HEALTH)


def copy_of_checks(tmp_path: Path) -> Path:
    root = tmp_path / "health"
    shutil.copytree(HEALTH, root)
    return root


@pytest.mark.parametrize(
    ("field", "wrong"), [("status", "Degraded"), ("message", "Running: 1 of 2 agents ready")]
)
def test_a_wrong_expectation_is_reported(
    harness: Path, tmp_path: Path, field: str, wrong: str
) -> None:
    """The harness is no rubber stamp: one changed expectation fails that case and only it."""
    root = copy_of_checks(tmp_path)
    spec = root / "hive.dev" / "AgentTeam" / "health_test.yaml"
    tests = yaml.safe_load(spec.read_text(encoding="utf-8"))
    case = next(t for t in tests["tests"] if t["inputPath"] == "testdata/healthy.yaml")
    right = dict(case["healthStatus"])
    assert right["status"] == "Healthy"
    case["healthStatus"][field] = wrong
    spec.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")

    code, report, stderr = run(harness, root)

    assert code == 1
    failed = [c for c in report["cases"] if not c["passed"]]
    assert [(c["check"], c["inputPath"]) for c in failed] == [
        ("hive.dev/AgentTeam", "testdata/healthy.yaml")
    ]
    assert failed[0]["actual"] == right
    assert failed[0]["expected"][field] == wrong
    assert report["failed"] == 1
    assert report["passed"] == len(declared_cases(HEALTH)) - 1
    assert "FAIL hive.dev/AgentTeam testdata/healthy.yaml" in stderr


def test_argo_cd_opens_no_string_library(harness: Path, tmp_path: Path) -> None:
    """What Lua 5.1 allows and Argo CD does not: a check from argocd-cm has no `string` library
    (useOpenLibs is off), so a script that calls string.format fails only under Argo CD."""
    root = copy_of_checks(tmp_path)
    script = root / "hive.dev" / "MemoryStore" / "health.lua"
    text = script.read_text(encoding="utf-8")
    at = text.index("return hs")  # the first early return: no status yet
    call = 'hs.message = string.format("%s", hs.message)\n'
    script.write_text(text[:at] + call + text[at:], encoding="utf-8")

    code, report, _ = run(harness, root)

    assert code == 1
    failed = [c for c in report["cases"] if not c["passed"]]
    assert failed
    assert {c["check"] for c in failed} == {"hive.dev/MemoryStore"}
    assert all("format" in c["error"] for c in failed), failed
