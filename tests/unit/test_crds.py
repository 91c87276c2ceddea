"""The CRDs generated from the models: structural, described, and in sync with crds/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hive.api.crd import crd_manifest
from hive.api.kinds import KINDS
from hive.cli.crds import write_crds

REPO = Path(__file__).resolve().parents[2]


def walk(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every named field under `schema` (list items and map values are described by their field)."""
    out = [(path, schema)]
    for name, prop in schema.get("properties", {}).items():
        out += walk(prop, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        inner = schema.get(key)
        if isinstance(inner, dict):
            out += [item for item in walk(inner, path + suffix) if item[1] is not inner]
    return out


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_has_a_description_and_a_type(kind: Any) -> None:
    root = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(root["properties"]["spec"], "spec") + walk(
        root["properties"]["status"], "status"
    ):
        assert node.get("description"), f"{path} has no description"
        assert "type" in node or "x-kubernetes-preserve-unknown-fields" in node, f"{path}: no type"
        for forbidden in ("$ref", "anyOf", "allOf", "title", "$defs"):
            assert forbidden not in node, f"{path} keeps {forbidden}"


def test_agent_status_is_a_list_map_keyed_by_name() -> None:
    kind = next(k for k in KINDS if k.kind == "AgentTeam")
    status = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "status"
    ]
    agents = status["properties"]["agents"]
    assert agents["x-kubernetes-list-type"] == "map"
    assert agents["x-kubernetes-list-map-keys"] == ["name"]
    assert "name" in agents["items"]["required"]


def test_printer_columns_lead_with_ready_and_reason_and_end_with_age() -> None:
    for kind in KINDS:
        columns = crd_manifest(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        assert [c["name"] for c in columns[:2]] == ["Ready", "Reason"]
        assert columns[-1]["name"] == "Age"
        assert crd_manifest(kind)["spec"]["names"]["categories"] == ["hive"]


def test_crds_folder_matches_the_models() -> None:
    for folder in ("crds", "charts/hive-crds/templates"):
        assert write_crds(REPO / folder, check=True) == [], f"{folder} drifted: run make crds"


def test_drift_is_detected(tmp_path: Path) -> None:
    write_crds(tmp_path)
    target = next(tmp_path.iterdir())
    target.write_text(target.read_text().replace("description", "descr", 1))
    assert write_crds(tmp_path, check=True) == [target.name]
