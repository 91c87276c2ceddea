"""An OpenAPI 3.0/3.1 document read into the operations a ToolVersion of kind openapi offers.

Pure (no network): the kind (`hive.runtime.tooling.openapi`) fetches the document and calls the
operations; the operator (`hive.reconcile.openapi`) reports them in ``status.functions``.

The document is checked with openapi-spec-validator (the OpenAPI 3.0 and 3.1 meta-schemas and
the rules beyond them: unique operationIds, path parameters declared, references that resolve).
References are followed with `referencing` (the JSON-reference library under jsonschema and
jsonschema-path) inside the document only: a reference to another file or URL is refused, so a
document cannot make the operator or an agent read local files or reach other hosts.

Each selected operation becomes one function whose arguments are one JSON Schema object: its
path, query and header parameters by name (a name used in two places gets its place as prefix,
e.g. ``query_id``) and the JSON request body as ``body``. ``$ref``s are inlined (a reference back
into a schema being inlined becomes an open schema); OpenAPI 3.0's ``nullable`` becomes a JSON
Schema type list. Function names are ``<tool>_<operationId>`` cut to the 64 characters of
``^[a-zA-Z0-9_-]{1,64}$`` that model APIs accept (OpenAI's rule for function names).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import yaml
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from hive.errors import InvalidInput

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_NAME = 64
# keywords that only document a schema: left out of what the model sees
DOCUMENTATION_ONLY = {"example", "examples", "xml", "externalDocs", "discriminator", "$comment"}
PLACES = ("path", "query", "header", "cookie")
DOCUMENT_URI = "urn:hive:openapi-document"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when built with it
RESOLVED_CACHE = 1024  # references the validator keeps resolved while it walks one document


class OpenAPIDocumentError(InvalidInput):
    """A document that is not OpenAPI 3.0/3.1, does not validate, or offers no operation."""


@dataclass(frozen=True)
class Parameter:
    """Where one argument of a function goes in the request."""

    argument: str  # its name among the function's arguments
    name: str  # its name on the wire
    place: str  # path, query, header, cookie
    style: str = "form"
    explode: bool = True


@dataclass(frozen=True)
class Operation:
    """One operation of the document, as a function the model can call."""

    function: str  # the function's name
    operation_id: str
    method: str  # upper case
    path: str  # template, as in the document
    description: str
    arguments: dict[str, Any]  # JSON Schema of the arguments (an object)
    parameters: tuple[Parameter, ...]
    body: str | None  # the argument carrying the JSON body, if the operation takes one
    body_required: bool
    body_media_type: str | None
    servers: tuple[str, ...]  # the operation's (or path's, or document's) server URLs
    security: tuple[dict[str, list[str]], ...]  # requirements in force (empty: none)
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Document:
    """A checked document and what is needed to call its operations."""

    content: dict[str, Any]
    version: str  # "3.0" or "3.1"
    security_schemes: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_text(text: str | bytes, where: str) -> dict[str, Any]:
    """JSON or YAML text -> the document object; `where` names it in errors."""
    try:
        content = yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 (a safe loader); JSON is YAML
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OpenAPIDocumentError(where, f"neither JSON nor YAML ({first})") from exc
    if not isinstance(content, dict):
        raise OpenAPIDocumentError(where, f"not an OpenAPI document (a {type(content).__name__})")
    return content


def check(content: Mapping[str, Any], where: str) -> Document:
    """The document, if it is valid OpenAPI 3.0 or 3.1; else OpenAPIDocumentError naming why."""
    # the validator and its schema tree weigh about 35 MiB: loaded with the first document, so a
    # process that never meets one (the operator of a cluster without openapi tools) goes without
    from jsonschema_path import SchemaPath
    from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

    declared = content.get("openapi")
    if declared is None:
        hint = " (Swagger 2.0: convert it to OpenAPI 3)" if "swagger" in content else ""
        raise OpenAPIDocumentError(where, f"not an OpenAPI document: no 'openapi' field{hint}")
    version = str(declared)
    if version.startswith("3.0"):
        validator_class: Any = OpenAPIV30SpecValidator
    elif version.startswith("3.1"):
        validator_class = OpenAPIV31SpecValidator
    else:
        raise OpenAPIDocumentError(
            where, f"openapi {version}: only OpenAPI 3.0 and 3.1 documents are supported"
        )
    document = json.loads(json.dumps(content))  # plain JSON values (YAML dates, keys)
    tree = SchemaPath.from_dict(
        document, base_uri=DOCUMENT_URI, handlers={}, resolved_cache_maxsize=RESOLVED_CACHE
    )
    try:
        error = next(iter(validator_class(tree).iter_errors()), None)
    except (Unresolvable, LookupError, ValueError) as exc:
        ref = getattr(exc, "ref", None) or str(exc)[:200]
        raise OpenAPIDocumentError(
            where, f"$ref {ref!r} does not resolve inside the document"
        ) from exc
    if error is not None:
        raise OpenAPIDocumentError(where, _describe(error))
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    resolver = _resolver(document)
    return Document(
        content=document,
        version=version[:3],
        security_schemes={name: _deref(resolver, s, where) for name, s in schemes.items()},
    )


def _describe(error: Exception) -> str:
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    if isinstance(error, OpenAPIValidationError):
        place = "/".join(str(p) for p in error.absolute_path)
        return f"{place or 'the document'}: {error.message}" if place else error.message
    return str(error)


def _resolver(document: dict[str, Any]) -> Any:
    resource: Resource[Any] = DRAFT202012.create_resource(document)
    return Registry().with_resource(DOCUMENT_URI, resource).resolver(DOCUMENT_URI)


def _lookup(resolver: Any, ref: str, where: str) -> Any:
    if not ref.startswith("#"):
        raise OpenAPIDocumentError(
            where, f"$ref {ref!r}: only references inside the document are followed"
        )
    try:
        return resolver.lookup(ref).contents
    except Unresolvable as exc:
        raise OpenAPIDocumentError(where, f"$ref {ref!r} does not resolve") from exc


def _deref(resolver: Any, value: Any, where: str) -> Any:
    """A Reference Object (parameter, body, response) -> what it names, following chains."""
    seen: set[str] = set()
    while isinstance(value, dict) and isinstance(value.get("$ref"), str):
        ref = value["$ref"]
        if ref in seen:
            raise OpenAPIDocumentError(where, f"$ref {ref!r} refers to itself")
        seen.add(ref)
        value = _lookup(resolver, ref, where)
    return value


def inline_schema(
    schema: Any, resolver: Any, where: str, version: str = "3.1", stack: tuple[str, ...] = ()
) -> Any:
    """`schema` with every `$ref` replaced by what it names (JSON Schema a model accepts)."""
    if isinstance(schema, list):
        return [inline_schema(item, resolver, where, version, stack) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in stack:
            name = ref.rsplit("/", 1)[-1]
            return {"description": f"(a {name}, recursively)"}
        target = inline_schema(
            _lookup(resolver, ref, where), resolver, where, version, (*stack, ref)
        )
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if not siblings:
            return target
        merged = inline_schema(siblings, resolver, where, version, stack)
        return {**target, **merged} if isinstance(target, dict) else merged
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DOCUMENTATION_ONLY:
            continue
        if key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
            out[key] = (
                {k: inline_schema(v, resolver, where, version, stack) for k, v in value.items()}
                if isinstance(value, dict)
                else value
            )
        elif key in ("enum", "const", "default", "required"):
            out[key] = value
        else:
            out[key] = inline_schema(value, resolver, where, version, stack)
    if version == "3.0" and out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def function_name(tool: str, operation_id: str, taken: Iterable[str] = ()) -> str:
    """`<tool>_<operationId>` with what model APIs refuse replaced, at most 64 characters,
    unique among `taken` (a short hash of the operationId tells cut or clashing names apart)."""
    clean = re.sub(r"[^a-zA-Z0-9_-]+", "_", operation_id).strip("_") or "operation"
    name = f"{tool}_{clean}"
    used = set(taken)
    if len(name) <= MAX_NAME and name not in used:
        return name
    digest = hashlib.sha256(operation_id.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def operation_id(method: str, path: str, declared: Any) -> str:
    """The operation's operationId, or one made from its method and path."""
    if isinstance(declared, str) and declared:
        return declared
    words = re.sub(r"[{}]", "", path).strip("/").replace("/", "_") or "root"
    return f"{method}_{words}"


