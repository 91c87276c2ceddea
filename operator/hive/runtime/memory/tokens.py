"""Token counts of chat requests, with the model's own tokenizer where Hive can reach it.

Working memory keeps every request within a token budget, so it counts what a request holds:
each message's content, the framing the chat template wraps around each message, and the
framing of the request itself (the generation prompt, a BOS token).

* llama.cpp's server (llama-cpp-python, the embedded model and ``hive model serve``) answers
  ``POST /extras/tokenize/count`` and ``/extras/tokenize`` / ``/extras/detokenize`` with the
  model's own GGUF tokenizer: :class:`LlamaServerTokens` counts with them exactly and learns
  the chat template's framing from two one-token completions (the server's own
  ``prompt_tokens``), so its count of a plain conversation is the server's count.
* For every other model (OpenAI, vLLM, Ollama, gateways) no tokenizer is available offline:
  tiktoken is installed (by langchain-openai) but downloads its BPE files on first use, and no
  package ships them. :class:`EstimatedTokens` then estimates, on the high side (one token per
  three bytes of UTF-8), and says so: ``exact`` is False and the name ends in "estimate".

:func:`counter_for` picks one for a chat model client by asking its server once.
"""

from __future__ import annotations

import asyncio
import json
import math
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from hive.errors import ExternalFailure, Unavailable
from hive.runtime.models import Message

BYTES_PER_TOKEN = 3  # a high estimate of tokens: English runs ~4.5 bytes a token, code ~3.5
ESTIMATED_MESSAGE_FRAMING = 6  # ChatML: <|im_start|>, the role, a newline, <|im_end|> and \n
ESTIMATED_REQUEST_FRAMING = 3  # the generation prompt: <|im_start|>assistant\n


class TokenCounter(Protocol):
    """Counts text in one model's tokens and cuts text to a number of them."""

    @property
    def name(self) -> str: ...

    @property
    def exact(self) -> bool: ...

    def framing(self, role: str) -> int:
        """Tokens the chat template adds around the content of a message of `role`."""
        ...

    @property
    def request_framing(self) -> int:
        """Tokens the chat template adds once per request (the generation prompt, BOS)."""
        ...

    async def count(self, texts: Sequence[str]) -> list[int]: ...

    async def truncate(self, text: str, max_tokens: int) -> str:
        """The longest head of `text` that counts at most `max_tokens` tokens."""
        ...


def message_text(message: Message) -> str:
    """What of a message a chat template renders as text: its content, and its tool calls."""
    text = str(message.get("content") or "")
    if message.get("tool_calls"):
        text += json.dumps(message["tool_calls"], separators=(",", ":"))
    return text


def tools_text(tools: Sequence[dict[str, Any]] | None) -> str:
    """The tool schemas of a request as the text a template would render (an upper bound)."""
    return json.dumps(list(tools), separators=(",", ":")) if tools else ""


async def count_request(
    counter: TokenCounter,
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None = None,
) -> int:
    """The tokens of a whole request: framing, every message and the tool schemas."""
    texts = [message_text(m) for m in messages]
    schema = tools_text(tools)
    counts = await counter.count([*texts, schema] if schema else texts)
    framing = sum(counter.framing(str(m.get("role") or "user")) for m in messages)
    return counter.request_framing + framing + sum(counts)


@dataclass
class EstimatedTokens:
    """An estimate, for models whose tokenizer Hive cannot run: a token per 3 bytes of UTF-8."""

    model: str = "unknown"
    message_framing: int = ESTIMATED_MESSAGE_FRAMING
    request_framing: int = ESTIMATED_REQUEST_FRAMING
    exact: bool = False

    def framing(self, role: str) -> int:
        return self.message_framing

    @property
    def name(self) -> str:
        return f"{self.model} (estimate: 1 token per {BYTES_PER_TOKEN} bytes)"

    def count_one(self, text: str) -> int:
        return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)

    async def count(self, texts: Sequence[str]) -> list[int]:
        return [self.count_one(t) for t in texts]

    async def truncate(self, text: str, max_tokens: int) -> str:
        head = text.encode()[: max(max_tokens, 0) * BYTES_PER_TOKEN]
        return head.decode(errors="ignore")


