"""When a MemoryStore is consolidated: its ``consolidation.schedule`` (cron, UTC) after the
last consolidation (``status.lastConsolidation``), or after the store was created for the
first one. The operator runs a due consolidation while it reconciles the store and asks to
reconcile it again at the next cron time."""

from __future__ import annotations

import datetime as dt

from croniter import croniter

from hive.errors import InvalidInput

MIN_RECHECK_S = 1.0


def next_consolidation(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first time of `schedule` strictly after `after` (UTC)."""
    try:
        found: dt.datetime = croniter(schedule, after.astimezone(dt.UTC)).get_next(dt.datetime)
    except (ValueError, KeyError) as exc:
        raise InvalidInput("spec.consolidation.schedule", f"{schedule!r}: {exc}") from exc
    return found


def consolidation_due(
    schedule: str, last: dt.datetime | None, created: dt.datetime, now: dt.datetime
) -> bool:
    return next_consolidation(schedule, last or created) <= now


def seconds_until_next(schedule: str, now: dt.datetime) -> float:
    wait = (next_consolidation(schedule, now) - now).total_seconds()
    return max(wait, MIN_RECHECK_S)


def parse_time(value: object) -> dt.datetime | None:
    """A status or metadata timestamp (RFC 3339 text or datetime) as an aware datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None