def operations(
    document: Document,
    tool: str,
    *,
    operation_ids: Iterable[str] = (),
    tags: Iterable[str] = (),
    where: str = "document",
) -> list[Operation]:
    """The selected operations (by operationId or tag; none named: all), in document order.

    An operationId named but absent, or a selection that leaves no operation, is an
    OpenAPIDocumentError naming what is there.
    """
    content = document.content
    resolver = _resolver(content)
    wanted_ids, wanted_tags = set(operation_ids), set(tags)
    everything = not wanted_ids and not wanted_tags
    found: list[Operation] = []
    seen_ids: list[str] = []
    document_servers = _server_urls(content.get("servers"))
    for path, raw_item in (content.get("paths") or {}).items():
        item = _deref(resolver, raw_item, where)
        if not isinstance(item, dict):
            continue
        path_servers = _server_urls(item.get("servers")) or document_servers
        for method in METHODS:
            raw = item.get(method)
            if not isinstance(raw, dict):
                continue
            op_id = operation_id(method, path, raw.get("operationId"))
            seen_ids.append(op_id)
            selected = (
                everything or op_id in wanted_ids or bool(wanted_tags & set(raw.get("tags") or []))
            )
            if not selected:
                continue
            found.append(
                _operation(
                    document,
                    resolver,
                    tool,
                    path,
                    method,
                    op_id,
                    item,
                    raw,
                    _server_urls(raw.get("servers")) or path_servers,
                    [o.function for o in found],
                    f"{where}: {method.upper()} {path}",
                )
            )
    missing = sorted(wanted_ids - set(seen_ids))
    if missing:
        raise OpenAPIDocumentError(
            where,
            f"operation {', '.join(missing)} is not in the document "
            f"(operations: {', '.join(seen_ids) or 'none'})",
        )
    if not found:
        if not seen_ids:
            raise OpenAPIDocumentError(where, "the document has no operation (paths is empty)")
        raise OpenAPIDocumentError(
            where,
            f"no operation has tag {', '.join(sorted(wanted_tags))} "
            f"(operations: {', '.join(seen_ids)})",
        )
    return found


