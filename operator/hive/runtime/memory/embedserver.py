"""The local embedding model over HTTP: OpenAI's ``POST /v1/embeddings`` and ``GET /v1/models``.

``hive model serve --embeddings`` runs this server, on aiohttp, in front of a
:class:`~hive.runtime.memory.embeddings.LocalOnnxEmbedder`, so agents anywhere in a cluster (or
any OpenAI client: the openai package, LangChain) share one copy of the model; pointing
``HIVE_AGENT__EMBEDDINGS__ENDPOINT`` elsewhere swaps it for another compatible server.

It is a process of its own, not a route added to the chat server: the chat model is llama.cpp's
server (llama-cpp-python, compiled from source, its own child process), while this one needs only
onnxruntime, so an embeddings pod starts in about a second without the llama.cpp build, and each
is sized, restarted and scaled for its own load.

Request: ``{"model": "all-MiniLM-L6-v2", "input": "text" | ["text", ...],
"encoding_format": "float" | "base64", "dimensions": 384}`` (the last two optional; the openai
package asks for base64 by default: little-endian float32). Response: ``{"object": "list",
"data": [{"object": "embedding", "index": 0, "embedding": [...]}], "model": ...,
"usage": {"prompt_tokens": n, "total_tokens": n}}``. Bad requests get HTTP 400 (404 for another
model) with OpenAI's error body, naming the field.
"""

from __future__ import annotations

import asyncio
import base64
import time
from types import TracebackType
from typing import Any

import numpy as np
from aiohttp import web

from hive.errors import Conflict, HiveError
from hive.runtime.memory.embeddings import LocalOnnxEmbedder

MAX_INPUTS = 2048  # OpenAI's limit on texts per request
_EMBEDDER: web.AppKey[LocalOnnxEmbedder] = web.AppKey("embedder", LocalOnnxEmbedder)


class _RequestError(Exception):
    def __init__(self, status: int, param: str | None, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.message = message
        self.code = code


def _error(status: int, message: str, param: str | None, code: str) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def _parse(body: Any, embedder: LocalOnnxEmbedder) -> tuple[list[str], str]:
    """The texts and the encoding format of an embeddings request, or a _RequestError."""
    if not isinstance(body, dict):
        raise _RequestError(400, None, "the body must be a JSON object", "invalid_body")
    model = body.get("model")
    if model is not None and model != embedder.model:
        raise _RequestError(
            404,
            "model",
            f"model '{model}' is not served here; this server serves '{embedder.model}'",
            "model_not_found",
        )
    raw = body.get("input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        texts = raw
    elif isinstance(raw, list) and not raw:
        raise _RequestError(400, "input", "input must not be empty", "invalid_input")
    elif raw is None:
        raise _RequestError(400, "input", "input is required", "invalid_input")
    else:
        raise _RequestError(
            400,
            "input",
            "input must be a string or a list of strings (not token arrays)",
            "invalid_input",
        )
    if len(texts) > MAX_INPUTS:
        raise _RequestError(
            400, "input", f"{len(texts)} texts; at most {MAX_INPUTS} per request", "invalid_input"
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _RequestError(
            400, "encoding_format", "encoding_format must be 'float' or 'base64'", "invalid_value"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != embedder.dimensions:
        raise _RequestError(
            400,
            "dimensions",
            f"model '{embedder.model}' returns {embedder.dimensions} dimensions, not {dimensions}",
            "invalid_value",
        )
    return texts, encoding


def embeddings_app(embedder: LocalOnnxEmbedder) -> web.Application:
    """The aiohttp application serving `embedder`."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[_EMBEDDER] = embedder
    created = int(time.time())

    async def embeddings(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON", None, "invalid_body")
        try:
            texts, encoding = _parse(body, embedder)
        except _RequestError as exc:
            return _error(exc.status, exc.message, exc.param, exc.code)
        try:
            vectors, tokens = await asyncio.to_thread(embedder.embed_sync, texts)
        except HiveError as exc:
            return _error(500, str(exc), None, "embedding_failed")
        data = [
            {"object": "embedding", "index": index, "embedding": _encode(vector, encoding)}
            for index, vector in enumerate(vectors)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": embedder.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(_: web.Request) -> web.Response:
        entry = {"id": embedder.model, "object": "model", "created": created, "owned_by": "hive"}
        return web.json_response({"object": "list", "data": [entry]})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True, "model": embedder.model})

    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values


class EmbeddingServer:
    """Serves `embedder` at http://`host`:`port` while the ``async with`` block runs. The model
    is loaded before the port opens, so a server that answers is ready."""

    def __init__(self, embedder: LocalOnnxEmbedder, *, host: str = "127.0.0.1", port: int = 8080):
        self.embedder = embedder
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:

        await asyncio.to_thread(self.embedder.load)
        self._runner = web.AppRunner(embeddings_app(self.embedder), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise Conflict(f"{self.host}:{self.port}: cannot listen ({exc.strerror})") from exc

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmbeddingServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
