"""hive.kube.watching against the real API server: what exists comes first as ADDED, then every
change in order, only what the labels select; a watch the server ends is resumed from its last
version (nothing told twice); a reader that fails on one event stops nothing. And the listing
beside it (hive.kube.children.each_selected): every page, as the API server's JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import pytest

from hive.kube.children import each_selected
from hive.kube.client import ApiClient, async_client
from hive.kube.watching import OnEvent, Watch, WatchGone
from hive.settings import KubeSettings
from tests.support import Cluster, until

Seen = list[tuple[str, str, str | None]]  # type, name, data["v"]


def config_map(name: str, labels: dict[str, str], value: str) -> str:
    meta = {"name": name, "labels": labels}
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}
    )


def recorder(seen: Seen) -> Callable[[str, dict[str, Any]], None]:
    def take(kind: str, obj: dict[str, Any]) -> None:
        seen.append((kind, obj["metadata"]["name"], (obj.get("data") or {}).get("v")))

    return take


async def until_seen(
    seen: Seen, wanted: tuple[str, str, str | None], timeout_s: float = 20
) -> None:
    await asyncio.to_thread(until, lambda: wanted in seen or None, timeout_s, f"{wanted} seen")


@pytest.fixture
def namespace(cluster: Cluster) -> Any:
    name = f"watch-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


@contextlib.asynccontextmanager
async def watching(
    cluster: Cluster, namespace: str, labels: Mapping[str, str | None], take: OnEvent, **kw: Any
) -> AsyncIterator[tuple[Watch, asyncio.Task[None]]]:
    """A Watch of the ConfigMaps in `namespace` running, and stopped after."""
    client = async_client(KubeSettings(kubeconfig=cluster.kubeconfig))
    watch = Watch(client, "ConfigMap", namespace, labels, take, **kw)
    running = asyncio.create_task(watch.run())
    try:
        yield watch, running
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await client.close()


async def put(cluster: Cluster, namespace: str, name: str, labels: dict[str, str], v: str) -> None:
    apply = ["apply", "-n", namespace, "-f", "-"]
    await asyncio.to_thread(cluster.kubectl, *apply, input=config_map(name, labels, v))


async def test_what_exists_comes_first_then_each_change_of_what_the_labels_select(
    cluster: Cluster, namespace: str
) -> None:
    await put(cluster, namespace, "before", {"watched": "yes"}, "1")
    await put(cluster, namespace, "other", {"elsewhere": "yes"}, "1")
    seen: Seen = []
    async with watching(cluster, namespace, {"watched": None}, recorder(seen)) as (watch, _):
        await until_seen(seen, ("ADDED", "before", "1"))
        await put(cluster, namespace, "new", {"watched": "a"}, "1")
        await put(cluster, namespace, "new", {"watched": "a"}, "2")
        await asyncio.to_thread(cluster.kubectl, "delete", "configmap", "new", "-n", namespace)
        await until_seen(seen, ("DELETED", "new", "2"))
        assert seen == [
            ("ADDED", "before", "1"),
            ("ADDED", "new", "1"),
            ("MODIFIED", "new", "2"),
            ("DELETED", "new", "2"),
        ]
        assert watch.started == 1


async def test_a_watch_the_server_ends_is_resumed_where_it_was(
    cluster: Cluster, namespace: str
) -> None:
    await put(cluster, namespace, "kept", {"watched": "yes"}, "1")
    seen: Seen = []
    # the server ends each watch after a second: the watch resumes several times below
    selected = {"watched": "yes"}
    async with watching(cluster, namespace, selected, recorder(seen), server_timeout_s=1) as (
        watch,
        _,
    ):
        await until_seen(seen, ("ADDED", "kept", "1"))
        await asyncio.to_thread(until, lambda: watch.started >= 3 or None, 30, "2 resumptions")
        await put(cluster, namespace, "kept", {"watched": "yes"}, "2")
        await until_seen(seen, ("MODIFIED", "kept", "2"))
        assert seen == [("ADDED", "kept", "1"), ("MODIFIED", "kept", "2")]  # nothing told twice


async def test_a_reader_that_fails_on_one_event_stops_nothing(
    cluster: Cluster, namespace: str
) -> None:
    seen: Seen = []
    take = recorder(seen)

    def fussy(kind: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "bad":
            raise KeyError("not this one")
        take(kind, obj)

    async with watching(cluster, namespace, {"watched": "yes"}, fussy) as (_, running):
        await put(cluster, namespace, "bad", {"watched": "yes"}, "1")
        await put(cluster, namespace, "good", {"watched": "yes"}, "1")
        await until_seen(seen, ("ADDED", "good", "1"))
        assert [name for _, name, _ in seen] == ["good"]
        assert not running.done()


async def test_a_listing_reads_every_page_of_what_the_labels_select(
    cluster: Cluster, namespace: str
) -> None:
    for i in range(5):
        await put(cluster, namespace, f"m{i}", {"watched": "yes"}, str(i))
    await put(cluster, namespace, "other", {"elsewhere": "yes"}, "x")
    client = async_client(KubeSettings(kubeconfig=cluster.kubeconfig))
    try:
        listed = [
            obj
            async for obj in each_selected(
                client, "ConfigMap", namespace, {"watched": None}, page=2
            )
        ]
    finally:
        await client.close()
    assert sorted(o["metadata"]["name"] for o in listed) == [f"m{i}" for i in range(5)]
    assert {(o["apiVersion"], o["kind"]) for o in listed} == {("v1", "ConfigMap")}
    assert {o["data"]["v"] for o in listed} == {str(i) for i in range(5)}


def test_a_version_the_server_no_longer_has_starts_the_watch_afresh() -> None:
    watch = Watch(cast(ApiClient, None), "ConfigMap", None, {}, lambda *_: None)
    watch.version = "41"
    with pytest.raises(WatchGone):  # run() then drops the version: every object ADDED again
        watch._take({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
    with pytest.raises(ValueError, match="too many"):
        watch._take({"type": "ERROR", "object": {"code": 429, "message": "too many"}})
