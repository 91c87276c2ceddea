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
    TIMEOUT = "timeout"
    EMPTY_ANSWER = "empty-answer"
    MALFORMED_JSON = "malformed-json"
    UNAVAILABLE = "unavailable"
    SANDBOX_KILL = "sandbox-kill"
    RESOURCE = "resource"
    POD_KILL = "pod-kill"
    NETWORK_PARTITION = "network-partition"


class FaultTarget(StrEnum):
    LLM = "llm"
    TOOL = "tool"
    PEER = "peer"
    SANDBOX = "sandbox"
    MEMORY = "memory"


class ResourceKind(StrEnum):
    TOKENS = "tokens"
    CPU = "cpu"
    MEMORY = "memory"


ANSWER_FAULTS = ("empty-answer", "malformed-json")


class Fault(HiveModel):
    """One fault. Every type but pod-kill is injected by the agents themselves, read from the
    team's fault ConfigMap; network-partition is also a NetworkPolicy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(self.type in ['empty-answer', 'malformed-json']) || "
                    "!has(self.target) || self.target == 'llm'",
                    "empty-answer and malformed-json apply to target llm only",
                    ".target",
                ),
                cel(
                    "self.type != 'resource' || has(self.resource)",
                    "type resource needs 'resource' (tokens, cpu or memory)",
                    ".resource",
                ),
            ]
        }
    )

    type: FaultType = Field(
        description="In the agents: latency, error (httpStatus), timeout, empty-answer, "
        "malformed-json (model answers), unavailable, sandbox-kill (the running execution), "
        "resource (tokens, cpu or memory pressure), network-partition (calls to and from the "
        "targets fail, and a NetworkPolicy); by the operator: pod-kill."
    )
    target: FaultTarget = Field(
        default=FaultTarget.LLM,
        description="What the agents' fault hits: llm, tool, peer, sandbox or memory calls.",
    )
    dependency: str | None = Field(
        default=None,
        max_length=253,
        description="Only calls to this model, tool, peer, sandbox policy or memory store; "
        "unset means every one of the target's kind.",
    )
    probability: float = Field(default=1.0, ge=0, le=1, description="Chance per call or round.")
    latency_ms: int | None = Field(
        default=None,
        ge=1,
        le=600000,
        description="Added latency; for timeout the wait before it; for sandbox-kill how long "
        "the execution runs before it is killed.",
    )
    error_message: str | None = Field(
        default=None, max_length=1024, description="Message of the injected error."
    )
    http_status: int | None = Field(
        default=None,
        ge=400,
        le=599,
        description="For error: the HTTP status the dependency seems to answer (default 500).",
    )
    resource: ResourceKind | None = Field(
        default=None,
        description="For resource: tokens (model answers cut to maxTokens), cpu (a busy "
        "thread in the agent process) or memory (memory held by the agent process).",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=100000, description="For resource tokens (default 16)."
    )
    cpu_percent: int | None = Field(
        default=None, ge=1, le=100, description="For resource cpu: share of one core (default 50)."
    )
    memory_mb: int | None = Field(
        default=None, ge=1, le=1024, description="For resource memory: MiB held (default 64)."
    )

    @model_validator(mode="after")
    def _fits_type(self) -> Fault:
        if self.type in ANSWER_FAULTS and self.target != FaultTarget.LLM:
            raise ValueError("empty-answer and malformed-json apply to target llm only")
        if self.type == FaultType.RESOURCE and self.resource is None:
            raise ValueError("type resource needs 'resource' (tokens, cpu or memory)")
        return self


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
    RUN_SUCCEEDS = "run-succeeds"
    STEP_LATENCY = "step-latency"
    BREAKER_RECOVERS = "breaker-recovers"


class Probe(HiveModel):
    """A steady-state hypothesis checked before, during and after the faults."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'step-latency' || has(self.thresholdMs)",
                    "a step-latency probe needs 'thresholdMs'",
                    ".thresholdMs",
                ),
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63, description="Probe name.")
    kind: ProbeKind = Field(
        description="team-ready: the team's Ready is True; agents-healthy: no agent Failed; "
        "max-failed-agents: at most 'threshold' agents Failed; run-succeeds: the team's run "
        "that was going while the faults were in ends Succeeded; step-latency: the p95 step "
        "latency each target agent reports stays at most 'thresholdMs'; breaker-recovers: "
        "every circuit breaker of the team's agents is closed again after the faults end."
    )
    threshold: int = Field(default=0, ge=0, description="For max-failed-agents.")
    threshold_ms: int | None = Field(
        default=None, ge=1, le=3600000, description="For step-latency: the p95 bound in ms."
    )

    @model_validator(mode="after")
    def _threshold_fits_kind(self) -> Probe:
        if self.kind == ProbeKind.STEP_LATENCY and self.threshold_ms is None:
            raise ValueError("a step-latency probe needs 'thresholdMs'")
        return self


class ChaosExperimentSpec(HiveModel):
    """What to break, for how long."""

    selector: Selector = Field(description="Target agents.")
    faults: list[Fault] = Field(min_length=1, max_length=16, description="Faults to inject.")
    duration: str = Field(
        pattern=DURATION,
        description="How long faults stay, e.g. 90s, 5m. Shortened while the experiment runs to"
        " less than has passed, it rolls the faults back at its next step.",
    )
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
    seed: int | None = Field(
        default=None,
        ge=0,
        description="Seed of the agents' fault draws, so a run replays; unset: derived from the "
        "experiment's name and the agent.",
    )


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
    waiting: bool = Field(
        default=False,
        description="No answer yet (the run still going, no step or a breaker still open): "
        "not passed, yet not counted as a failure; a Pass waits for it until the recovery "
        "timeout.",
    )
    message: str = Field(description="What was seen.")
    time: dt.datetime = Field(description="When.")


class InjectedFault(HiveModel):
    """A fault in place now, recorded so that rollback finds it even after a crash."""

    type: FaultType = Field(description="Fault type.")
    target: str = Field(description="What it was applied to (an object or agent name).")


class AgentFaults(HiveModel):
    """Faults of one type an agent injected into its own calls (as the agent reports them)."""

    agent: str = Field(description="The agent.")
    type: FaultType = Field(description="Fault type.")
    count: int = Field(ge=0, description="Injections so far.")
    first_time: dt.datetime = Field(description="First injection.")
    last_time: dt.datetime = Field(description="Latest injection.")


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
        description="Distinct failures seen in this run, one per episode, not per check: a "
        "probe failing, an agent Failed, a circuit breaker open (or half-open). Each counts when "
        "it is first seen (at the first check of the run or after it ended); one that lasts "
        "across checks counts once, one that ends and comes back counts twice.",
    )
    open_failures: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Failures going on at the last check (probe:NAME, agent:NAME, "
        "breaker:AGENT/DEPENDENCY), so that each is counted once.",
    )
    recovery_time_seconds: float | None = Field(
        default=None,
        ge=0,
        description="From the faults' end (rollback) until every probe held again.",
    )
    probe_results: list[ProbeResult] = Field(
        default_factory=list,
        description="Last result per probe.",
        json_schema_extra=list_map("name"),
    )
    injected: list[InjectedFault] = Field(
        default_factory=list, description="Faults in place now (rolled back by the finalizer)."
    )
    faults_injected_by_agent: list[AgentFaults] = Field(
        default_factory=list,
        description="What the agents report they injected, per agent and fault type.",
    )
    fault_problems: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Faults the agents skipped, and why (malformed file, unknown type, a "
        "dependency the team does not have).",
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready.", json_schema_extra=list_map("type")
    )
