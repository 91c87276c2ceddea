"""A leader whose Lease renewal is overdue kills no pod, on the real API server.

The chaos actions (hive.operator.chaos.act) run against real pods while the replica holds the
operator's Lease (taken for real) and after its clock has passed the renew deadline without a
renewal: the overdue leader refuses before any write, and kills again only once it has
renewed. This is the fence that keeps a chaos step to one kill when leadership moves while a
step is in flight (the standby can only start after the full lease duration).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from lightkube.resources.core_v1 import Pod

from hive.errors import Unavailable
from hive.kube.client import async_client
from hive.operator import leadership as leadership_module
from hive.operator.chaos import act
from hive.operator.leadership import Election, Leadership, elect
from hive.operator.state import STATE
from hive.reconcile.chaos import ChaosActions
from hive.reconcile.meta import AGENT_LABEL, TEAM_LABEL
from hive.settings import KubeSettings, Settings
from tests.support import Cluster

pytestmark = pytest.mark.integration
NS = "chaos-fence"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def coder_pods(cluster: Cluster, *, alive: bool = False) -> list[str]:
    """The coder pods (`alive`: only those not being deleted)."""
    pods = cluster.client.list(Pod, namespace=NS, labels={TEAM_LABEL: "t", AGENT_LABEL: "coder"})
    return [
        p.metadata.name
        for p in pods
        if p.metadata and p.metadata.name and not (alive and p.metadata.deletionTimestamp)
    ]


@pytest.fixture
def pods(cluster: Cluster) -> Iterator[None]:
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", NS, "--timeout=60s")
    for name in ("coder-1", "coder-2"):
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": {TEAM_LABEL: "t", AGENT_LABEL: "coder"},
            },
            "spec": {"containers": [{"name": "agent", "image": "busybox"}]},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    try:
        yield
    finally:
        cluster.kubectl("delete", "namespace", NS, "--wait=false")


async def test_an_overdue_leader_kills_nothing_until_it_renews(
    cluster: Cluster, pods: None
) -> None:
    settings = Settings(kube=KubeSettings(kubeconfig=cluster.kubeconfig))
    client = async_client(settings.kube)
    saved = (STATE.settings, STATE._client, leadership_module._current)
    STATE.settings, STATE._client = settings, client
    clock = Clock()
    election = Election(NS, "hive-operator", "op-a", None, 6, 4.0, 1.0)
    leader = Leadership(election, client, clock=clock)
    kill = ChaosActions(kill_agents=["coder"])
    try:
        elect(leader)
        await leader._attempt()  # takes the Lease for real
        assert leader.acting
        clock.now += 4.5  # past the renew deadline, no renewal in between
        assert not leader.acting
        with pytest.raises(Unavailable, match="not the leader"):
            await act(NS, "exp", "t", kill)
        assert sorted(coder_pods(cluster)) == ["coder-1", "coder-2"]

        await leader._attempt()  # renewed: it leads again (no one else took the Lease)
        assert leader.acting
        await act(NS, "exp", "t", kill)
        assert coder_pods(cluster, alive=True) == []
    finally:
        STATE.settings, STATE._client, leadership_module._current = saved
        await client.close()
