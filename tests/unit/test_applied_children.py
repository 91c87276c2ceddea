"""What decides whether a child is applied again (`AppliedChildren`), and that a work queue holds
nothing for an object once its runs are over."""

from __future__ import annotations

import asyncio
from typing import Any

from hive.kube.children import AppliedChildren
from hive.operator.queue import Coalescer


def config_map(data: str, rv: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "t-a0-config",
        "namespace": "ns",
        "ownerReferences": [{"uid": "team-uid"}],
    }
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": data}}


def test_a_child_applied_and_unchanged_is_not_applied_again() -> None:
    cache = AppliedChildren({"ConfigMap", "Deployment"})
    wanted = config_map("v1")
    assert cache.unchanged(wanted) is False  # never applied
    cache.applied(wanted, "10", None)
    assert not cache.seen(config_map("v1", rv="10"), deleted=False)  # the echo wakes nobody
    assert cache.unchanged(wanted) is True
    assert cache.unchanged(config_map("v2")) is False  # what is wanted changed


def test_a_child_changed_or_deleted_by_someone_else_is_applied_again() -> None:
    cache = AppliedChildren({"ConfigMap"})
    wanted = config_map("v1")
    cache.applied(wanted, "10", None)
    assert cache.seen(config_map("edited", rv="11"), deleted=False)  # wakes the team
    assert cache.unchanged(wanted) is False
    cache.applied(wanted, "12", None)
    assert cache.seen(config_map("v1", rv="12"), deleted=True)
    assert cache.unchanged(wanted) is False
    assert len(cache) == 0


def test_a_deployment_is_compared_by_generation_so_its_status_moving_changes_nothing() -> None:
    cache = AppliedChildren({"Deployment"})
    wanted = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    cache.applied(wanted, "10", 1)
    status_moved = {**wanted, "metadata": {"name": "d", "resourceVersion": "11", "generation": 1}}
    assert cache.seen(status_moved, deleted=False)  # the team reads the new status
    assert cache.unchanged(wanted) is True
    scaled = {**wanted, "metadata": {"name": "d", "resourceVersion": "12", "generation": 2}}
    cache.seen(scaled, deleted=False)
    assert cache.unchanged(wanted) is False


def test_a_kind_not_watched_is_read_back_and_forgotten_with_its_owner() -> None:
    cache = AppliedChildren({"Deployment"})
    secret = {**config_map("v1"), "kind": "Secret"}
    cache.applied(secret, "10", None)
    assert cache.unchanged(secret) is None  # only a read can tell
    assert cache.still_applied(secret, config_map("v1", rv="10"))
    assert not cache.still_applied(secret, config_map("v1", rv="11"))
    assert not cache.still_applied(secret, None)  # deleted
    cache.forget_owner("team-uid")
    assert len(cache) == 0


async def test_a_queue_holds_nothing_for_an_object_once_its_runs_are_over() -> None:
    release = asyncio.Event()

    async def work(namespace: str, name: str) -> None:
        await release.wait()

    queue = Coalescer(work, "Thing")
    for i in range(20):
        queue.request("ns", f"t{i}")
        queue.request("ns", f"t{i}")  # joins the waiting run
    await asyncio.sleep(0)
    assert queue.entries() > 0
    release.set()
    await queue.drain()
    assert queue.entries() == 0


def test_a_kind_not_watched_is_read_back_at_most_once_in_its_interval() -> None:
    now = [100.0]
    cache = AppliedChildren({"Deployment"}, reread_after_s=15, clock=lambda: now[0])
    secret = {**config_map("v1"), "kind": "Secret"}
    cache.applied(secret, "10", None)
    now[0] = 110.0
    assert cache.unchanged(secret) is True  # applied 10 s ago: taken as it was
    now[0] = 116.0
    assert cache.unchanged(secret) is None  # read it back
    assert cache.still_applied(secret, config_map("v1", rv="10"))
    now[0] = 130.0
    assert cache.unchanged(secret) is True  # read back 14 s ago
    assert cache.unchanged({**secret, "data": {"k": "v2"}}) is False  # wanted changed: applied
    now[0] = 131.0
    assert not cache.still_applied(secret, None)  # deleted by hand: not taken as read
    assert cache.unchanged(secret) is None
