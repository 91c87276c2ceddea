"""Shared fixtures: one real control plane on loopback for the whole test run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support import Cluster, dev_settings

from hive.dev.controlplane import ControlPlane
from hive.kube.client import sync_client
from hive.settings import KubeSettings


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One real control plane (etcd, kube-apiserver, controllers, KWOK) for the whole run."""
    plane = ControlPlane(dev_settings(tmp_path_factory.mktemp("controlplane")))
    try:
        plane.up()
        client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig), field_manager="hive-tests")
        yield Cluster(plane, client)
    finally:
        plane.down(purge=True)
