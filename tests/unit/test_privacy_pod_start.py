"""A team's privacy policy reaches its agent pods through their config; what stops it in a pod
becomes one PrivacyNotStarted naming the agent and the cause (which the pod reports into its
status entry before it exits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hive.api.privacy import DetectionMode, PrivacySpec
from hive.runtime.pod import PodConfig
from hive.runtime.privacy import detect
from hive.runtime.privacy.wiring import PrivacyNotStarted, pod_guard
from hive.settings import PrivacySettings
from tests.unit.test_agentteam_reconcile import child, plan, spec


def test_no_policy_no_guard() -> None:
    assert pod_guard(None, "lead", PrivacySettings()) is None


def test_a_missing_spacy_model_is_named_with_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detect, "default_model_dir", lambda: tmp_path / "absent")
    with pytest.raises(PrivacyNotStarted) as caught:
        pod_guard(PrivacySpec(mode=DetectionMode.NER), "lead", PrivacySettings())
    message = str(caught.value)
    assert "agent lead's pod" in message
    assert "NotInstalled" in message
    assert str(tmp_path / "absent") in message
    assert "make models" in message


def test_missing_presidio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_presidio(*_: object) -> None:
        raise ImportError("No module named 'presidio_analyzer'")

    monkeypatch.setattr(detect, "_pattern_recognizers", no_presidio)
    with pytest.raises(PrivacyNotStarted, match=r"hive\[privacy\]"):
        pod_guard(PrivacySpec(), "lead", PrivacySettings())


def test_any_other_cause_is_reported_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise ValueError("bad recogniser")

    monkeypatch.setattr(detect, "_pattern_recognizers", broken)
    with pytest.raises(PrivacyNotStarted, match=r"ValueError: bad recogniser"):
        pod_guard(PrivacySpec(), "lead", PrivacySettings())


def test_the_policy_reaches_the_pod_through_its_config(tmp_path: Path) -> None:
    team = spec(privacy={"mode": "ner", "minScore": 0.7})
    config = child(plan(team), "ConfigMap", "research-lead-config")["data"]["agent.yaml"]
    path = tmp_path / "agent.yaml"
    path.write_text(config)
    loaded = PodConfig.load(path, yaml.safe_load(config)["agent"]["name"]).spec.privacy
    assert loaded is not None
    assert loaded.mode == DetectionMode.NER
    assert loaded.min_score == 0.7
    without = child(plan(spec()), "ConfigMap", "research-lead-config")["data"]["agent.yaml"]
    path.write_text(without)
    assert PodConfig.load(path, yaml.safe_load(without)["agent"]["name"]).spec.privacy is None
