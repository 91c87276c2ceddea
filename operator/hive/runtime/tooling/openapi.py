"""Implementation kind openapi: each selected operation of an OpenAPI document is a function.

The document comes inline (``implementation.openapi.document``), from a ConfigMap key (read by
the `ConfigMapReader` the process was given) or from a URL (fetched with httpx each time the
functions are built, so a changed document is seen on the next catalog change). Parsing and
checking (`hive.runtime.tooling.openapi_document`) run in a worker thread, once per distinct
document text. A call builds the request from the arguments (path parameters substituted and
URL-encoded, query, headers, the JSON body), adds the credential of the document's security
scheme from the Secret ``auth.secretRef`` names (http bearer, http basic as 'user:password',
apiKey in a header, the query or a cookie; oauth2 and openIdConnect as a bearer token), and
returns the answer's JSON (or its text). An error status is an `ExternalFailure` naming the
function, the operation and the status.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from hive.api.toolversion import OpenAPIAuth, OpenAPISource, ToolVersionSpec
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.tooling.kinds import Function, KindContext
from hive.runtime.tooling.openapi_document import (
    Document,
    Operation,
    check,
    load_text,
    operations,
    server_url,
)

log = logging.getLogger(__name__)

# (namespace, ConfigMap name, key) -> the key's text, or None when absent
ConfigMapReader = Callable[[str, str, str], Awaitable[str | None]]
PARSED_KEEP = 32  # distinct document texts whose parsed operations are kept
ERROR_BODY_CHARS = 500


class OpenApiKind:
    """Functions from OpenAPI documents; one HTTP client for every call of the process."""

    kind = "openapi"

    def __init__(
        self, config_maps: ConfigMapReader | None = None, client: httpx.AsyncClient | None = None
    ) -> None:
        self.config_maps = config_maps
        self._client = client
        self._parsed: OrderedDict[str, Document] = OrderedDict()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=32))
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        source = spec.implementation.openapi
        if source is None:
            raise InvalidInput(
                f"ToolVersion {spec.tool} {spec.version} implementation.openapi",
                "required for kind openapi",
            )
        where = f"ToolVersion {spec.tool} {spec.version} implementation.openapi"
        text, document_url = await self.document_text(source, context.namespace, where, spec)
        document = await self.parse(text, where)
        selected = await asyncio.to_thread(
            operations,
            document,
            spec.tool,
            operation_ids=source.operations,
            tags=source.tags,
            where=where,
        )
        timeout = spec.implementation.timeout_seconds
        made = []
        for operation in selected:
            base = server_url(operation, document_url, source.server)
            credential = credential_for(document, operation, source.auth, context, spec)
            made.append(
                Function(
                    name=operation.function,
                    description=operation.description,
                    parameters=operation.arguments,
                    call=self._caller(operation, base, credential, timeout),
                    output_schema=operation.output_schema,
                    source=f"{document_url or where}#{operation.operation_id}",
                )
            )
        return made

    async def document_text(
        self, source: OpenAPISource, namespace: str, where: str, spec: ToolVersionSpec
    ) -> tuple[str, str | None]:
        """The document's text and the URL it came from (None for inline and ConfigMap)."""
        if source.document is not None:
            return json.dumps(source.document, sort_keys=True), None
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            if self.config_maps is None:
                raise Unavailable(
                    f"{where}.configMapRef: this process cannot read ConfigMaps "
                    f"({ref.name}/{ref.key}); give the document inline or by URL"
                )
            text = await self.config_maps(namespace, ref.name, ref.key)
            if text is None:
                raise Unavailable(
                    f"{where}.configMapRef: ConfigMap {ref.name} key {ref.key} absent"
                )
            return text, None
        assert source.url is not None  # the model allows exactly one source
        return await fetch_document(self.client, source.url, spec.implementation.timeout_seconds), (
            source.url
        )

    async def parse(self, text: str, where: str) -> Document:
        """The checked document of `text`, parsed once per distinct text."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        found = self._parsed.get(digest)
        if found is not None:
            self._parsed.move_to_end(digest)
            return found
        document = await asyncio.to_thread(lambda: check(load_text(text, where), where))
        self._parsed[digest] = document
        while len(self._parsed) > PARSED_KEEP:
            self._parsed.popitem(last=False)
        return document

    def _caller(
        self,
        operation: Operation,
        base: str,
        credential: Credential,
        timeout: float,
    ) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        async def call(arguments: dict[str, Any]) -> Any:
            request = build_request(operation, base, arguments, credential)
            try:
                response = await self.client.send(
                    self.client.build_request(**request, timeout=timeout)
                )
            except httpx.TimeoutException as exc:
                raise Unavailable(
                    f"{operation.function} ({operation.method} {operation.path}): no answer "
                    f"within {timeout:g} s"
                ) from exc
            except httpx.HTTPError as exc:
                raise Unavailable(
                    f"{operation.function} ({operation.method} {operation.path}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            return answer(operation, response)

        return call


async def fetch_document(client: httpx.AsyncClient, url: str, timeout_s: float) -> str:
    """The text served at `url`; Unavailable when it cannot be had."""
    try:
        response = await client.get(
            url,
            timeout=timeout_s,
            headers={"Accept": "application/json, application/yaml"},
            follow_redirects=True,
        )
    except httpx.HTTPError as exc:
        raise Unavailable(f"OpenAPI document {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise Unavailable(f"OpenAPI document {url}: HTTP {response.status_code}")
    return response.text


@dataclass(frozen=True)
class Credential:
    """Where the secret value goes in each request of an operation."""

    place: str = "none"  # header, query, cookie, or none
    name: str = ""  # of the header, query parameter or cookie
    value: str = ""


NO_CREDENTIAL = Credential()


def credential_for(
    document: Document,
    operation: Operation,
    auth: OpenAPIAuth | None,
    context: KindContext,
    spec: ToolVersionSpec,
) -> Credential:
    """The credential `operation` is sent with: for the scheme `auth` names, else the first of
    the operation's security requirements the document defines; none when the operation asks
    for none (``security: []``) or for another scheme."""
    if auth is None or not operation.security:
        return NO_CREDENTIAL
    where = f"ToolVersion {spec.tool} {spec.version} implementation.openapi.auth"
    scheme_name = auth.scheme
    if scheme_name is None:
        scheme_name = next(
            (n for r in operation.security for n in r if n in document.security_schemes), None
        )
        if scheme_name is None:
            return NO_CREDENTIAL
    elif not any(scheme_name in r for r in operation.security):
        return NO_CREDENTIAL  # this operation does not ask for that scheme
    scheme = document.security_schemes.get(scheme_name)
    if scheme is None:
        known = ", ".join(document.security_schemes) or "none"
        raise InvalidInput(
            f"{where}.scheme", f"{scheme_name!r} is not in components.securitySchemes ({known})"
        )
    ref = auth.secret_ref
    value = context.secrets.get(f"{ref.name}/{ref.key}")
    if value is None:
        raise Unavailable(f"{where}.secretRef: Secret {ref.name} key {ref.key} could not be read")
    kind = scheme.get("type")
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
        token = base64.b64encode(value.encode()).decode()
        return Credential("header", "Authorization", f"Basic {token}")
    if kind in ("http", "oauth2", "openIdConnect"):
        return Credential("header", "Authorization", f"Bearer {value}")
    if kind == "apiKey":
        return Credential(str(scheme.get("in", "header")), str(scheme.get("name", "")), value)
    raise InvalidInput(f"{where}.scheme", f"{scheme_name}: security scheme type {kind} unsupported")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def build_request(
    operation: Operation, base: str, arguments: dict[str, Any], credential: Credential
) -> dict[str, Any]:
    """httpx.build_request's arguments for one call."""
    path = operation.path
    params: list[tuple[str, str]] = []
    headers: dict[str, str] = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    cookies: dict[str, str] = {}
    for parameter in operation.parameters:
        if parameter.argument not in arguments:
            continue
        value = arguments[parameter.argument]
        if parameter.place == "path":
            text = ",".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
            path = path.replace("{" + parameter.name + "}", quote(text, safe=""))
        elif parameter.place == "query":
            if isinstance(value, list) and parameter.explode:
                params.extend((parameter.name, _text(v)) for v in value)
            elif isinstance(value, list):
                params.append((parameter.name, ",".join(_text(v) for v in value)))
            else:
                params.append((parameter.name, _text(value)))
        elif parameter.place == "header":
            headers[parameter.name] = _text(value)
        else:
            cookies[parameter.name] = _text(value)
    if credential.place == "header":
        headers[credential.name] = credential.value
    elif credential.place == "query":
        params.append((credential.name, credential.value))
    elif credential.place == "cookie":
        cookies[credential.name] = credential.value
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request: dict[str, Any] = {
        "method": operation.method,
        "url": base + path,
        "params": params,
        "headers": headers,
    }
    if operation.body is not None and operation.body in arguments:
        body = arguments[operation.body]
        media = operation.body_media_type or "application/json"
        if media.startswith("text/"):
            request["content"] = _text(body).encode()
            headers["Content-Type"] = media
        else:
            request["content"] = json.dumps(body).encode()
            headers["Content-Type"] = "application/json" if media == "*/*" else media
    return request


def answer(operation: Operation, response: httpx.Response) -> Any:
    """The result of a call: the answer's JSON, or its text; an error status is raised."""
    if response.status_code >= 400:
        excerpt = response.text[:ERROR_BODY_CHARS].strip()
        hint = " (the credential was refused)" if response.status_code in (401, 403) else ""
        raise ExternalFailure(
            f"{operation.function} (operation {operation.operation_id}: {operation.method} "
            f"{operation.path}) answered HTTP {response.status_code}{hint}"
            + (f": {excerpt}" if excerpt else "")
        )
    if not response.content:
        return None
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            return response.text
    return response.text
