"""The dev OpenBao server: a real server (raft storage, TLS), initialised once, unsealed again
from its key file on every start."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from hive.dev.vault import DevVault
from hive.ports import free_port
from tests.support import dev_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[DevVault]:
    server = DevVault(
        dev_settings(tmp_path, vault_port=free_port(), vault_cluster_port=free_port())
    )
    try:
        yield server
    finally:
        server.down()


def test_init_unseal_and_unseal_again_after_a_restart(vault: DevVault) -> None:
    started = time.monotonic()
    first = vault.up()
    print(f"first start (init + unseal + mounts): {time.monotonic() - started:.2f}s")
    assert first.initialised
    assert not first.already_running
    for secret in (vault.keys_file, vault.operator_token_file):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    root = vault.client()
    assert {"secret/", "transit/"} <= set(root.sys.list_mounted_secrets_engines()["data"])
    assert "kubernetes/" in root.sys.list_auth_methods()["data"]
    assert "file/" in root.sys.list_enabled_audit_devices()["data"]
    root.secrets.kv.v2.create_or_update_secret("hive/check", secret={"k": "v"})
    keys = vault.keys_file.read_text()

    vault.down()
    assert not vault.running()
    started = time.monotonic()
    again = vault.up()
    print(f"restart (unseal from the key file): {time.monotonic() - started:.2f}s")
    assert not again.initialised
    assert vault.keys_file.read_text() == keys  # not initialised a second time
    assert not root.sys.is_sealed()
    read = root.secrets.kv.v2.read_secret_version("hive/check", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"k": "v"}
    assert vault.audit_log.stat().st_size > 0


def test_the_operator_token_is_not_root(vault: DevVault) -> None:
    vault.up()
    operator = vault.client(vault.operator_token_file.read_text().strip())
    looked_up = operator.auth.token.lookup_self()["data"]
    assert "root" not in looked_up["policies"]
    with pytest.raises(hvac.exceptions.Forbidden):
        operator.secrets.kv.v2.read_secret_version("hive/anything", raise_on_deleted_version=True)
