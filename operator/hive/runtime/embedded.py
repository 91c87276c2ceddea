"""The embedded default model: a small local language model that Hive runs itself, offline.

A team whose ModelSpec says ``provider: embedded`` needs no endpoint and no API key. The runtime
starts llama.cpp's OpenAI-compatible server (llama-cpp-python, ``python -m llama_cpp.server``)
on a free loopback port, serving SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB, fetched by
``make models`` / ``hack/models.sh`` into ``.models/``), and the agents talk to it with the same
:class:`~hive.runtime.models.OpenAICompatible` client as to any other server. The model is
tiny: good enough for demos, tests of the real path and short structured answers, not for
hard reasoning.

::

    async with EmbeddedModelServer() as server:
        model = embedded_model_client(server)
        reply = await model.complete([{"role": "user", "content": "hi"}])

The server uses the chat template stored in the GGUF file (SmolLM2's own ChatML template,
with its default system prompt when the conversation has none), so no ``--chat_format`` is
passed unless one is asked for.

Structured output: llama-cpp-python 0.3.36 turns a JSON schema into a grammar that constrains
sampling when the request carries ``response_format={"type": "json_object", "schema": {...}}``
(see :func:`schema_response_format`). ``{"type": "json_schema", ...}`` is refused by its request
validation with HTTP 500. The grammar enforces structure, types, ``required``, ``enum`` and
string lengths, but not ``minimum``/``maximum`` of numbers: validate the answer as usual.

This module only starts and stops a process; like the rest of hive.runtime it never imports
the operator or the Kubernetes client layer, and reads no environment variables itself (the
caller passes ``HIVE_EMBEDDED_MODEL`` in, if it wants that override).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel

from hive.errors import InvalidInput, NotInstalled, Unavailable
from hive.ports import free_port
from hive.process_groups import signal_group
from hive.runtime.models import OpenAICompatible

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
MODEL_ENV = "HIVE_EMBEDDED_MODEL"
REPO_ROOT = Path(__file__).resolve().parents[3]

# What `python -m llama_cpp.server` imports: the package and its [server] extra.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
# Variables that llama_cpp.server reads behind its command line's back (uvicorn's HOST and PORT
# override --host and --port); they are dropped from the server's environment.
_SERVER_ENV_OVERRIDES = ("HOST", "PORT", "CONFIG_FILE", "MODEL")
_ADDRESS_IN_USE = "address already in use"


def find_model(
    model_path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The GGUF file to serve.

    In order: `model_path`; ``HIVE_EMBEDDED_MODEL`` in `env` (pass the settings' or process's
    environment; this module does not read it); ``.models/<file>`` in the repository; the same
    under `cwd` (default: the working directory). A path given explicitly that does not exist is
    invalid input; no file at the default places means ``make models`` has not run.
    """
    if model_path is not None:
        return _existing(Path(model_path), "model_path")
    if env is not None and env.get(MODEL_ENV):
        return _existing(Path(env[MODEL_ENV]), MODEL_ENV)
    for folder in (REPO_ROOT, cwd or Path.cwd()):
        candidate = folder / ".models" / MODEL_FILE
        if candidate.is_file():
            return candidate.resolve()
    raise NotInstalled("the SmolLM2 model file", "make models")


def _existing(path: Path, field: str) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise InvalidInput(field, f"{path} is not a file (make models fetches the default model)")
    return path.resolve()


def require_llama_cpp() -> None:
    """Raise NotInstalled unless llama-cpp-python and its server extra can be imported."""
    for module in _SERVER_MODULES:
        if importlib.util.find_spec(module) is None:
            raise NotInstalled("llama-cpp-python", "make venv")


def server_argv(
    model: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    python: str = sys.executable,
    model_name: str = MODEL_NAME,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    chat_format: str | None = None,
) -> list[str]:
    """The command line of llama-cpp-python's OpenAI-compatible server for `model`.

    `chat_format` None uses the chat template stored in the GGUF file; `n_threads` None keeps
    the server's default (half the CPUs for generation, all of them for prompt processing).
    """
    argv = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        # mmap is enough for a 98 MB file; mlock needs CAP_IPC_LOCK, which pods rarely have.
        "--use_mlock",
        "false",
        # By default the server ends a stream early (with [DONE], as if it were complete) when
        # another request is waiting; agents of one team share this server, so let requests
        # take turns instead.
        "--interrupt_requests",
        "false",
    ]
    if n_threads is not None:
        argv += ["--n_threads", str(n_threads)]
    if chat_format is not None:
        argv += ["--chat_format", chat_format]
    return argv


