"""The delegation score's free capacity counts an agent's work queue, over its replicas."""

from __future__ import annotations

from hive.runtime.teams.scoring import Candidate, choose, free_capacity


def candidate(name: str, *, active: int = 0, queued: int = 0, replicas: int = 1) -> Candidate:
    return Candidate(name, frozenset({"research"}), active, 2, None, queued, replicas)


def test_a_queue_filled_by_other_seniors_takes_capacity() -> None:
    assert free_capacity(candidate("a")) == 1.0
    assert free_capacity(candidate("a", queued=1)) == 0.5
    assert free_capacity(candidate("a", active=1, queued=1)) == 0.5  # its own task is queued
    assert free_capacity(candidate("a", queued=5)) == 0.0


def test_replicas_multiply_the_capacity() -> None:
    assert free_capacity(candidate("a", queued=2, replicas=4)) == 0.75


def test_the_less_loaded_of_equal_agents_is_chosen() -> None:
    busy, idle = candidate("busy", queued=3, replicas=2), candidate("idle", queued=1)
    assert choose([busy, idle], ["research"]).name == "idle"
    assert choose([candidate("first"), candidate("second")], ["research"]).name == "first"
    # more replicas, the same queue: more free capacity
    assert choose(
        [candidate("one", queued=2), candidate("four", queued=2, replicas=4)], []
    ).name == ("four")
