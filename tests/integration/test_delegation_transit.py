"""Delegation certificates signed by the team's transit key on a real OpenBao server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive.dev.vault import DevVault
from hive.ports import free_port
from hive.runtime.identity.certs import CertificateRefused, Reason, Verifier, delegate, root_grant
from hive.runtime.identity.transit import TransitKeys, TransitSigner, team_key
from tests.support import dev_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[DevVault]:
    server = DevVault(
        dev_settings(tmp_path, vault_port=free_port(), vault_cluster_port=free_port())
    )
    try:
        server.up()
        yield server
    finally:
        server.down()


def test_transit_signs_links_that_verify_with_the_cached_public_key(vault: DevVault) -> None:
    client = vault.client()
    name = team_key("default", "bees")
    client.secrets.transit.create_key(name, key_type="ed25519")
    signer = TransitSigner(client, name)
    keys = TransitKeys(client, name)
    now = time.time()
    root = root_grant(
        signer,
        team="default/bees",
        coordinator="lead",
        capabilities={"research"},
        tools={"web"},
        budget=1000,
        deadline=None,
        expires=now + 60,
    )
    cert = delegate(signer, root, "researcher", budget=500)
    assert signer.key_id == f"{name}:v1"
    verifier = Verifier("default/bees", "lead", keys)
    assert verifier.verify(cert.wire, now, "researcher").grant.budget == 500
    client.secrets.transit.rotate_key(name)  # a new version signs; the old one still verifies
    assert delegate(signer, cert, "helper").links[-1].token  # v1 still signs when asked
    signer = TransitSigner.latest(client, name)
    newer = delegate(signer, cert, "helper")
    assert signer.key_id == f"{name}:v2"
    assert verifier.verify(newer.wire, now, "helper").authority[-1] == "researcher->helper"
    client.secrets.transit.create_key("hive-default-wasps", key_type="ed25519")
    stranger = TransitSigner(client, "hive-default-wasps")
    with pytest.raises(CertificateRefused) as caught:
        verifier.verify(delegate(stranger, root, "researcher").wire, now)
    assert caught.value.reason is Reason.FORGED
