"""The SandboxPolicy presets in policies/ validate and are proven to hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.reconcile.admission import check_sandbox_policy
from hive.reconcile.sandboxpolicy import verify

PRESETS = sorted((Path(__file__).resolve().parents[2] / "policies").glob("*.yaml"))


def test_there_are_presets() -> None:
    assert [p.name for p in PRESETS] == ["data-analysis.yaml", "package-index.yaml", "strict.yaml"]


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_is_admitted_and_proven(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] == "SandboxPolicy"
    assert doc["metadata"]["name"] == path.stem
    assert check_sandbox_policy(doc["spec"]) is None
    proof = verify(SandboxPolicySpec.model_validate(doc["spec"]))
    assert proof.holds, proof.message
