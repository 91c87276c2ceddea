"""A leader whose Lease renewal is overdue kills no pod, on the real API server.

The chaos actions (hive.operator.chaos.act) run against real pods while the replica holds the
operator's Lease (taken for real) and after its clock has passed the renew deadline without a
renewal: the overdue leader refuses before any write, and kills again only once it has
renewed. This is the fence that keeps a chaos step to one kill when leadership moves while a
step is in flight (the standby can only start after the full lease duration). And a leader
whose Lease another replica has taken kills nothing though its own clock says it still leads:
the renewal sent right before the kill is refused on the API server.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

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


def coder_pods(cluster: Cluster, namespace: str, *, alive: bool = False) -> list[str]:
    """The coder pods (`alive`: only those not being deleted)."""
    labels = {TEAM_LABEL: "t", AGENT_LABEL: "coder"}
    pods = cluster.client.list(Pod, namespace=namespace, labels=labels)
    return [
        p.metadata.name
        for p in pods
        if p.metadata and p.metadata.name and not (alive and p.metadata.deletionTimestamp)
    ]


@asynccontextmanager
async def leading_replica(
    cluster: Cluster, namespace: str
) -> AsyncIterator[tuple[Leadership, Clock]]:
    """The replica op-a, with the operator's state on `cluster`, elected: the Lease in
    `namespace` taken for real, its time read from a clock of the test's (yielded with it); the
    state put back after."""
    settings = Settings(kube=KubeSettings(kubeconfig=cluster.kubeconfig))
    client = async_client(settings.kube)
    saved = (STATE.settings, STATE._client, leadership_module._current)
    STATE.settings, STATE._client = settings, client
    clock = Clock()
    election = Election(namespace, "hive-operator", "op-a", None, 6, 4.0, 1.0)
    leader = Leadership(election, client, clock=clock)
    try:
        elect(leader)
        await leader._attempt()  # takes the Lease for real
        yield leader, clock
    finally:
        STATE.settings, STATE._client, leadership_module._current = saved
        await client.close()


@pytest.fixture
def pods(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """Two coder pods of team t, in a namespace of the test's own; yields the namespace."""
    ns = f"{NS}-{request.node.name.removeprefix('test_')[:30].replace('_', '-').strip('-')}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", ns, "--timeout=60s")
    for name in ("coder-1", "coder-2"):
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {TEAM_LABEL: "t", AGENT_LABEL: "coder"},
            },
            "spec": {"containers": [{"name": "agent", "image": "busybox"}]},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    try:
        yield ns
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false")


async def test_an_overdue_leader_kills_nothing_until_it_renews(cluster: Cluster, pods: str) -> None:
    kill = ChaosActions(kill_agents=["coder"])
    async with leading_replica(cluster, pods) as (leader, clock):
        assert leader.acting
        clock.now += 4.5  # past the renew deadline, no renewal in between
        assert not leader.acting
        with pytest.raises(Unavailable, match="not the leader"):
            await act(pods, "exp", "t", kill)
        assert sorted(coder_pods(cluster, pods)) == ["coder-1", "coder-2"]

        await leader._attempt()  # renewed: it leads again (no one else took the Lease)
        assert leader.acting
        await act(pods, "exp", "t", kill)
        assert coder_pods(cluster, pods, alive=True) == []


async def test_a_leader_whose_lease_was_taken_kills_nothing_though_its_clock_says_it_leads(
    cluster: Cluster, pods: str
) -> None:
    """Another replica took the Lease (written into it on the API server) while this one's
    clock still says it leads: the renewal right before the kill is refused by what the API
    server holds, so no pod goes, and the replica stands down."""
    kill = ChaosActions(kill_agents=["coder"])
    async with leading_replica(cluster, pods) as (leader, _):
        assert leader.acting
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        taken = {"spec": {"holderIdentity": "op-b", "renewTime": now, "acquireTime": now}}
        cluster.kubectl(
            "patch", "lease", "hive-operator", "-n", pods, "--type=merge", "-p", json.dumps(taken)
        )
        assert leader.acting  # by its own clock, it still leads
        with pytest.raises(Unavailable, match="not the leader"):
            await act(pods, "exp", "t", kill)
        assert sorted(coder_pods(cluster, pods, alive=True)) == ["coder-1", "coder-2"]
        assert not leader.acting
