"""Which middlewares one agent's calls pass, and in which order.

The order follows the call outwards from the agent: the debugger (where the team debugs) first,
so a pause is no call's time; then the call's span and its metrics, so they cover all the rest
(retries, fallbacks, a breaker's refusal); the audit record of a tool or peer call is written
next, so it tells what the agent finally got; graceful degradation comes next, so it sees what
the team's model finally did (after recoveries) and turns to the fallback models, each of which
passes the rest of the chain on its own; the cache comes next, so each model (the team's and
each fallback) answers from its own entries and a hit passes no breaker; the error recorder
sees every outcome (including a breaker's refusal), the breakers stand before the dependency,
and injected faults sit next to the transport so that they look to everything above like the
dependency failing. The privacy policy comes right after the debugger: nothing further in (a
span, a cache, a fallback) sees a prompt before its personal data is handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from hive.runtime.resilience.calls import Chain, Middleware


@dataclass
class ChainParts:
    """The middlewares an agent has; None where a capability is off."""

    errors: Middleware | None = None  # error patterns (fingerprints, learned recoveries)
    breakers: Middleware | None = None  # one circuit breaker per dependency
    faults: Middleware | None = None  # faults a ChaosExperiment injects
    degradation: Middleware | None = None  # fallback models, cached and partial answers
    cache: Middleware | None = None  # L1/L2/L3 caches of model answers and tool results
    audit: Middleware | None = None  # one audit record per tool and peer call (first)
    authority: Middleware | None = None  # delegation certificates presented and checked
    tracing: Middleware | None = None  # one span per call (hive.runtime.tracing.calls)
    metrics: Middleware | None = None  # calls counted, model calls timed (Prometheus)
    debugger: Middleware | None = None  # the interactive debugger's stop points (outermost)
    privacy: Middleware | None = None  # spec.privacy: personal data handled (after the debugger)
    # the team's model routes in process (hive.runtime.gateway.middleware): innermost, they
    # are the model's transport, so everything above sees one call of the team's model
    routing: Middleware | None = None

    def chain(self, agent: str) -> Chain:
        order = (
            self.debugger,
            self.privacy,
            self.tracing,
            self.metrics,
            self.audit,
            self.authority,
            self.degradation,
            self.cache,
            self.errors,
            self.breakers,
            self.faults,
            self.routing,
        )
        return Chain(tuple(m for m in order if m is not None), agent)