@dataclass
class LlamaServerTokens:
    """Exact counts from a llama.cpp server (llama-cpp-python) at `root` (no /v1), cached."""

    root: str
    model: str
    api_key: str | None = None
    message_framing: int = 0  # around a user message's content
    request_framing: int = 0
    exact: bool = True
    role_tokens: dict[str, int] = field(default_factory=dict)
    cache_size: int = 4096
    timeout_s: float = 30.0
    _special: int = 0  # tokens the server adds to any text it tokenizes (a BOS, if the model has)
    _cache: OrderedDict[str, int] = field(default_factory=OrderedDict, repr=False)
    _clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    @property
    def name(self) -> str:
        return f"{self.model} (llama.cpp tokenizer)"

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client().post(f"{self.root}{path}", json=body)
        except httpx.TransportError as exc:
            raise Unavailable(f"{self.root}{path}: {exc!r}") from exc
        if response.status_code != 200:
            raise ExternalFailure(
                f"{self.root}{path}: HTTP {response.status_code}: {response.text[:200]}"
            )
        data: dict[str, Any] = response.json()
        return data

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop, kept open (building one costs ~20 ms)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False, headers=headers)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    async def _count_raw(self, text: str) -> int:
        return int((await self._post("/extras/tokenize/count", {"input": text}))["count"])

    async def calibrate(self) -> LlamaServerTokens:
        """Learn the chat template's framing from the server's own prompt counts."""
        self._special = await self._count_raw("")
        word = "hello"
        content = await self._count_raw(word) - self._special
        one = await self._prompt_tokens([{"role": "system", "content": word}])
        two = await self._prompt_tokens(
            [{"role": "system", "content": word}, {"role": "user", "content": word}]
        )
        self.message_framing = two - one - content
        roles = ("system", "user", "assistant", "tool")
        counted = await asyncio.gather(*(self._count_raw(role) for role in roles))
        self.role_tokens = {r: n - self._special for r, n in zip(roles, counted, strict=True)}
        self.request_framing = one - content - self.framing("system")
        return self

    def framing(self, role: str) -> int:
        """The user message's framing, with the role's name in place of "user" (roles are
        spelled out in the template: "assistant" is two tokens where "user" is one)."""
        user = self.role_tokens.get("user", 0)
        return self.message_framing + self.role_tokens.get(role, user) - user

    async def _prompt_tokens(self, messages: list[Message]) -> int:
        body = {"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0}
        return int((await self._post("/v1/chat/completions", body))["usage"]["prompt_tokens"])

    async def count(self, texts: Sequence[str]) -> list[int]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            counted = await asyncio.gather(*(self._count_raw(t) for t in missing))
            for text, raw in zip(missing, counted, strict=True):
                self._cache[text] = raw - self._special
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [self._cache[t] if t in self._cache else await self._one(t) for t in texts]

    async def _one(self, text: str) -> int:  # evicted between counting and answering
        return await self._count_raw(text) - self._special

    async def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        tokens: list[int] = (await self._post("/extras/tokenize", {"input": text}))["tokens"]
        tokens = tokens[self._special :]
        if len(tokens) <= max_tokens:
            return text
        keep = max_tokens
        while keep > 0:  # a cut inside a character is refused, or re-tokenizes longer: cut more
            try:
                detokenized = await self._post("/extras/detokenize", {"tokens": tokens[:keep]})
            except ExternalFailure:  # HTTP 500: the tokens end inside a UTF-8 character
                keep -= 1
                continue
            head = str(detokenized["text"])
            if (await self.count([head]))[0] <= max_tokens:
                return head
            keep -= 1
        return ""


_COUNTERS: dict[tuple[str, str], TokenCounter] = {}


async def counter_for(model: object) -> TokenCounter:
    """The best counter for a chat model client: the llama.cpp server's own tokenizer when
    the client talks to one, else an estimate. Asked once per server and model."""
    base_url = getattr(model, "base_url", None)
    name = str(getattr(model, "model", "unknown"))
    if not isinstance(base_url, str) or getattr(model, "transport", None) is not None:
        return EstimatedTokens(name)  # not an HTTP client, or one with a transport of its own
    key = (base_url, name)
    known = _COUNTERS.get(key)
    if known is None:
        known = await _probe(base_url, name, getattr(model, "api_key", None))
        if known is not None:
            _COUNTERS[key] = known
    return known or EstimatedTokens(name)


async def _probe(base_url: str, name: str, api_key: str | None) -> TokenCounter | None:
    """The server's tokenizer; an estimate when it has none; None when it did not answer
    (asked again next time)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    counter = LlamaServerTokens(root, name, api_key=api_key)
    found: TokenCounter | None
    try:
        await counter._count_raw("")
    except Unavailable:
        found = None
    except (httpx.HTTPError, ExternalFailure, KeyError, ValueError):
        found = EstimatedTokens(name)
    else:
        try:
            return await counter.calibrate()
        except (httpx.HTTPError, ExternalFailure, KeyError, ValueError):
            found = None  # it tokenizes but did not answer a completion: try again next time
    await counter.aclose()  # the counter is not kept: nor is its connection
    return found
