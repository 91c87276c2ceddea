"""Language models over the OpenAI-compatible chat-completions API.

One client for OpenAI, vLLM, Ollama, the llama.cpp server and gateways: plain and streamed
completions, tool calls, structured output validated against a pydantic model with bounded
repair rounds, per-request timeouts, exponential backoff on 429 / 5xx / transport errors, and
token and cost accounting.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from hive.errors import ExternalFailure, HiveError, InvalidInput, Unavailable
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain

Message = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class InvalidModelOutput(ExternalFailure):
    """The model kept answering in a shape that could not be used."""


def status_error(where: str, status: int, text: str = "") -> HiveError:
    """The error a completion ends with when the server answers `status` (after the retries,
    for the statuses that are retried)."""
    if status in RETRYABLE_STATUS:
        return Unavailable(f"{where}: HTTP {status}: {text}".rstrip(": "))
    if status == 404:
        return InvalidInput("model", f"{where}: not found (HTTP 404)")
    if status in (401, 403):
        return InvalidInput("model.secretRef", f"{where}: the API key was refused")
    return ExternalFailure(f"{where}: HTTP {status}: {text}")


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cost: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Reply:
    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    """What else is known of the answer: ``cache`` where a cache gave it (kind exact or
    semantic, the level, the similarity, the tokens it saved)."""


@dataclass
class Pricing:
    """Cost per 1,000 prompt and completion tokens, in any currency."""

    prompt_per_1k: float = 0.0
    completion_per_1k: float = 0.0


@dataclass
class OpenAICompatible:
    """A chat model served at `base_url` (ending in /v1 for most servers)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    pricing: Pricing = field(default_factory=Pricing)
    usage: Usage = field(default_factory=Usage)
    transport: httpx.AsyncBaseTransport | None = None
    user: str | None = None
    # How structured answers are asked for: "json_schema" (OpenAI, vLLM), "json_object_schema"
    # (llama.cpp's server: a grammar from the schema), or "json_object" (JSON, any shape).
    structured_format: str = "json_schema"
    repair_temperature: float = 0.7  # a model at temperature 0 repeats its mistake
    max_tokens: int | None = None  # default answer length limit, unless a request sets one
    chain: Chain = EMPTY  # the middlewares every completion passes (faults, breakers, ...)
    clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False, compare=False
    )

    def for_agent(self, agent: str) -> OpenAICompatible:
        """The same model for one agent: requests name it as `user`, usage is counted apart."""
        return replace(self, user=agent, usage=Usage(), chain=self.chain.with_agent(agent))

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop, kept open and shared with every copy
        made by `for_agent` (building one costs ~20 ms: it loads the CA bundle)."""
        loop = asyncio.get_running_loop()
        client = self.clients.get(loop)
        if client is None or client.is_closed:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            client = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                headers=headers,
                timeout=self.timeout_s,
                transport=self.transport,
            )
            self.clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        client = self.clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _body(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None, **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), **extra}
        if self.user:
            body["user"] = self.user
        if self.max_tokens is not None:
            body.setdefault("max_tokens", self.max_tokens)
        if tools:
            body["tools"] = list(tools)
        return body

    def _account(self, prompt: int, completion: int) -> None:
        self.usage.requests += 1
        self.usage.prompt_tokens += prompt
        self.usage.completion_tokens += completion
        self.usage.cost += (
            prompt * self.pricing.prompt_per_1k + completion * self.pricing.completion_per_1k
        ) / 1000

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        """POST /chat/completions with retries; raises a one-line HiveError when it gives up."""
        where = f"model '{self.model}' at {self.base_url}"
        last = "no attempt"
        client = self._client()
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = await client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                last = f"no answer within {self.timeout_s:g}s"
                continue
            except httpx.TransportError as exc:
                last = f"unreachable ({exc.__class__.__name__})"
                continue
            if response.status_code in RETRYABLE_STATUS:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise status_error(where, response.status_code, response.text[:200])
            return response
        raise Unavailable(f"{where}: {last} after {self.max_retries + 1} attempts")

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        request: dict[str, Any] = {"messages": list(messages), "tools": tools, "options": extra}
        call = Call(CallKind.MODEL, self.model, "complete", self.user or "", request)
        return await self.chain.run(
            call, lambda: self._complete(request["messages"], tools, **request["options"])
        )

    async def _complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        data = (await self._post(self._body(messages, tools, **extra))).json()
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise InvalidModelOutput(f"model '{self.model}': reply without choices") from exc
        usage = data.get("usage") or {}
        reply = Reply(
            content=message.get("content"),
            tool_calls=[_tool_call(c) for c in message.get("tool_calls") or []],
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )
        self._account(reply.prompt_tokens, reply.completion_tokens)
        return reply

    async def stream(self, messages: Sequence[Message], **extra: Any) -> AsyncIterator[str]:
        """The answer's text piece by piece, as the server sends it (server-sent events).

        Failures before the first piece are retried like any request; a stream cut in the
        middle is an error, since the pieces already given cannot be taken back.
        """
        body = self._body(
            messages, None, stream=True, stream_options={"include_usage": True}, **extra
        )
        where = f"model '{self.model}' at {self.base_url}"
        prompt = completion = pieces = 0
        started = False
        client = self._client()
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                async with client.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code in RETRYABLE_STATUS:
                        continue
                    if response.status_code >= 400:
                        await response.aread()
                        raise ExternalFailure(f"{where}: HTTP {response.status_code}")
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == "[DONE]":
                            break
                        event = json.loads(payload)
                        if event.get("usage"):
                            prompt = int(event["usage"].get("prompt_tokens", 0))
                            completion = int(event["usage"].get("completion_tokens", 0))
                        for choice in event.get("choices") or []:
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                started = True
                                pieces += 1
                                yield text
                    # servers that ignore include_usage (llama.cpp's) send a piece per token
                    self._account(prompt, completion or pieces)
                    return
            except httpx.TransportError as exc:
                if started:
                    raise Unavailable(f"{where}: stream cut ({exc.__class__.__name__})") from exc
                continue
        raise Unavailable(f"{where}: no stream after {self.max_retries + 1} attempts")

    def response_format(self, schema: type[BaseModel]) -> dict[str, Any]:
        raw = schema.model_json_schema()
        if self.structured_format == "json_object_schema":
            return {"type": "json_object", "schema": raw}
        if self.structured_format == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": raw, "strict": False},
        }

    async def structured(
        self, messages: Sequence[Message], schema: type[M], *, repairs: int = 2, **extra: Any
    ) -> M:
        """An answer validated as `schema`; invalid answers are sent back up to `repairs` times.

        Repairs are asked at `repair_temperature` (unless the caller set a temperature), since a
        model asked the same way at temperature 0 tends to give the same wrong answer again.
        """

        def parse(text: str) -> M:
            body = json_text(text)
            try:
                try:
                    return schema.model_validate_json(body)
                except ValidationError as exc:
                    if exc.errors()[0]["type"] != "json_invalid":
                        raise
                    # Small models put raw newlines and tabs inside strings: JSON forbids them,
                    # their meaning is plain, so they are read as they were meant.
                    try:
                        loose = json.loads(body, strict=False)
                    except json.JSONDecodeError:
                        raise exc from None
                    return schema.model_validate(loose)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise InvalidInput(where or schema.__name__, first["msg"]) from exc

        options = {"response_format": self.response_format(schema), **extra}
        repair = {} if "temperature" in extra else {"temperature": self.repair_temperature}
        answer, problem = await answer_until_parsed(
            self.complete,
            messages,
            parse,
            schema=schema.model_json_schema(),
            repairs=repairs,
            adjective="valid",
            options=options,
            repair_options=repair,
        )
        if answer is None:
            raise InvalidModelOutput(
                f"model '{self.model}': no valid {schema.__name__} after {repairs + 1} answers "
                f"({problem})"
            )
        return answer


async def answer_until_parsed(
    complete: Callable[..., Awaitable[Reply]],
    messages: Sequence[Message],
    parse: Callable[[str], T],
    *,
    schema: dict[str, Any],
    repairs: int,
    adjective: str,
    options: dict[str, Any],
    repair_options: dict[str, Any] | None = None,
) -> tuple[T | None, str]:
    """The one repair loop: ask, parse the answer, send what was wrong back, `repairs` times.

    `parse` raises InvalidInput naming the problem. Returns the parsed answer and "", or None
    and the last problem; the caller says what it could not get.
    """
    conversation = list(messages)
    problem = ""
    for attempt in range(repairs + 1):
        extra = {**options, **(repair_options or {})} if attempt else options
        reply = await complete(conversation, **extra)
        text = reply.content or ""
        try:
            return parse(text), ""
        except InvalidInput as exc:
            problem = str(exc)
        conversation += [
            {"role": "assistant", "content": text},
            {
                "role": "user",
                "content": (
                    f"That was not {adjective}: {problem}. Answer again with only a JSON object "
                    f"matching this schema: {json.dumps(schema)}"
                ),
            },
        ]
    return None, problem


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
    except json.JSONDecodeError as exc:
        raise InvalidModelOutput(
            f"tool call {function.get('name')!r}: arguments are not JSON ({exc.msg})"
        ) from exc
    return ToolCall(id=str(raw.get("id", "")), name=str(function.get("name", "")), arguments=parsed)


def strip_fence(text: str) -> str:
    """The text inside a ``` fence (with or without prose around it), else the text itself."""
    stripped = text.strip()
    start = stripped.find("```")
    if start < 0:
        return stripped
    inner = stripped[start + 3 :]
    inner = inner.split("\n", 1)[1] if "\n" in inner else ""
    end = inner.find("```")
    return (inner[:end] if end >= 0 else inner).strip()


def json_text(text: str) -> str:
    """The JSON in a model's answer: unfenced, and cut to the outermost {...} or [...] when
    there is prose around it. Returns the best candidate; parsing is the caller's business."""
    body = strip_fence(text)
    try:
        json.loads(body, strict=False)
        return body
    except json.JSONDecodeError:
        pass
    for opening, closing in ("{}", "[]"):
        first, last = body.find(opening), body.rfind(closing)
        if 0 <= first < last:
            candidate = body[first : last + 1]
            try:
                json.loads(candidate, strict=False)
                return candidate
            except json.JSONDecodeError:
                continue
    return body
