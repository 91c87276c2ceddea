"""Capability levels, chosen from what an agent observes.

* **full**: nothing troubles the agent. Models are asked in the declared order (the team's
  model, then its fallbacks), answers as long as asked for.
* **reduced**: a circuit breaker of the agent is open, a model's latency p99 (last minute) is
  above ``latencyP99Ms``, the tokens left of ``budget.maxTokens`` are below ``minTokensLeft``,
  or the process uses more CPU or memory than ``maxCpuPercent`` / ``maxMemoryPercent``. The
  fallback models are asked first and the troubled models last, and answers are cut to
  ``reducedMaxTokens``.
* **minimal**: no model may be asked (every model's breaker is open). Answers come from the
  cache, else they are partial answers marked as degraded; a model is asked again only as its
  breaker's probe, and its success brings the level back up.

:func:`choose` is pure: the observation in, the level and its reason out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hive.api.agentteam import CapabilityLevel, DegradationSpec


@dataclass(frozen=True)
class Observation:
    """What the agent sees of its dependencies and of itself at one moment."""

    models: Sequence[str] = ()  # model dependencies (call keys), the team's model first
    open_breakers: Sequence[str] = ()  # every dependency whose breaker is not closed
    latency_p99_ms: Mapping[str, float] = field(default_factory=dict)  # per model key
    tokens_left: int | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None


def choose(seen: Observation, spec: DegradationSpec) -> tuple[CapabilityLevel, str]:
    """The level the agent should work at, and why (empty at full)."""
    troubled = set(seen.open_breakers)
    if seen.models and all(m in troubled for m in seen.models):
        names = ", ".join(seen.models)
        return CapabilityLevel.MINIMAL, f"the circuit breaker of every model is open ({names})"
    reasons = [f"circuit breaker of {key} open" for key in sorted(troubled)]
    if spec.latency_p99_ms is not None:
        for key, p99 in sorted(seen.latency_p99_ms.items()):
            if p99 > spec.latency_p99_ms:
                reasons.append(f"{key} latency p99 {p99:.0f}ms > {spec.latency_p99_ms}ms")
    limits = (
        (spec.min_tokens_left, seen.tokens_left, "{v:.0f} tokens left < {limit}", -1),
        (spec.max_cpu_percent, seen.cpu_percent, "CPU {v:.0f}% > {limit}%", 1),
        (spec.max_memory_percent, seen.memory_percent, "memory {v:.0f}% > {limit}%", 1),
    )
    for limit, value, says, sign in limits:
        if limit is not None and value is not None and sign * (value - limit) > 0:
            reasons.append(says.format(v=value, limit=limit))
    if reasons:
        return CapabilityLevel.REDUCED, "; ".join(reasons)[:500]
    return CapabilityLevel.FULL, ""


def slow_models(seen: Observation, spec: DegradationSpec) -> set[str]:
    """The models whose latency p99 is above the threshold."""
    if spec.latency_p99_ms is None:
        return set()
    return {k for k, p99 in seen.latency_p99_ms.items() if p99 > spec.latency_p99_ms}


def model_order(
    models: Sequence[str],
    level: CapabilityLevel,
    *,
    open_breakers: set[str],
    due: set[str],
    slow: set[str],
) -> list[str]:
    """The order models are asked in at `level`.

    Full: as declared. Below full: models whose open breaker may be probed now first (so the
    agent notices a recovered model), then the fallbacks, then the team's model, with slow and
    still-refusing models last.
    """
    if level is CapabilityLevel.FULL:
        return list(models)
    primary = models[:1]
    ranked = [*models[1:], *primary]

    def rank(key: str) -> int:
        if key in due:
            return 0
        if key in open_breakers:
            return 3
        return 2 if key in slow else 1

    return sorted(ranked, key=rank)
