"""The OpenAPI document of a ToolVersion of kind openapi, read for its status.functions.

Inline documents are in the spec; a ConfigMap key is read through the API server; a URL is
fetched with httpx within the version's timeout. What the document makes, or why it makes
nothing, is decided by the pure `hive.reconcile.openapi`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
from pydantic import ValidationError

from hive.api.toolversion import ToolVersionSpec, ToolVersionStatus
from hive.errors import HiveError
from hive.kube.children import get_object
from hive.kube.client import ApiClient
from hive.reconcile.openapi import (
    UNAVAILABLE,
    OpenAPIFunctions,
    document_functions,
    unavailable,
    with_functions,
)
from hive.runtime.tooling.openapi import fetch_document
from hive.settings import OperatorSettings


async def openapi_functions(
    client: ApiClient, namespace: str, spec: ToolVersionSpec
) -> OpenAPIFunctions:
    """The functions of `spec`'s document, or why there are none."""
    source = spec.implementation.openapi
    if source is None:
        return OpenAPIFunctions()
    url: str | None = None
    if source.document is not None:
        text = json.dumps(source.document)
    elif source.config_map_ref is not None:
        ref = source.config_map_ref
        where = f"spec.implementation.openapi.configMapRef: ConfigMap {ref.name}"
        try:
            config_map = await get_object(client, "ConfigMap", namespace, ref.name)
        except HiveError as exc:
            return unavailable(f"{where}: {exc}")
        if config_map is None:
            return unavailable(f"{where} does not exist")
        data = config_map.get("data") or {}
        if ref.key not in data:
            return unavailable(f"{where} has no key {ref.key} (keys: {', '.join(data) or 'none'})")
        text = data[ref.key]
    else:
        url = source.url
        assert url is not None  # the model allows exactly one source
        try:
            async with httpx.AsyncClient() as http:
                text = await fetch_document(http, url, spec.implementation.timeout_seconds)
        except HiveError as exc:
            return unavailable(f"spec.implementation.openapi.url: {exc}")
    return await asyncio.to_thread(document_functions, spec, text, url)


async def with_openapi_functions(
    client: ApiClient,
    obj: dict[str, Any],
    status: ToolVersionStatus,
    now: dt.datetime,
    settings: OperatorSettings,
) -> tuple[ToolVersionStatus, float | None]:
    """`status` planned for the ToolVersion `obj`, with its functions when its kind is openapi,
    and when to read its document again: a URL or ConfigMap can change unannounced
    (`settings.openapi_refresh_s`), one that could not be read is tried again sooner
    (`settings.openapi_retry_s`)."""
    try:
        spec = ToolVersionSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return status, None  # the plan reports it already
    source = spec.implementation.openapi
    if source is None:
        return status, None
    meta = obj["metadata"]
    found = await openapi_functions(client, meta["namespace"], spec)
    status = with_functions(status, found, obj.get("status"), meta.get("generation", 0), now)
    if source.document is not None:
        return status, None
    if found.reason == UNAVAILABLE and found.problem is not None:
        return status, settings.openapi_retry_s
    return status, settings.openapi_refresh_s
