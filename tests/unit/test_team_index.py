"""The operator's index of the teams' Deployments and pods (hive.operator.observed): listed once
for every team when not known, kept by the watch's events, events during a listing laid over it,
listed again when stale. The listing here is a scripted async generator; the index against the
real API server is exercised by tests/integration/test_operator_footprint.py and the e2e tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from hive.errors import Unavailable
from hive.operator.observed import TeamIndex


def obj(name: str, team: str | None, ready: int, namespace: str = "ns") -> dict[str, Any]:
    labels = {"hive.dev/team": team} if team else {}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "status": {"ready": ready},
    }


def team_of(o: Mapping[str, Any]) -> str | None:
    return (o["metadata"].get("labels") or {}).get("hive.dev/team")


def ready(o: Mapping[str, Any]) -> int:
    return int(o["status"]["ready"])


def index(
    listing: Callable[[], AsyncIterator[Mapping[str, Any]]],
) -> TeamIndex[int]:
    return TeamIndex("test objects", team_of, ready, listing)


def listing_of(*objects: dict[str, Any], calls: list[int] | None = None) -> Any:
    async def every_one() -> AsyncIterator[Mapping[str, Any]]:
        if calls is not None:
            calls.append(1)
        for o in objects:
            await asyncio.sleep(0)
            yield o

    return every_one


async def test_the_first_read_lists_every_team_once_then_the_watch_keeps_it() -> None:
    calls: list[int] = []
    idx = index(listing_of(obj("a-0", "a", 0), obj("b-0", "b", 1), calls=calls))
    assert await idx.of_team("ns", "a") == {"a-0": 0}
    assert await idx.of_team("ns", "b") == {"b-0": 1}
    assert await idx.of_team("other", "a") == {}
    assert len(calls) == 1
    assert idx.seen(obj("a-0", "a", 1)) is True  # its rollout moved
    assert idx.seen(obj("a-0", "a", 1)) is False  # the same again: nothing to wake
    assert idx.seen(obj("a-1", "a", 0)) is True
    assert await idx.of_team("ns", "a") == {"a-0": 1, "a-1": 0}
    assert idx.seen(obj("a-0", "a", 1), deleted=True) is True
    assert await idx.of_team("ns", "a") == {"a-1": 0}
    assert len(calls) == 1
    assert len(idx) == 2


async def test_what_the_watch_says_during_a_listing_is_laid_over_it() -> None:
    idx: TeamIndex[int]

    async def slow_listing() -> AsyncIterator[Mapping[str, Any]]:
        yield obj("a-0", "a", 0)
        # meanwhile: a-0 rolled out, a-1 was deleted, a-2 came (the listing still has a-1)
        idx.seen(obj("a-0", "a", 1))
        idx.seen(obj("a-1", "a", 0), deleted=True)
        idx.seen(obj("a-2", "a", 0))
        yield obj("a-1", "a", 0)

    idx = index(slow_listing)
    assert await idx.of_team("ns", "a") == {"a-0": 1, "a-2": 0}


async def test_readers_at_once_share_one_listing() -> None:
    calls: list[int] = []
    idx = index(listing_of(*(obj(f"t{i}-0", f"t{i}", i) for i in range(20)), calls=calls))
    found = await asyncio.gather(*(idx.of_team("ns", f"t{i}") for i in range(20)))
    assert found == [{f"t{i}-0": i} for i in range(20)]
    assert len(calls) == 1


async def test_a_stale_index_is_listed_again_dropping_what_the_watch_never_said_went() -> None:
    present = [obj("a-0", "a", 0), obj("a-1", "a", 0)]

    async def listing() -> AsyncIterator[Mapping[str, Any]]:
        for o in list(present):
            yield o

    idx = index(listing)
    assert set(await idx.of_team("ns", "a")) == {"a-0", "a-1"}
    present.pop()  # deleted, or its team label edited away: no event reached the index
    assert set(await idx.of_team("ns", "a")) == {"a-0", "a-1"}
    idx.stale()
    # the read after it does not wait: it starts the listing and answers with what it holds
    assert set(await idx.of_team("ns", "a")) == {"a-0", "a-1"}
    for _ in range(100):
        if len(idx) == 1:
            break
        await asyncio.sleep(0)
    assert set(await idx.of_team("ns", "a")) == {"a-0"}


async def test_a_failed_listing_fails_its_readers_and_the_next_read_lists_again() -> None:
    attempts: list[int] = []

    async def flaky() -> AsyncIterator[Mapping[str, Any]]:
        attempts.append(1)
        await asyncio.sleep(0)  # the other reader comes while the listing runs
        if len(attempts) == 1:
            raise Unavailable("Deployment in all namespaces: connection refused")
        yield obj("a-0", "a", 3)

    idx = index(flaky)
    results = await asyncio.gather(
        idx.of_team("ns", "a"), idx.of_team("ns", "b"), return_exceptions=True
    )
    assert all(isinstance(r, Unavailable) for r in results)
    assert await idx.of_team("ns", "a") == {"a-0": 3}
    assert len(attempts) == 2


async def test_objects_without_a_team_or_an_observation_are_not_held() -> None:
    idx: TeamIndex[int | None] = TeamIndex(
        "test objects",
        team_of,
        lambda o: None if o["status"]["ready"] < 0 else int(o["status"]["ready"]),
        listing_of(),
    )
    assert await idx.of_team("ns", "a") == {}
    assert idx.seen(obj("x", None, 1)) is False
    assert idx.seen(obj("a-0", "a", 1)) is True
    assert idx.seen(obj("a-0", "a", -1)) is True  # on its way out: dropped
    assert len(idx) == 0


async def test_a_team_gone_unheard_and_a_clear_drop_what_was_held() -> None:
    idx = index(listing_of(obj("a-0", "a", 0), obj("b-0", "b", 0)))
    await idx.of_team("ns", "a")
    idx.forget_teams_except({("ns", "b")})
    assert len(idx) == 1
    assert await idx.of_team("ns", "a") == {}
    idx.clear()
    assert len(idx) == 0
    assert await idx.of_team("ns", "a") == {"a-0": 0}  # listed again


@pytest.mark.parametrize("deleted", [True, False])
async def test_a_label_edit_that_moves_an_object_to_another_team_moves_it(deleted: bool) -> None:
    idx = index(listing_of(obj("x-0", "a", 0)))
    await idx.of_team("ns", "a")
    idx.seen(obj("x-0", "b", 0), deleted=deleted)
    assert await idx.of_team("ns", "a") == {}
    assert await idx.of_team("ns", "b") == ({} if deleted else {"x-0": 0})
