"""The dev Weaviate's command line and environment: loopback, the settings' ports, no
vectorizer, no telemetry or profiler, and API-key auth only when a key is set."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hive.dev.weaviate import DevWeaviate
from hive.errors import Conflict, NotInstalled
from hive.settings import DevSettings, DevWeaviateSettings

PORTS = DevWeaviateSettings(
    http_port=41080,
    grpc_port=41051,
    gossip_port=41946,
    data_port=41947,
    raft_port=41300,
    raft_rpc_port=41301,
)


def server(tmp_path: Path, **overrides: object) -> DevWeaviate:
    config = DevWeaviateSettings.model_validate({**PORTS.model_dump(), **overrides})
    return DevWeaviate(DevSettings(state_dir=tmp_path, testbin_dir=tmp_path, weaviate=config))


def test_it_listens_on_loopback_with_the_settings_ports(tmp_path: Path) -> None:
    weaviate = server(tmp_path)
    assert weaviate.argv(Path("/bin/weaviate-server")) == [
        "/bin/weaviate-server",
        "--host",
        "127.0.0.1",
        "--port",
        "41080",
        "--scheme",
        "http",
    ]
    env = weaviate.environment()
    assert weaviate.url == "http://127.0.0.1:41080"
    assert env["GRPC_PORT"] == "41051"
    assert env["CLUSTER_BIND_ADDR"] == env["CLUSTER_ADVERTISE_ADDR"] == "127.0.0.1"
    assert (env["CLUSTER_GOSSIP_BIND_PORT"], env["CLUSTER_DATA_BIND_PORT"]) == ("41946", "41947")
    assert (env["RAFT_PORT"], env["RAFT_INTERNAL_RPC_PORT"]) == ("41300", "41301")
    assert env["PERSISTENCE_DATA_PATH"] == str(tmp_path / "weaviate" / "data")
    assert env["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert env["DISABLE_TELEMETRY"] == env["GO_PROFILING_DISABLE"] == "true"


def test_anonymous_unless_an_api_key_is_set(tmp_path: Path) -> None:
    anonymous = server(tmp_path).environment()
    assert anonymous["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "true"
    assert "AUTHENTICATION_APIKEY_ENABLED" not in anonymous

    keyed = server(tmp_path, api_key="k-1").environment()
    assert keyed["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert keyed["AUTHENTICATION_APIKEY_ENABLED"] == "true"
    assert keyed["AUTHENTICATION_APIKEY_ALLOWED_KEYS"] == "k-1"
    assert keyed["AUTHENTICATION_APIKEY_USERS"] == "hive"


def test_a_missing_binary_names_make_testbin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotInstalled, match="make testbin"):
        server(tmp_path).binary()


def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "weaviate-server").write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        weaviate = server(tmp_path, http_port=taken.getsockname()[1])
        with pytest.raises(Conflict, match="HIVE_DEV__WEAVIATE__HTTP_PORT"):
            weaviate.start()
    assert weaviate.processes.get("weaviate") is None
