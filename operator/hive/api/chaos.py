"""ChaosExperiment: faults injected into a team's agents for a while, then rolled back."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from hive.api.common import CRON, Condition, HiveModel, cel, list_map

DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


class SelectorMode(StrEnum):
    ONE = "one"
    ALL = "all"
    FIXED = "fixed"
    FIXED_PERCENT = "fixed-percent"


class Selector(HiveModel):
    """Which agents of which team the faults hit."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(self.mode in ['fixed', 'fixed-percent']) || has(self.value)",
                    "modes fixed and fixed-percent need 'value'",
                    ".value",
                ),
                cel(
                    "self.mode != 'fixed-percent' || (self.value >= 1 && self.value <= 100)",
                    "fixed-percent takes a value from 1 to 100",
                    ".value",
                ),
                cel(
                    "self.mode != 'fixed' || !has(self.agents) || size(self.agents) == 0 "
                    "|| self.value <= size(self.agents)",
                    "fixed asks for more agents than the selector lists",
                    ".value",
                ),
            ]
        }
    )

    team: str = Field(
        min_length=1, max_length=253, description="AgentTeam in the experiment's namespace."
    )
    agents: list[str] = Field(
        default_factory=list, max_length=200, description="Only these agents; empty means all."
    )
    mode: SelectorMode = Field(
        default=SelectorMode.ONE,
        description="one random agent, all, a fixed number, or a fixed percentage.",
    )
    value: int | None = Field(default=None, ge=1, description="Count (fixed) or percent.")

    @model_validator(mode="after")
    def _value_fits_mode(self) -> Selector:
        if self.mode in (SelectorMode.FIXED, SelectorMode.FIXED_PERCENT) and self.value is None:
            raise ValueError("modes fixed and fixed-percent need 'value'")
        if self.mode == SelectorMode.FIXED_PERCENT and self.value is not None and self.value > 100:
            raise ValueError("fixed-percent takes a value from 1 to 100")
        if self.mode == SelectorMode.FIXED and self.agents and (self.value or 0) > len(self.agents):
            raise ValueError("fixed asks for more agents than the selector lists")
        return self


class FaultType(StrEnum):
    LATENCY = "latency"
    ERROR = "error"
    EMPTY_ANSWER = "empty-answer"
    POD_KILL = "pod-kill"
    NETWORK_PARTITION = "network-partition"


class FaultTarget(StrEnum):
    LLM = "llm"
    TOOL = "tool"


class Fault(HiveModel):
    """One fault."""

    type: FaultType = Field(
        description="latency, error or empty-answer (read by agents from the team's fault "
        "ConfigMap), pod-kill, or network-partition (a NetworkPolicy)."
    )
    target: FaultTarget = Field(
        default=FaultTarget.LLM, description="For latency, error, empty-answer: llm or tool."
    )
    probability: float = Field(default=1.0, ge=0, le=1, description="Chance per call or round.")
    latency_ms: int | None = Field(default=None, ge=1, le=600000, description="Added latency.")
    error_message: str | None = Field(
        default=None, max_length=1024, description="Message of the injected error."
    )


class Schedule(HiveModel):
    """Repeat the experiment on a cron schedule. Runs never overlap: the next run is the first
    cron time after the last run ended."""

    cron: str = Field(
        pattern=CRON,
        description="Five-field cron expression or @hourly etc.; the next run is the first such "
        "time after the last run ended, so runs never overlap.",
    )


class ProbeKind(StrEnum):
    TEAM_READY = "team-ready"
    AGENTS_HEALTHY = "agents-healthy"
    MAX_FAILED_AGENTS = "max-failed-agents"


class Probe(HiveModel):
    """A steady-state hypothesis checked before, during and after the faults."""

    name: str = Field(min_length=1, max_length=63, description="Probe name.")
    kind: ProbeKind = Field(
        description="team-ready: the team's Ready is True; agents-healthy: no agent Failed; "
        "max-failed-agents: at most 'threshold' agents Failed."
    )
    threshold: int = Field(default=0, ge=0, description="For max-failed-agents.")


class ChaosExperimentSpec(HiveModel):
    """What to break, for how long."""

    selector: Selector = Field(description="Target agents.")
    faults: list[Fault] = Field(min_length=1, max_length=16, description="Faults to inject.")
    duration: str = Field(pattern=DURATION, description="How long faults stay, e.g. 90s, 5m.")
    schedule: Schedule | None = Field(default=None, description="Repeat on a schedule.")
    probes: list[Probe] = Field(
        default_factory=list,
        max_length=16,
        description="Steady-state hypotheses.",
        json_schema_extra=list_map("name"),
    )
    recovery_timeout: str = Field(
        default="5m",
        pattern=DURATION,
        description="After rollback, how long every probe has to hold again for a Pass.",
    )
    pause: bool = Field(default=False, description="Roll back now and wait until unpaused.")


class ChaosPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"


class Verdict(StrEnum):
    PASS = "Pass"  # noqa: S105 - a verdict, not a password
    FAIL = "Fail"
    STOPPED = "Stopped"


class ProbeResult(HiveModel):
    """The last outcome of one probe."""

    name: str = Field(description="Probe name.")
    passed: bool = Field(description="Whether the hypothesis held.")
    message: str = Field(description="What was seen.")
    time: dt.datetime = Field(description="When.")


class InjectedFault(HiveModel):
    """A fault in place now, recorded so that rollback finds it even after a crash."""

    type: FaultType = Field(description="Fault type.")
    target: str = Field(description="What it was applied to (an object or agent name).")


class ChaosExperimentStatus(HiveModel):
    """Where the experiment stands."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last reconciled.")
    phase: ChaosPhase = Field(default=ChaosPhase.PENDING, description="State machine phase.")
    verdict: Verdict | None = Field(default=None, description="Pass, Fail or Stopped.")
    start_time: dt.datetime | None = Field(default=None, description="When faults went in.")
    end_time: dt.datetime | None = Field(default=None, description="When they were rolled back.")
    targets: list[str] = Field(default_factory=list, description="Agents chosen by the selector.")
    runs: int = Field(default=0, ge=0, description="Runs started (more than one on a schedule).")
    next_run: dt.datetime | None = Field(default=None, description="When a scheduled run starts.")
    faults_injected: int = Field(default=0, ge=0, description="Faults put in place.")
    failures_detected: int = Field(
        default=0,
        ge=0,
        description="Probe failures seen in this run, one per failure, not per check: a probe "
        "counts when it is seen failing at its first check of the run or after it was last seen "
        "passing. A probe that stays failing across checks counts once; one that fails, "
        "recovers and fails again counts twice.",
    )
    recovery_time_seconds: float | None = Field(
        default=None, ge=0, description="From rollback until every probe held again."
    )
    probe_results: list[ProbeResult] = Field(
        default_factory=list,
        description="Last result per probe.",
        json_schema_extra=list_map("name"),
    )
    injected: list[InjectedFault] = Field(
        default_factory=list, description="Faults in place now (rolled back by the finalizer)."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready.", json_schema_extra=list_map("type")
    )