def _server_urls(servers: Any) -> tuple[str, ...]:
    urls = []
    for server in servers or []:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        for name, variable in (server.get("variables") or {}).items():
            url = url.replace("{" + name + "}", str(variable.get("default", "")))
        urls.append(url)
    return tuple(urls)


def _operation(
    document: Document,
    resolver: Any,
    tool: str,
    path: str,
    method: str,
    op_id: str,
    item: dict[str, Any],
    raw: dict[str, Any],
    servers: tuple[str, ...],
    taken: list[str],
    where: str,
) -> Operation:
    version = document.version
    declared: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (item.get("parameters") or [], raw.get("parameters") or []):
        for entry in source:  # the operation's override the path's, by (name, in)
            parameter = _deref(resolver, entry, where)
            declared[(parameter["name"], parameter["in"])] = parameter
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters: list[Parameter] = []
    names = [name for name, _ in declared]
    for (name, place), parameter in declared.items():
        argument = name if names.count(name) == 1 else f"{place}_{name}"
        schema = _parameter_schema(parameter, resolver, where, version)
        if parameter.get("description") and "description" not in schema:
            schema = {**schema, "description": parameter["description"]}
        properties[argument] = schema
        if parameter.get("required") or place == "path":
            required.append(argument)
        parameters.append(
            Parameter(
                argument=argument,
                name=name,
                place=place,
                style=parameter.get("style", "simple" if place in ("path", "header") else "form"),
                explode=parameter.get("explode", parameter.get("style", "form") == "form"),
            )
        )
    body_argument: str | None = None
    body_required = False
    media_type: str | None = None
    request_body = _deref(resolver, raw.get("requestBody"), where)
    if isinstance(request_body, dict):
        media_type, body_schema = _body_schema(request_body, resolver, where, version)
        if media_type is not None:
            body_argument = "body" if "body" not in properties else "request_body"
            if request_body.get("description") and "description" not in body_schema:
                body_schema = {**body_schema, "description": request_body["description"]}
            properties[body_argument] = body_schema
            body_required = bool(request_body.get("required"))
            if body_required:
                required.append(body_argument)
    arguments: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        arguments["required"] = required
    arguments["additionalProperties"] = False
    summary, details = raw.get("summary") or "", raw.get("description") or ""
    description = " ".join(p for p in (summary, details) if p).strip() or f"{method.upper()} {path}"
    security = raw.get("security", document.content.get("security")) or []
    return Operation(
        function=function_name(tool, op_id, taken),
        operation_id=op_id,
        method=method.upper(),
        path=path,
        description=description,
        arguments=arguments,
        parameters=tuple(parameters),
        body=body_argument,
        body_required=body_required,
        body_media_type=media_type,
        servers=servers,
        security=tuple(r for r in security if isinstance(r, dict)),
        output_schema=_output_schema(raw, resolver, where, version),
    )


