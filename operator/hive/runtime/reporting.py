"""How the runtime tells the outside world what an agent is doing."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Protocol

from hive.api.agentteam import AgentPhase, AgentStatus, Role, RunStatus


class StatusSink(Protocol):
    """Anything that takes an agent's status: the Kubernetes reporter, a test list, a log."""

    async def report(self, status: AgentStatus) -> None: ...


class RunSink(Protocol):
    """Anything that takes the team's run status, written by the coordinator."""

    async def report_run(self, run: RunStatus) -> None: ...


async def heartbeat(
    sink: StatusSink,
    name: str,
    role: Role | None,
    *,
    interval_s: float,
    stop: asyncio.Event,
    phase: AgentPhase = AgentPhase.IDLE,
) -> int:
    """Report `phase` every `interval_s` until `stop` is set; returns the number of reports."""
    sent = 0
    while True:
        await sink.report(
            AgentStatus(
                name=name,
                role=role,
                phase=phase,
                last_heartbeat=dt.datetime.now(dt.UTC).replace(microsecond=0),
            )
        )
        sent += 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue
        return sent
