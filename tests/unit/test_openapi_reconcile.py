"""The operator's side of kind openapi: status.functions, Ready=False reasons, admission."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from hive.api.toolversion import ToolVersionSpec, ToolVersionStatus
from hive.reconcile.admission import check_tool_version
from hive.reconcile.conditions import condition
from hive.reconcile.openapi import (
    INVALID,
    UNAVAILABLE,
    document_functions,
    inline_document_problem,
    unavailable,
    with_functions,
)

SHELTER = Path(__file__).parents[1] / "tools_servers" / "shelter.openapi.yaml"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)


def spec(**openapi: Any) -> dict[str, Any]:
    return {
        "tool": "shelter",
        "version": "1.0.0",
        "implementation": {"kind": "openapi", "openapi": openapi},
    }


def shelter_inline(**more: Any) -> dict[str, Any]:
    document = yaml.safe_load(SHELTER.read_text())
    return spec(document=document, server="http://shelter.tools.svc/api", **more)


def test_functions_name_method_and_path() -> None:
    parsed = ToolVersionSpec.model_validate(spec(url="http://h/openapi.yaml", tags=["pets"]))
    found = document_functions(parsed, SHELTER.read_text(), "http://h/openapi.yaml")
    assert found.problem is None
    assert [(f.name, f.method, f.path) for f in found.functions] == [
        ("shelter_listPets", "GET", "/pets"),
        ("shelter_createPet", "POST", "/pets"),
        ("shelter_getPet", "GET", "/pets/{petId}"),
    ]


def test_a_page_that_is_not_openapi_is_a_problem_naming_the_url() -> None:
    parsed = ToolVersionSpec.model_validate(spec(url="http://h/index.html"))
    found = document_functions(parsed, "<html><body>hello</body></html>", "http://h/index.html")
    assert found.reason == INVALID
    assert found.problem == (
        "spec.implementation.openapi.url http://h/index.html: not an OpenAPI document (a str)"
    )


def test_a_relative_server_without_a_document_url_is_a_problem() -> None:
    document = yaml.safe_load(SHELTER.read_text())
    parsed = ToolVersionSpec.model_validate(spec(document=document))
    problem = inline_document_problem(parsed)
    assert problem is not None
    assert "implementation.openapi.server" in problem


def test_an_auth_scheme_the_document_lacks_is_a_problem() -> None:
    auth = {"secretRef": {"name": "s", "key": "token"}, "scheme": "apiKeyHeader"}
    parsed = ToolVersionSpec.model_validate(shelter_inline(auth=auth))
    assert inline_document_problem(parsed) == (
        "spec.implementation.openapi.auth.scheme: 'apiKeyHeader' is not in the document's "
        "components.securitySchemes (staffToken)"
    )


def test_admission_refuses_an_inline_document_that_is_not_openapi_or_has_no_operation() -> None:
    assert check_tool_version(shelter_inline(), [], "shelter-1") is None
    not_openapi = spec(document={"swagger": "2.0", "paths": {}}, server="http://h")
    assert check_tool_version(not_openapi, [], "shelter-1") == (
        "spec.implementation.openapi.document: not an OpenAPI document: no 'openapi' field "
        "(Swagger 2.0: convert it to OpenAPI 3)"
    )
    empty = spec(document={"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}})
    assert "has no operation" in (check_tool_version(empty, [], "shelter-1") or "")
    missing = shelter_inline(operations=["feedPet"])
    assert "operation feedPet is not in the document" in (
        check_tool_version(missing, [], "shelter-1") or ""
    )


def test_ready_false_with_the_reason_keeps_its_transition_time() -> None:
    planned = ToolVersionStatus(
        conditions=[condition("Ready", True, "ChainValid", "ok", generation=1, now=T1)]
    )
    stored = {
        "conditions": [
            condition("Ready", False, UNAVAILABLE, "x", generation=1, now=T0).wire(),
        ]
    }
    status = with_functions(planned, unavailable("HTTP 503"), stored, 1, T1)
    (ready,) = status.conditions
    assert (ready.status, ready.reason, ready.message) == ("False", UNAVAILABLE, "HTTP 503")
    assert ready.last_transition_time == T0
    assert (status.functions, status.function_count) == ([], 0)
    parsed = ToolVersionSpec.model_validate(shelter_inline())
    fine = with_functions(planned, document_functions(parsed, SHELTER.read_text()), stored, 1, T1)
    assert fine.conditions == planned.conditions
    assert len(fine.functions) == fine.function_count == 5
