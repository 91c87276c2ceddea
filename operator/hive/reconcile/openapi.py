"""ToolVersions of kind openapi: the functions their document makes, or why it makes none.

Pure: the operator reads the document (inline, a ConfigMap key, a URL) and hands its text here.
An inline document is checked at admission (`inline_document_problem`); one from a ConfigMap or
a URL can only be checked once read, so its problem is reported as Ready=False
(`with_functions`): InvalidOpenAPIDocument when the document does not parse, does not validate
or selects no operation, OpenAPIDocumentUnavailable when it could not be read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hive.api.toolversion import ToolFunction, ToolVersionSpec, ToolVersionStatus
from hive.errors import InvalidInput
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions
from hive.runtime.tooling.openapi_document import check, load_text, operations, server_url

INVALID = "InvalidOpenAPIDocument"
UNAVAILABLE = "OpenAPIDocumentUnavailable"


@dataclass(frozen=True)
class OpenAPIFunctions:
    """What the document of one version makes: its functions, or a problem and its reason."""

    functions: list[ToolFunction] = field(default_factory=list)
    problem: str | None = None
    reason: str = INVALID


def document_functions(
    spec: ToolVersionSpec, text: str, document_url: str | None = None
) -> OpenAPIFunctions:
    """The functions `spec` offers from the document `text` (served at `document_url`)."""
    source = spec.implementation.openapi
    if source is None:
        return OpenAPIFunctions()
    where = _where(spec)
    try:
        document = check(load_text(text, where), where)
        selected = operations(
            document, spec.tool, operation_ids=source.operations, tags=source.tags, where=where
        )
        for operation in selected:  # calls need an absolute server URL
            server_url(operation, document_url, source.server)
        scheme = source.auth.scheme if source.auth is not None else None
        if scheme is not None and scheme not in document.security_schemes:
            known = ", ".join(document.security_schemes) or "none"
            raise InvalidInput(
                "spec.implementation.openapi.auth.scheme",
                f"{scheme!r} is not in the document's components.securitySchemes ({known})",
            )
    except InvalidInput as exc:
        return OpenAPIFunctions(problem=str(exc))
    return OpenAPIFunctions(
        functions=[ToolFunction(name=o.function, method=o.method, path=o.path) for o in selected]
    )


def inline_document_problem(spec: Any) -> str | None:
    """Why the inline document of a ToolVersion of kind openapi is refused, or None (also for
    other kinds and for documents from a ConfigMap or URL, checked once read)."""
    if not isinstance(spec, ToolVersionSpec):
        return None
    source = spec.implementation.openapi
    if source is None or source.document is None:
        return None
    return document_functions(spec, json.dumps(source.document), None).problem


def unavailable(problem: str) -> OpenAPIFunctions:
    return OpenAPIFunctions(problem=problem, reason=UNAVAILABLE)


def with_functions(
    status: ToolVersionStatus,
    found: OpenAPIFunctions,
    stored: Mapping[str, Any] | None,
    generation: int,
    now: dt.datetime,
) -> ToolVersionStatus:
    """`status` (as planned for the object whose status is `stored` now) with the functions
    made, and Ready=False with the reason when none could be."""
    if found.problem is None:
        return status.model_copy(
            update={"functions": found.functions, "function_count": len(found.functions)}
        )
    ready = condition("Ready", False, found.reason, found.problem, generation=generation, now=now)
    others = [c for c in status.conditions if c.type != "Ready"]
    merged = merge_conditions(previous_conditions(stored), [ready])
    return status.model_copy(
        update={"functions": [], "function_count": 0, "conditions": [*others, *merged]}
    )


def _where(spec: ToolVersionSpec) -> str:
    source = spec.implementation.openapi
    if source is not None and source.url is not None:
        return f"spec.implementation.openapi.url {source.url}"
    if source is not None and source.config_map_ref is not None:
        ref = source.config_map_ref
        return f"spec.implementation.openapi.configMapRef {ref.name}/{ref.key}"
    return "spec.implementation.openapi.document"
