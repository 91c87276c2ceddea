"""The operator's process-wide state pointed at a test cluster, for tests that call the
operator's handlers in the test process against the real API server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hive.kube.resources import apply_crds
from hive.operator.state import STATE
from hive.settings import KubeSettings, Settings
from tests.support import Cluster


@contextmanager
def operator_state_on(cluster: Cluster, namespace: str) -> Iterator[None]:
    """The CRDs applied and `namespace` made on `cluster`; meanwhile the operator's state reads
    settings whose kubeconfig is the cluster's (its client made afresh), put back after."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", namespace, check=False)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(kube=KubeSettings(kubeconfig=cluster.kubeconfig))
    STATE._client = None
    try:
        yield
    finally:
        STATE.settings, STATE._client = before
