"""OpenAPI documents into functions: checking, $ref inlining, parameter places, names, requests."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.api.toolversion import OpenAPIAuth, ToolVersionSpec
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.tooling.kinds import KindContext
from hive.runtime.tooling.openapi import Credential, answer, build_request, credential_for
from hive.runtime.tooling.openapi_document import (
    Document,
    OpenAPIDocumentError,
    check,
    function_name,
    load_text,
    operations,
    server_url,
)

SHELTER = Path(__file__).parents[1] / "tools_servers" / "shelter.openapi.yaml"
INFO = {"title": "t", "version": "1"}
OK = {"200": {"description": "ok"}}


def doc(paths: dict[str, Any], version: str = "3.1.0", **extra: Any) -> dict[str, Any]:
    return {"openapi": version, "info": INFO, "paths": paths, **extra}


def shelter() -> list[Any]:
    return operations(check(load_text(SHELTER.read_text(), "shelter"), "shelter"), "shelter")


def test_the_test_services_document_becomes_one_function_per_operation() -> None:
    found = {o.operation_id: o for o in shelter()}
    assert [(o.function, o.method, o.path) for o in found.values()] == [
        ("shelter_listPets", "GET", "/pets"),
        ("shelter_createPet", "POST", "/pets"),
        ("shelter_getPet", "GET", "/pets/{petId}"),
        ("shelter_adoptPet", "DELETE", "/pets/{petId}"),
        ("shelter_health", "GET", "/health"),
    ]
    create = found["createPet"].arguments
    assert create["required"] == ["body"]
    body = create["properties"]["body"]
    assert body["properties"]["species"] == {"type": "string", "enum": ["cat", "dog", "rabbit"]}
    assert "$ref" not in json.dumps(found.values().__iter__().__next__().arguments)
    get = found["getPet"]
    assert get.arguments["properties"]["petId"]["description"] == "The animal's name."
    assert get.arguments["required"] == ["petId"]  # from the path item's $ref'd parameter
    assert {(p.argument, p.place) for p in get.parameters} == {
        ("petId", "path"),
        ("X-Request-Id", "header"),
    }
    assert found["listPets"].security == ({"staffToken": []},)
    assert found["health"].security == ()  # security: [] on the operation
    assert found["getPet"].output_schema is not None
    assert "$ref" not in json.dumps(found["getPet"].output_schema)
    for operation in found.values():
        jsonschema.Draft202012Validator.check_schema(operation.arguments)


def test_selection_by_operation_id_and_by_tag() -> None:
    document = check(load_text(SHELTER.read_text(), "d"), "d")
    by_id = operations(document, "s", operation_ids=["getPet"])
    assert [o.operation_id for o in by_id] == ["getPet"]
    by_tag = operations(document, "s", tags=["admin", "meta"])
    assert [o.operation_id for o in by_tag] == ["adoptPet", "health"]
    both = operations(document, "s", operation_ids=["getPet"], tags=["meta"])
    assert [o.operation_id for o in both] == ["getPet", "health"]
    with pytest.raises(OpenAPIDocumentError, match=r"operation feedPet is not in the document"):
        operations(document, "s", operation_ids=["feedPet"])
    with pytest.raises(OpenAPIDocumentError, match=r"no operation has tag billing"):
        operations(document, "s", tags=["billing"])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2]", r"not an OpenAPI document \(a list\)"),
        ("{unclosed: [", r"neither JSON nor YAML"),
        ('{"swagger": "2.0", "info": {}}', r"no 'openapi' field \(Swagger 2.0"),
        ('{"title": "a web page"}', r"no 'openapi' field"),
        ('{"openapi": "4.0.0", "info": {}, "paths": {}}', r"only OpenAPI 3.0 and 3.1"),
        ('{"openapi": "3.1.0", "info": {"title": "x"}, "paths": {}}', r"'version' is a required"),
    ],
)
def test_what_is_not_openapi_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(OpenAPIDocumentError, match=reason) as caught:
        check(load_text(text, "spec.implementation.openapi.document"), "the document")
    assert isinstance(caught.value, InvalidInput)


def test_a_document_without_operations_is_refused() -> None:
    with pytest.raises(OpenAPIDocumentError, match="no operation"):
        operations(check(doc({}), "d"), "t")


def test_references_outside_the_document_are_refused() -> None:
    schema = {"$ref": "file:///etc/passwd"}
    paths = {
        "/a": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": schema}}},
                "responses": OK,
            }
        }
    }
    with pytest.raises(OpenAPIDocumentError, match=r"file:///etc/passwd"):
        operations(check(doc(paths), "d"), "t")
    dangling = {
        "/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Gone"}], "responses": OK}}
    }
    with pytest.raises(OpenAPIDocumentError, match=r"Gone"):
        operations(check(doc(dangling), "d"), "t")


def test_refs_are_inlined_and_recursion_stops() -> None:
    components = {
        "schemas": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"$ref": "#/components/schemas/Label"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                },
            },
            "Label": {"type": "string", "maxLength": 10, "example": "x"},
        }
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}
    paths = {"/tree": {"put": {"operationId": "put tree!", "requestBody": body, "responses": OK}}}
    (operation,) = operations(check(doc(paths, components=components), "d"), "trees")
    node = operation.arguments["properties"]["body"]
    assert node["properties"]["label"] == {"type": "string", "maxLength": 10}  # example dropped
    assert node["properties"]["children"]["items"] == {"description": "(a Node, recursively)"}
    assert operation.function == "trees_put_tree"
    assert "body" not in operation.arguments.get("required", [])


def test_openapi_3_0_nullable_becomes_a_type_list() -> None:
    parameter = {"name": "q", "in": "query", "schema": {"type": "string", "nullable": True}}
    paths = {"/s": {"get": {"operationId": "search", "parameters": [parameter], "responses": OK}}}
    (operation,) = operations(check(doc(paths, version="3.0.3"), "d"), "t")
    assert operation.arguments["properties"]["q"] == {"type": ["string", "null"]}


def test_a_name_in_two_places_is_told_apart_by_its_place() -> None:
    parameters = [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "id", "in": "query", "schema": {"type": "string"}},
        {"name": "body", "in": "header", "schema": {"type": "string"}},
    ]
    body = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    paths = {
        "/x/{id}": {
            "post": {
                "operationId": "x",
                "parameters": parameters,
                "requestBody": body,
                "responses": OK,
            }
        }
    }
    (operation,) = operations(check(doc(paths), "d"), "t")
    assert set(operation.arguments["properties"]) == {"path_id", "query_id", "body", "request_body"}
    assert operation.arguments["required"] == ["path_id", "request_body"]
    assert operation.body == "request_body"


def test_operations_without_operation_id_are_named_by_method_and_path() -> None:
    (operation,) = operations(check(doc({"/users/keys": {"get": {"responses": OK}}}), "d"), "t")
    assert operation.operation_id == "get_users_keys"
    assert operation.function == "t_get_users_keys"


@given(st.text(min_size=1, max_size=200))
def test_function_names_always_fit_what_model_apis_accept(operation_id: str) -> None:
    name = function_name("a-tool", operation_id)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name)


def test_long_and_clashing_names_stay_distinct() -> None:
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    first = function_name("t", long_a)
    assert len(first) == 64
    assert function_name("t", long_b, [first]) != first
    assert function_name("t", "get pets", ["t_get_pets"]) != "t_get_pets"


def test_servers_resolve_against_the_document_url_or_need_one() -> None:
    (operation,) = [o for o in shelter() if o.operation_id == "health"]
    assert (
        server_url(operation, "http://127.0.0.1:9/openapi.json", None) == "http://127.0.0.1:9/api"
    )
    assert server_url(operation, None, "https://other/v2/") == "https://other/v2"
    with pytest.raises(InvalidInput, match=r"implementation.openapi.server"):
        server_url(operation, None, None)
    templated = doc(
        {"/a": {"get": {"responses": OK}}},
        servers=[
            {"url": "https://{region}.example.com/v1", "variables": {"region": {"default": "eu"}}}
        ],
    )
    (first,) = operations(check(templated, "d"), "t")
    assert server_url(first, None, None) == "https://eu.example.com/v1"


def test_requests_carry_each_argument_in_its_place() -> None:
    parameters = [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
        {
            "name": "ids",
            "in": "query",
            "explode": False,
            "schema": {"type": "array", "items": {"type": "integer"}},
        },
        {"name": "all", "in": "query", "schema": {"type": "boolean"}},
        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
    ]
    body = {"content": {"application/json": {"schema": {"type": "object"}}}}
    paths = {
        "/files/{name}": {
            "post": {
                "operationId": "f",
                "parameters": parameters,
                "requestBody": body,
                "responses": OK,
            }
        }
    }
    (operation,) = operations(check(doc(paths), "d"), "t")
    arguments = {
        "name": "a b/c?",
        "tags": ["x", "y"],
        "ids": [1, 2],
        "all": True,
        "X-Trace": "t1",
        "session": "s1",
        "body": {"k": [1]},
    }
    request = build_request(
        operation, "http://h/api", arguments, Credential("query", "api_key", "K")
    )
    built = httpx.Request(**request)
    assert built.url.raw_path.decode() == (
        "/api/files/a%20b%2Fc%3F?tags=x&tags=y&ids=1%2C2&all=true&api_key=K"
    )
    assert built.headers["X-Trace"] == "t1"
    assert built.headers["Cookie"] == "session=s1"
    assert json.loads(built.content) == {"k": [1]}
    assert built.headers["Content-Type"] == "application/json"


def test_basic_and_header_credentials() -> None:
    (operation,) = [o for o in shelter() if o.operation_id == "listPets"]
    basic = base64.b64encode(b"u:p").decode()
    request = build_request(
        operation, "http://h", {}, Credential("header", "Authorization", f"Basic {basic}")
    )
    assert request["headers"]["Authorization"] == f"Basic {basic}"
    assert "content" not in request


def test_answers_json_text_empty_and_errors_naming_the_operation() -> None:
    (operation,) = [o for o in shelter() if o.operation_id == "getPet"]
    request = httpx.Request("GET", "http://h/api/pets/x")
    assert answer(operation, httpx.Response(200, json={"a": 1}, request=request)) == {"a": 1}
    assert answer(operation, httpx.Response(200, text="plain", request=request)) == "plain"
    assert answer(operation, httpx.Response(204, request=request)) is None
    with pytest.raises(ExternalFailure) as caught:
        answer(operation, httpx.Response(401, json={"error": "no"}, request=request))
    assert str(caught.value) == (
        "shelter_getPet (operation getPet: GET /pets/{petId}) answered HTTP 401 "
        '(the credential was refused): {"error":"no"}'
    )


def credentials_document() -> Document:
    schemes = {
        "key": {"type": "apiKey", "in": "query", "name": "api_key"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
        "basic": {"type": "http", "scheme": "basic"},
        "oauth": {"type": "oauth2", "flows": {}},
    }
    paths = {
        "/a": {"get": {"operationId": "a", "responses": OK}},
        "/b": {"get": {"operationId": "b", "security": [{"basic": []}], "responses": OK}},
        "/c": {"get": {"operationId": "c", "security": [], "responses": OK}},
        "/d": {"get": {"operationId": "d", "security": [{"oauth": ["read"]}], "responses": OK}},
    }
    content = doc(paths, components={"securitySchemes": schemes}, security=[{"key": []}])
    return check(content, "d")


def test_the_credential_follows_the_operations_security_scheme() -> None:
    document = credentials_document()
    found = {o.operation_id: o for o in operations(document, "t")}
    spec = ToolVersionSpec.model_validate(
        {
            "tool": "t",
            "version": "1.0.0",
            "implementation": {"kind": "openapi", "openapi": {"url": "http://h/openapi.json"}},
        }
    )
    context = KindContext(secrets={"s/v": "u:p"})

    def credential(operation: str, scheme: str | None = None) -> Credential:
        auth = OpenAPIAuth.model_validate(
            {"secretRef": {"name": "s", "key": "v"}, "scheme": scheme}
        )
        return credential_for(document, found[operation], auth, context, spec)

    assert credential("a") == Credential("query", "api_key", "u:p")
    assert credential("b") == Credential("header", "Authorization", "Basic dTpw")
    assert credential("c") == Credential()  # security: [] on the operation
    assert credential("d") == Credential("header", "Authorization", "Bearer u:p")
    assert credential("a", "basic") == Credential()  # the operation asks for another scheme
    assert credential_for(document, found["a"], None, context, spec) == Credential()
    auth = OpenAPIAuth.model_validate({"secretRef": {"name": "gone", "key": "v"}})
    with pytest.raises(Unavailable, match=r"Secret gone key v could not be read"):
        credential_for(document, found["a"], auth, context, spec)
