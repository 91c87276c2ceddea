"""kopf handlers. Each one reads the event, calls a pure builder, and applies the result."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import kopf

from hive.api import GROUP, VERSION
from hive.kube.status import apply_status
from hive.operator.metrics import RECONCILE_SECONDS, RECONCILES
from hive.operator.state import STATE
from hive.reconcile.agentteam import team_status

log = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, "agentteams")
@kopf.on.create(GROUP, VERSION, "agentteams")
@kopf.on.update(GROUP, VERSION, "agentteams")
async def reconcile_agent_team(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    name: str,
    namespace: str | None,
    **_: Any,
) -> None:
    assert namespace is not None, "AgentTeam is a namespaced kind"
    started = time.perf_counter()
    outcome = "error"
    try:
        desired = team_status(
            dict(spec),
            dict(status),
            generation=int(meta.get("generation") or 0),
            now=dt.datetime.now(dt.UTC),
        )
        await apply_status(STATE.client(), "AgentTeam", namespace, name, desired.wire())
        outcome = "ok"
    finally:
        RECONCILES.labels("AgentTeam", outcome).inc()
        RECONCILE_SECONDS.labels("AgentTeam").observe(time.perf_counter() - started)