def schema_response_format(schema: type[BaseModel] | Mapping[str, Any]) -> dict[str, Any]:
    """The ``response_format`` that makes llama-cpp-python constrain its answer to `schema`."""
    raw = schema.model_json_schema() if isinstance(schema, type) else dict(schema)
    return {"type": "json_object", "schema": raw}


class EmbeddedModelServer:
    """llama.cpp's OpenAI-compatible server for the embedded model, as a child process.

    Use it as an async context manager, or call :meth:`start` and :meth:`stop`. The server's
    output goes to `log_path` (default: a temporary file, removed on :meth:`stop`).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        chat_format: str | None = None,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
        log_path: Path | None = None,
    ) -> None:
        self.model_path = model_path
        self.env = env
        self.host = host
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_format = chat_format
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.model_name = MODEL_NAME
        self.model_file: Path | None = None
        self.startup_s: float | None = None
        self._requested_port = port
        self._port: int | None = None
        self._log_path = log_path
        self._tmp_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # --- what callers use ----------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise Unavailable("the embedded model server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. ``http://127.0.0.1:40123/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of the server's output, newest last."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_bytes()[-64_000:].decode(errors="replace")
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    async def start(self) -> EmbeddedModelServer:
        """Start the server and wait until it answers ``GET /v1/models``; idempotent."""
        if self.running:
            return self
        require_llama_cpp()
        self.model_file = find_model(self.model_path, env=self.env)
        started = time.monotonic()
        # A free port can be taken between choosing it and binding it: choose again, twice.
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            self._port = self._requested_port or free_port(self.host)
            self._spawn(self.model_file, self._port)
            try:
                await self._wait_ready(started + self.start_timeout_s)
            except Unavailable:
                lost_race = _ADDRESS_IN_USE in self.log_tail(40).lower()
                await self.stop(keep_log=True)
                if lost_race and attempt + 1 < attempts:
                    continue
                raise
            except BaseException:  # cancelled while waiting: leave nothing running
                _terminate(self._release(), 2.0)
                raise
            break
        self.startup_s = time.monotonic() - started
        return self

    async def stop(self, *, keep_log: bool = False) -> None:
        """Stop the server: SIGTERM to its process group, wait, then SIGKILL; idempotent."""
        await asyncio.to_thread(_terminate, self._release(), self.stop_timeout_s)
        if not keep_log and self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
            self._log_path = None

    async def __aenter__(self) -> EmbeddedModelServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- inside ----------------------------------------------------------------------------

    def _release(self) -> subprocess.Popen[bytes] | None:
        """Take the process out of this object's hands, for stopping."""
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return proc

    def argv(self, model: Path, port: int) -> list[str]:
        return server_argv(
            model,
            port,
            host=self.host,
            model_name=self.model_name,
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            chat_format=self.chat_format,
        )

    def _spawn(self, model: Path, port: int) -> None:
        if self._log_path is None:
            self._tmp_dir = Path(tempfile.mkdtemp(prefix="hive-embedded-"))
            self._log_path = self._tmp_dir / "llama-server.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        child_env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_OVERRIDES}
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv(model, port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,  # its own process group: one signal reaches all of it
            )
        # Never leave a server behind when the object is dropped without stop().
        self._finalizer = weakref.finalize(self, _terminate, self._proc, 2.0)

    async def _wait_ready(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None
        url = f"http://{self.host}:{self._port}/v1/models"
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    raise Unavailable(
                        f"the embedded model server exited with status {code} before it was "
                        f"ready; last log lines: {self._oneline_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"the embedded model server was not ready on {url} within "
                        f"{self.start_timeout_s:g}s; last log lines: {self._oneline_tail()}"
                    )
                await asyncio.sleep(0.1)

    def _oneline_tail(self) -> str:
        tail = " | ".join(line.strip() for line in self.log_tail(6).splitlines())
        where = f" (log: {self._log_path})" if self._log_path is not None else ""
        return (tail or "(no output)") + where


def _terminate(proc: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM to the process group, wait up to `grace_s`, then SIGKILL; reaps the child."""
    if proc is None or proc.poll() is not None:
        return
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)


def embedded_model_client(server: EmbeddedModelServer, **options: Any) -> OpenAICompatible:
    """An OpenAICompatible client for a started server; `options` go to the client."""
    options.setdefault("timeout_s", 120.0)  # a 2-core machine may need a while for long answers
    options.setdefault("structured_format", "json_object_schema")  # a grammar from the schema
    options.setdefault("max_tokens", 384)  # a 135M model rambles; keep answers and runs short
    return OpenAICompatible(base_url=server.base_url, model=server.model_name, **options)
