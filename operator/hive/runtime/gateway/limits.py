"""Rate limits of one route: token buckets for requests and tokens per minute.

A bucket holds at most ``burst_seconds`` worth of its per-minute rate and refills continuously.
A call takes one request and its estimated tokens (the prompt's characters / 4 plus the answer
limit it asks for) before it is sent; once the route says what the call used, the difference is
settled, so a bucket may go below zero and the next call waits for it to refill. A 429 from the
route empties its buckets until the route's ``Retry-After`` (LiteLLM's rule: a route that says
it is overloaded is cooled down at once, not after several failures).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hive.api.gateway import RouteLimits


@dataclass
class TokenBucket:
    """``capacity`` units, refilled at ``rate_per_s``; the clock is injected for tests."""

    rate_per_s: float
    capacity: float
    level: float = math.nan
    updated: float = 0.0

    def __post_init__(self) -> None:
        if math.isnan(self.level):
            self.level = self.capacity

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate_per_s)
            self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` may be taken (0: now). An amount above the capacity waits
        for a full bucket, so an oversized call is slowed, not refused forever."""
        self.refill(now)
        needed = min(amount, self.capacity) - self.level
        return max(0.0, needed / self.rate_per_s)

    def take(self, amount: float, now: float) -> None:
        self.refill(now)
        self.level -= amount

    def block_until(self, until: float, now: float) -> None:
        """Nothing may be taken before `until` (a 429's Retry-After)."""
        self.refill(now)
        self.level = min(self.level, -(until - now) * self.rate_per_s)


@dataclass
class RouteLimiter:
    """The request and token buckets of one route (either may be absent: unlimited)."""

    requests: TokenBucket | None = None
    tokens: TokenBucket | None = None
    blocked_until: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def of(cls, limits: RouteLimits, clock: Callable[[], float] = time.monotonic) -> RouteLimiter:
        def bucket(per_minute: int | None) -> TokenBucket | None:
            if per_minute is None:
                return None
            rate = per_minute / 60.0
            capacity = max(1.0, rate * limits.burst_seconds)
            return TokenBucket(rate, capacity, updated=clock())

        return cls(
            bucket(limits.requests_per_minute), bucket(limits.tokens_per_minute), clock=clock
        )

    def wait_for(self, tokens: int) -> float:
        """Seconds until a call of about `tokens` may be sent on this route."""
        now = self.clock()
        wait = max(0.0, self.blocked_until - now)
        if self.requests is not None:
            wait = max(wait, self.requests.wait_for(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_for(tokens, now))
        return wait

    def take(self, tokens: int) -> None:
        now = self.clock()
        if self.requests is not None:
            self.requests.take(1, now)
        if self.tokens is not None:
            self.tokens.take(tokens, now)

    def settle(self, estimated: int, used: int) -> None:
        """The call used `used` tokens where `estimated` were taken."""
        if self.tokens is not None and used != estimated:
            self.tokens.take(used - estimated, self.clock())

    def cool_down(self, seconds: float) -> None:
        """The route said 429: send it nothing for `seconds`."""
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)


def estimate_tokens(body: dict[str, object]) -> int:
    """A call's tokens before it is sent: its text's characters / 4, plus the answer limit."""
    chars = 0
    for message in body.get("messages") or []:  # type: ignore[attr-defined]
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    given = body.get("input")
    if isinstance(given, str):
        chars += len(given)
    elif isinstance(given, list):
        chars += sum(len(str(x)) for x in given)
    answer = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    return chars // 4 + 1 + (int(answer) if isinstance(answer, int | float) else 0)