def _parameter_schema(
    parameter: dict[str, Any], resolver: Any, where: str, version: str
) -> dict[str, Any]:
    if "schema" in parameter:
        schema = inline_schema(parameter["schema"], resolver, where, version)
        return schema if isinstance(schema, dict) else {}
    for media in (parameter.get("content") or {}).values():  # content instead of schema
        schema = inline_schema(media.get("schema") or {}, resolver, where, version)
        return schema if isinstance(schema, dict) else {}
    return {"type": "string"}


def _is_json(media_type: str) -> bool:
    base = media_type.split(";")[0].strip().lower()
    return base == "application/json" or base.endswith("+json") or base == "*/*"


def _body_schema(
    request_body: dict[str, Any], resolver: Any, where: str, version: str
) -> tuple[str | None, dict[str, Any]]:
    content = request_body.get("content") or {}
    for media_type, media in content.items():
        if _is_json(media_type):
            schema = inline_schema((media or {}).get("schema") or {}, resolver, where, version)
            return media_type, schema if isinstance(schema, dict) else {}
    for media_type in content:  # text/plain and friends: a string
        if media_type.startswith("text/"):
            return media_type, {"type": "string"}
    return None, {}


def _output_schema(
    raw: dict[str, Any], resolver: Any, where: str, version: str
) -> dict[str, Any] | None:
    for status, response in (raw.get("responses") or {}).items():
        if not str(status).startswith("2"):
            continue
        for media_type, media in (_deref(resolver, response, where).get("content") or {}).items():
            if _is_json(media_type) and isinstance(media, dict) and "schema" in media:
                schema = inline_schema(media["schema"], resolver, where, version)
                return schema if isinstance(schema, dict) else None
        return None
    return None


def server_url(operation: Operation, document_url: str | None, override: str | None) -> str:
    """The base URL calls of `operation` go to: `override`, else its first server made
    absolute against the document's URL; InvalidInput when neither gives an absolute URL."""
    if override:
        return override.rstrip("/")
    server = operation.servers[0] if operation.servers else "/"
    if document_url:
        server = urljoin(document_url, server)
    if not server.startswith(("http://", "https://")):
        raise InvalidInput(
            "implementation.openapi.server",
            f"the document's server {server!r} is not an absolute URL and the document has no "
            "URL to resolve it against; set implementation.openapi.server",
        )
    return server.rstrip("/")
