"""`hive errors`: a team's error patterns and the recoveries its agents learned for them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis

from hive.errors import InvalidInput, Unavailable
from hive.runtime.resilience.learning import top_patterns
from hive.runtime.resilience.learning_redis import RedisLearningStore, team_key
from hive.runtime.resilience.patterns import ErrorPattern


def read_patterns(url: str, namespace: str, team: str) -> list[ErrorPattern]:
    async def read() -> list[ErrorPattern]:
        store = RedisLearningStore(url, team_key(namespace, team), timeout_s=5)
        try:
            return await store.patterns()
        finally:
            await store.close()

    try:
        return asyncio.run(read())
    except redis.RedisError as exc:
        raise Unavailable(f"redis at {url}: {exc}") from exc


def render(patterns: Sequence[ErrorPattern], top: int) -> str:
    """One line per pattern, the most frequent first, with its best recovery so far."""
    if not patterns:
        return "no error patterns recorded"
    rows = [("COUNT", "CATEGORY", "DEPENDENCY", "FIX", "SUCCESS", "LAST SEEN", "ERROR")]
    for pattern in top_patterns(patterns, top):
        best = pattern.best()
        rows.append(
            (
                str(pattern.count),
                pattern.failure.category.value,
                pattern.failure.dependency,
                best[0] if best else "-",
                f"{best[1]:.0%}" if best else "-",
                pattern.last_seen.strftime("%Y-%m-%d %H:%M:%S"),
                f"{pattern.failure.error_type}: {pattern.failure.message}"[:120],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1]
        for row in rows
    )


def errors_command(url: str | None, namespace: str, team: str, top: int) -> str:
    if not url:
        raise InvalidInput(
            "--redis", "no Redis given (or HIVE_AGENT__ERRORS_REDIS_URL, as the agents have it)"
        )
    return render(read_patterns(url, namespace, team), top)
