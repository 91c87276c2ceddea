"""An agent's resilience, put together from its team's spec: breakers, the error recorder and
its learner, graceful degradation, and the report of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from hive.api.agentteam import AgentTeamSpec, BreakerSpec, ResilienceSpec
from hive.errors import InvalidInput
from hive.runtime.events import EventBus
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.breaker import Breakers, BreakerSettings
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.degradation import Degradation
from hive.runtime.resilience.learning import (
    ErrorRecorder,
    Learner,
    LearningStore,
    MemoryLearningStore,
)
from hive.runtime.resilience.learning_redis import RedisLearningStore, team_key
from hive.runtime.resilience.report import ResilienceReport
from hive.runtime.resilience.usage import ProcessUsage


def breaker_settings(spec: BreakerSpec) -> BreakerSettings:
    return BreakerSettings(
        failure_rate_threshold=spec.failure_rate_threshold,
        window_size=spec.window_size,
        minimum_calls=spec.minimum_calls,
        open_duration_s=spec.open_duration_seconds,
        half_open_max_calls=spec.half_open_max_calls,
        half_open_successes=spec.half_open_successes,
    )


def fallback_models(
    team: AgentTeamSpec, keys: Mapping[str, SecretStr], chain: Chain
) -> list[OpenAICompatible]:
    """The team's fallback models, each calling through `chain` (its own breaker, error
    patterns and faults), with their API keys by index (HIVE_FALLBACK_MODEL_API_KEYS__<i>)."""
    out = []
    for index, spec in enumerate(team.model.fallbacks):
        key = keys.get(str(index))
        api_key = key.get_secret_value() if key else None
        if spec.secret_ref and not api_key:
            raise InvalidInput(
                f"model.fallbacks[{index}].secretRef",
                f"HIVE_FALLBACK_MODEL_API_KEYS__{index} is empty: key {spec.secret_ref.key} of "
                f"Secret {spec.secret_ref.name} is missing or empty",
            )
        out.append(
            OpenAICompatible(spec.endpoint, spec.name, api_key=api_key, timeout_s=300, chain=chain)
        )
    return out


def learning_store(redis_url: str | None, namespace: str, team: str) -> LearningStore:
    """The team's Redis hash where one is configured, else this process's memory."""
    if redis_url:
        return RedisLearningStore(redis_url, team_key(namespace, team))
    return MemoryLearningStore()


@dataclass
class Resilience:
    errors: ErrorRecorder
    breakers: Breakers
    report: ResilienceReport
    degradation: Degradation | None = None

    @classmethod
    def of(cls, spec: ResilienceSpec, store: LearningStore) -> Resilience:
        report = ResilienceReport(store=store)
        breakers = Breakers(breaker_settings(spec.breaker), listeners=[report.on_change])
        return cls(ErrorRecorder(Learner(store)), breakers, report)

    def degrade(
        self, team: AgentTeamSpec, fallbacks: Sequence[OpenAICompatible], agent: str
    ) -> Degradation:
        """Graceful degradation of the agent's calls to the team's model (the chain's first
        middleware); `fallbacks` must call through the rest of the chain."""
        self.degradation = Degradation(
            team.resilience.degradation,
            team.model.name,
            fallbacks,
            agent=agent,
            breakers=self.breakers,
            learner=self.errors.learner,
            max_tokens=team.budget.max_tokens,
            usage=ProcessUsage(),
            bus=self.report.bus,
            listeners=[self.report.on_capability],
        )
        self.report.on_capability(agent, self.degradation.status)  # full, from the start
        return self.degradation

    def publish_to(self, bus: EventBus) -> None:
        self.report.bus = bus
        if self.degradation is not None:
            self.degradation.bus = bus

    async def close(self) -> None:
        if isinstance(self.report.store, RedisLearningStore):
            await self.report.store.close()
