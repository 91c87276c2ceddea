"""Kind http: a ToolVersion whose calls are a JSON POST to ``implementation.ref``.

The arguments (already validated and migrated by the catalog) are the request body; the JSON
answer is the result. The credential comes from a Secret (``implementation.auth``): a bearer
token, or an API key in a header or a query parameter. Each attempt has the version's
``timeoutSeconds``; an answer 429 or 5xx, or none at all, is tried again up to ``retries`` times
with exponential backoff (a Retry-After of the server is honoured, within a cap). The status of
the last answer is left in `CALL_STATUS` for the catalog, which records the call's outcome.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from hive.api.toolversion import HttpAuth, HttpAuthType, ToolVersionSpec
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.tooling.kinds import CALL_STATUS, Function, KindContext
from hive.settings import get_settings

RETRIED = frozenset({429, 500, 502, 503, 504})


def secret_key(auth: HttpAuth) -> str:
    return f"{auth.secret_ref.name}/{auth.secret_ref.key}"


class HttpKind:
    """Calls over one shared connection pool."""

    kind = "http"

    def __init__(self, backoff_s: float | None = None, max_backoff_s: float | None = None) -> None:
        settings = get_settings().tools
        self.backoff_s = settings.http_backoff_s if backoff_s is None else backoff_s
        self.max_backoff_s = settings.http_max_backoff_s if max_backoff_s is None else max_backoff_s
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=32))
        return self._client

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        url = spec.implementation.ref or ""
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"ToolVersion {spec.tool} {spec.version} implementation.ref",
                f"{url!r} is not an http(s) URL",
            )
        headers = {"Accept": "application/json"}
        params: dict[str, str] = {}
        auth = spec.implementation.auth
        if auth is not None:
            value = context.secrets.get(secret_key(auth))
            if value is None:
                raise Unavailable(
                    f"tool {spec.tool} {spec.version}: Secret {auth.secret_ref.name} key "
                    f"{auth.secret_ref.key} (implementation.auth.secretRef) could not be read"
                )
            if auth.type == HttpAuthType.BEARER:
                headers["Authorization"] = f"Bearer {value}"
            elif auth.type == HttpAuthType.HEADER:
                headers[auth.name or "X-API-Key"] = value
            else:
                params[auth.name or "api_key"] = value
        timeout = spec.implementation.timeout_seconds
        retries = spec.implementation.retries
        where = f"tool {spec.tool} {spec.version}"
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        shown = target.copy_with(query=None)  # in errors: never a key given in the query

        async def call(arguments: dict[str, Any]) -> Any:
            return await self._post(where, target, shown, arguments, headers, timeout, retries)

        return [
            Function(
                name=spec.tool,
                description=spec.description,
                parameters=spec.input_schema,
                call=call,
                output_schema=spec.output_schema,
                source=url,
            )
        ]

    async def _post(
        self,
        where: str,
        url: httpx.URL,
        shown: httpx.URL,
        arguments: dict[str, Any],
        headers: dict[str, str],
        timeout_s: float,
        retries: int,
    ) -> Any:
        attempt = 0
        while True:
            wait = self._backoff(attempt)
            try:
                response = await self.client.post(
                    url, json=arguments, headers=headers, timeout=timeout_s
                )
            except httpx.TimeoutException as exc:
                CALL_STATUS.set("timeout")
                problem: Exception = Unavailable(
                    f"{where}: no answer from {shown} in {timeout_s:g} s"
                )
                problem.__cause__ = exc
            except httpx.HTTPError as exc:
                CALL_STATUS.set("unreachable")
                problem = Unavailable(f"{where}: {shown} unreachable: {exc}")
            else:
                CALL_STATUS.set(str(response.status_code))
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ExternalFailure(
                            f"{where}: {shown} answered {response.status_code} with no JSON "
                            f"({response.text[:200]!r})"
                        ) from exc
                text = response.text[:500]
                if response.status_code not in RETRIED:
                    raise ExternalFailure(
                        f"{where}: {shown} answered {response.status_code}: {text}"
                    )
                problem = Unavailable(f"{where}: {shown} answered {response.status_code}: {text}")
                wait = max(wait, self._retry_after(response))
            if attempt >= retries:
                raise problem
            attempt += 1
            await asyncio.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_backoff_s, self.backoff_s * float(2**attempt))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    def _retry_after(self, response: httpx.Response) -> float:
        try:
            return min(self.max_backoff_s, max(0.0, float(response.headers.get("Retry-After", 0))))
        except ValueError:
            return 0.0

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
