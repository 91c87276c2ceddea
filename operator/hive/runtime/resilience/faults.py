"""The faults middleware: ChaosExperiment faults injected into an agent's own calls.

It sits next to the transport (see ``chain.py``), so what it injects looks to everything above
it (breakers, error patterns, the agent) like the dependency misbehaving:

============== ======== ============================================================
type           target   what the caller sees
============== ======== ============================================================
latency        any      the call starts ``latencyMs`` later
error          llm      the error the model client raises for ``httpStatus`` (500)
error          other    ``Unavailable`` for a retryable status, else ``ExternalFailure``
timeout        any      ``Unavailable`` ("no answer") after ``latencyMs`` (default 0)
empty-answer   llm      an answer with empty content
malformed-json llm      the real answer's content cut into text that is not JSON
unavailable    any      ``Unavailable``
partition      peer     calls to and from the targets fail as unreachable
sandbox-kill   sandbox  the execution is killed after ``latencyMs`` (exit by SIGKILL)
resource       tokens   model answers cut to ``maxTokens`` words, finish reason length
resource       cpu/mem  pressure in the process while the window lasts (``pressure.py``)
============== ======== ============================================================

Every injection is counted (``hive_chaos_faults_injected_total{experiment,fault,agent}``),
published on the event bus (``fault-injected``) and kept per agent, experiment and type for
the agent's status entry. With no faults loaded a call costs one attribute check.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import Counter

from hive.api.agentteam import FaultCount, FaultProblem
from hive.api.chaos import FaultType, ResourceKind
from hive.errors import ExternalFailure, HiveError, Unavailable
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import RETRYABLE_STATUS, Reply, status_error
from hive.runtime.resilience.calls import Call, CallKind, Proceed
from hive.runtime.resilience.faultspec import AimedFault
from hive.runtime.resilience.pressure import DEFAULT_CPU_PERCENT, DEFAULT_MEMORY_MB, Pressure
from hive.runtime.sandbox.result import ExecutionResult

log = logging.getLogger(__name__)
FAULTS_INJECTED = Counter(
    "hive_chaos_faults_injected",
    "Faults of ChaosExperiments injected into agents' calls, by experiment, fault type, agent.",
    ["experiment", "fault", "agent"],
)
DEFAULT_STATUS = 500
DEFAULT_ANSWER_TOKENS = 16


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def not_json(content: str | None) -> str:
    """Text that no JSON reader accepts, made from `content` (kept short, so it looks cut)."""
    text = content or "answer"
    return '{"' + text[: max(1, len(text) // 2)].replace("}", "").replace("]", "")


@dataclass
class FaultInjector:
    """The faults in force for the agents of this process, and what they did so far."""

    bus: EventBus | None = None
    clock: Callable[[], float] = time.time
    faults: tuple[AimedFault, ...] = ()
    problems: list[FaultProblem] = field(default_factory=list)
    counts: dict[tuple[str, str, str], FaultCount] = field(default_factory=dict)
    pressure: Pressure = field(default_factory=Pressure)

    def load(self, faults: Iterable[AimedFault], problems: Iterable[FaultProblem]) -> None:
        """Put these faults in force (replacing the previous ones)."""
        self.faults = tuple(faults)
        self.problems = list(problems)

    def report(self, agent: str) -> tuple[list[FaultCount], list[FaultProblem]]:
        """What `agent`'s status entry says: its injections, and the faults skipped."""
        counts = [c for (a, _, _), c in sorted(self.counts.items()) if a == agent]
        return counts[:64], self.problems[:20]

    async def apply_pressure(self, agents: Iterable[str]) -> None:
        """Hold the cpu and memory pressure aimed at `agents` now, release what has ended."""
        here = set(agents)
        wanted: dict[ResourceKind, int] = {}
        now = self.clock()
        hit: list[tuple[str, AimedFault]] = []
        for aimed in self.faults:
            if aimed.type != FaultType.RESOURCE or aimed.kind is not None:
                continue
            struck = sorted(here & aimed.agents)
            if not struck or not aimed.in_window(now):
                continue
            fault = aimed.fault
            if fault.resource == ResourceKind.CPU:
                amount = fault.cpu_percent or DEFAULT_CPU_PERCENT
            else:
                amount = fault.memory_mb or DEFAULT_MEMORY_MB
            kind = ResourceKind(str(fault.resource))
            wanted[kind] = max(wanted.get(kind, 0), amount)
            hit += [(agent, aimed) for agent in struck]
        held = {ResourceKind.CPU: self.pressure.cpu_percent}
        held[ResourceKind.MEMORY] = self.pressure.memory_mb
        started = bool(wanted) and wanted != {k: v for k, v in held.items() if v}
        self.pressure.apply(wanted)
        if started:
            for agent, aimed in hit:
                await self._record(agent, aimed, f"process:{aimed.fault.resource}")

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        if not self.faults:
            return await proceed()
        now = self.clock()
        fired = [f for f in self.faults if f.fires(call, now)]
        if not fired:
            return await proceed()
        for aimed in fired:
            await self._record(call.agent, aimed, call.key)
        delay = sum((f.fault.latency_ms or 0) for f in fired if f.type == FaultType.LATENCY)
        if delay:
            await asyncio.sleep(delay / 1000)
        effect = next((f for f in fired if f.type != FaultType.LATENCY), None)
        if effect is None:
            return await proceed()
        return await self._inject(call, effect, proceed)

    async def _inject(self, call: Call, aimed: AimedFault, proceed: Proceed[Any]) -> Any:
        fault, kind = aimed.fault, aimed.type
        by = f"injected by ChaosExperiment {aimed.experiment}"
        where = f"{call.kind.value} '{call.dependency}'"
        if kind == FaultType.ERROR:
            status = fault.http_status or DEFAULT_STATUS
            text = fault.error_message or by
            if call.kind == CallKind.MODEL:
                raise status_error(f"model '{call.dependency}'", status, text)
            error: HiveError = (
                Unavailable(f"{where}: HTTP {status}: {text}")
                if status in RETRYABLE_STATUS
                else ExternalFailure(f"{where}: HTTP {status}: {text}")
            )
            raise error
        if kind == FaultType.TIMEOUT:
            await asyncio.sleep((fault.latency_ms or 0) / 1000)
            raise Unavailable(f"{where}: no answer in time ({by})")
        if kind == FaultType.UNAVAILABLE:
            raise Unavailable(f"{where}: unavailable ({fault.error_message or by})")
        if kind == FaultType.NETWORK_PARTITION:
            raise Unavailable(f"agent {call.dependency}: unreachable (network partition, {by})")
        if kind == FaultType.EMPTY_ANSWER:
            return Reply(content="", tool_calls=[], finish_reason="stop")
        if kind == FaultType.MALFORMED_JSON:
            reply = await proceed()
            return replace(reply, content=not_json(reply.content), tool_calls=[])
        if kind == FaultType.RESOURCE:  # tokens: the answer cut to a squeezed budget
            reply = await proceed()
            budget = fault.max_tokens or DEFAULT_ANSWER_TOKENS
            words = (reply.content or "").split()
            if len(words) <= budget:
                return reply
            return replace(
                reply,
                content=" ".join(words[:budget]),
                finish_reason="length",
                completion_tokens=min(reply.completion_tokens, budget),
            )
        if kind == FaultType.SANDBOX_KILL:
            return await self._kill(proceed, (fault.latency_ms or 0) / 1000, by)
        return await proceed()

    @staticmethod
    async def _kill(proceed: Proceed[Any], after_s: float, by: str) -> Any:
        started = time.perf_counter()
        running = asyncio.ensure_future(proceed())
        done, _ = await asyncio.wait({running}, timeout=after_s)
        if done:
            return running.result()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, HiveError):
            await running
        return ExecutionResult(
            stdout="",
            stderr="",
            exit_code=None,
            signal=int(signal.SIGKILL),
            wall_s=time.perf_counter() - started,
            cpu_s=0.0,
            peak_memory_bytes=0,
            message=f"the execution was killed ({by})",
        )

    async def _record(self, agent: str, aimed: AimedFault, dependency: str) -> None:
        fault_type = aimed.type.value
        FAULTS_INJECTED.labels(aimed.experiment, fault_type, agent).inc()
        key = (agent, aimed.experiment, fault_type)
        moment = now_utc()
        count = self.counts.get(key)
        if count is None:
            self.counts[key] = FaultCount(
                experiment=aimed.experiment,
                type=fault_type,
                count=1,
                first_time=moment,
                last_time=moment,
            )
        else:
            count.count += 1
            count.last_time = moment
        if self.bus is not None:
            await self.bus.publish(
                Event(
                    EventKind.FAULT_INJECTED,
                    agent,
                    {"experiment": aimed.experiment, "fault": fault_type, "dependency": dependency},
                )
            )
