"""When the operator consolidates a MemoryStore: the cron schedule after the last run (or the
store's creation), and when it reconciles the store again."""

from __future__ import annotations

import datetime as dt

import pytest

from hive.errors import InvalidInput
from hive.reconcile.consolidation import (
    consolidation_due,
    next_consolidation,
    parse_time,
    seconds_until_next,
)

UTC = dt.UTC


def at(hour: int, minute: int = 0, day: int = 1) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_the_next_run_is_the_first_cron_time_after() -> None:
    assert next_consolidation("0 3 * * *", at(2, 59)) == at(3)
    assert next_consolidation("0 3 * * *", at(3)) == at(3, day=2)  # strictly after


def test_due_after_the_last_run_or_the_creation() -> None:
    created = at(1)
    assert not consolidation_due("0 3 * * *", None, created, at(2, 59))
    assert consolidation_due("0 3 * * *", None, created, at(3))
    assert not consolidation_due("0 3 * * *", at(3), created, at(23))
    assert consolidation_due("0 3 * * *", at(3), created, at(3, day=2))
    # an operator that was down at 03:00 consolidates as soon as it is back
    assert consolidation_due("0 3 * * *", at(3), created, at(12, day=5))


def test_the_store_is_reconciled_again_at_the_next_cron_time() -> None:
    assert seconds_until_next("*/15 * * * *", at(3, 10)) == 300
    assert seconds_until_next("0 3 * * *", at(3)) == 86400


def test_a_bad_schedule_names_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"spec\.consolidation\.schedule"):
        next_consolidation("61 * * * *", at(1))


def test_status_times_are_read_as_utc() -> None:
    assert parse_time("2026-03-01T03:00:00Z") == at(3)
    assert parse_time(at(3).replace(tzinfo=None)) == at(3)
    assert parse_time(None) is None
