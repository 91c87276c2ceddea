"""The embedded model server's pieces that need no model: command line, model lookup, client.

The same paths run for real in tests/integration/test_embedded_model.py.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from hive.errors import InvalidInput, NotInstalled, Unavailable
from hive.runtime import embedded
from hive.runtime.embedded import (
    MODEL_FILE,
    MODEL_NAME,
    EmbeddedModelServer,
    embedded_model_client,
    find_model,
    require_llama_cpp,
    schema_response_format,
    server_argv,
)


def flags(argv: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line, after `python -m module`."""
    rest = argv[3:]
    assert len(rest) % 2 == 0, rest
    return {rest[i]: rest[i + 1] for i in range(0, len(rest), 2)}


def test_server_argv_runs_llama_cpp_server_on_loopback() -> None:
    argv = server_argv(Path("/m/model.gguf"), 40123)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert flags(argv) == {
        "--model": "/m/model.gguf",
        "--model_alias": MODEL_NAME,
        "--host": "127.0.0.1",
        "--port": "40123",
        "--n_ctx": "2048",
        "--use_mlock": "false",
        "--interrupt_requests": "false",
    }


def test_server_argv_passes_threads_and_chat_format_only_when_asked() -> None:
    argv = server_argv(
        Path("m.gguf"), 1, python="/py", n_ctx=4096, n_threads=2, chat_format="chatml"
    )
    assert argv[0] == "/py"
    got = flags(argv)
    assert (got["--n_ctx"], got["--n_threads"], got["--chat_format"]) == ("4096", "2", "chatml")


def test_the_server_object_builds_its_command_from_its_options() -> None:
    server = EmbeddedModelServer(n_ctx=1024, n_threads=1, chat_format="chatml", host="127.0.0.2")
    got = flags(server.argv(Path("x.gguf"), 5555))
    assert got["--host"] == "127.0.0.2"
    assert got["--port"] == "5555"
    assert got["--n_ctx"] == "1024"
    assert got["--chat_format"] == "chatml"


def place_model(folder: Path) -> Path:
    path = folder / ".models" / MODEL_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    return path


def test_find_model_prefers_the_argument_then_the_env_then_the_repo_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, cwd, other = tmp_path / "repo", tmp_path / "cwd", tmp_path / "x.gguf"
    other.write_bytes(b"GGUF")
    in_repo, in_cwd = place_model(repo), place_model(cwd)
    monkeypatch.setattr(embedded, "REPO_ROOT", repo)
    env = {"HIVE_EMBEDDED_MODEL": str(other)}
    assert find_model(other, env={}, cwd=cwd) == other
    assert find_model(None, env=env, cwd=cwd) == other
    assert find_model(None, env={"HIVE_EMBEDDED_MODEL": ""}, cwd=cwd) == in_repo
    in_repo.unlink()
    assert find_model(None, cwd=cwd) == in_cwd


def test_no_model_file_means_make_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "REPO_ROOT", tmp_path)
    with pytest.raises(NotInstalled) as info:
        find_model(cwd=tmp_path)
    assert (
        str(info.value) == "the SmolLM2 model file is not installed; install it with: make models"
    )


def test_an_explicit_path_that_is_not_a_file_names_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^model_path: .*missing\.gguf is not a file"):
        find_model(tmp_path / "missing.gguf")
    with pytest.raises(InvalidInput, match=r"^HIVE_EMBEDDED_MODEL: "):
        find_model(env={"HIVE_EMBEDDED_MODEL": str(tmp_path)})


def hide_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "llama_cpp" else real(name, package)

    monkeypatch.setattr("importlib.util.find_spec", find_spec)


def test_missing_llama_cpp_means_make_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_llama_cpp(monkeypatch)
    with pytest.raises(NotInstalled) as info:
        require_llama_cpp()
    assert str(info.value) == "llama-cpp-python is not installed; install it with: make venv"


async def test_start_checks_llama_cpp_before_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_llama_cpp(monkeypatch)
    server = EmbeddedModelServer(Path("/does/not/matter.gguf"))
    with pytest.raises(NotInstalled, match=r"^llama-cpp-python is not installed"):
        await server.start()
    assert not server.running


class Review(BaseModel):
    score: float = Field(ge=0, le=1)
    feedback: str


def test_schema_response_format_is_llama_cpps_json_object_with_schema() -> None:
    expected = {"type": "json_object", "schema": Review.model_json_schema()}
    assert schema_response_format(Review) == expected
    assert schema_response_format({"type": "object"}) == {
        "type": "json_object",
        "schema": {"type": "object"},
    }


async def test_an_unstarted_server_has_no_address_and_stops_quietly() -> None:
    server = EmbeddedModelServer()
    assert not server.running
    assert server.pid is None
    with pytest.raises(Unavailable, match="not started"):
        _ = server.base_url
    await server.stop()


def test_the_client_points_at_the_server() -> None:
    server = EmbeddedModelServer()
    server._port = 40123  # as after start()
    client = embedded_model_client(server, max_retries=1)
    assert client.base_url == "http://127.0.0.1:40123/v1"
    assert client.model == MODEL_NAME
    assert client.api_key is None
    assert client.max_retries == 1
    assert client.timeout_s == 120.0
