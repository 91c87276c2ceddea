"""The operator's verification of applied AgentTeams: a `Verified` condition per team.

Each team's protocol is model-checked once per protocol digest (the fields the TLA+ model reads,
so a change of resources or tools does not check it again), in a worker thread off the event
loop, at most `verify.concurrency` at once, each TLC run under `verify.time_limit_s`. A reconcile
never waits for it: until the verdict is in, the condition is Unknown (Checking), and when it
comes the team is queued again (`on_verdict`) so that its status takes the condition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from hive.api.agentteam import AgentTeamStatus
from hive.api.common import Condition, ConditionStatus
from hive.errors import HiveError, InvalidInput
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions
from hive.settings import VerifySettings
from hive.verify.check import VerifyReport, verify_protocol
from hive.verify.protocol import TeamProtocol, protocol_of

log = logging.getLogger(__name__)

VERIFIED = "Verified"
MESSAGE_LIMIT = 1000


def protocol_digest(protocol: TeamProtocol) -> str:
    return hashlib.sha256(repr(sorted(asdict(protocol).items())).encode()).hexdigest()[:16]


def verified_condition(
    report: VerifyReport | None, problem: str | None, *, generation: int, now: dt.datetime
) -> Condition:
    """The Verified condition of a report (None: still checking; problem: no model possible)."""
    if problem is not None:
        status, reason, message = ConditionStatus.UNKNOWN, "NotModelled", problem
    elif report is None:
        status, reason, message = ConditionStatus.UNKNOWN, "Checking", "model checking with TLC"
    elif report.outcome == "verified":
        status, reason, message = ConditionStatus.TRUE, "Verified", report.summary()
    elif report.outcome == "refused":
        status, reason, message = ConditionStatus.FALSE, "PropertyViolated", report.summary()
    else:
        status, reason, message = ConditionStatus.UNKNOWN, "Bounded", report.summary()
    return condition(
        VERIFIED, status, reason, message[:MESSAGE_LIMIT], generation=generation, now=now
    )


REPORTS_KEPT = 1024  # verdicts of distinct protocols kept; one evicted is worked out again


class Verifier:
    """Verdicts by protocol digest, worked out in the background; the most recently used
    REPORTS_KEPT are kept, so a cluster whose teams keep changing does not grow the operator."""

    def __init__(self) -> None:
        self.reports: LRUCache[str, VerifyReport] = LRUCache(maxsize=REPORTS_KEPT)
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.waiting: dict[str, set[tuple[str, str]]] = {}  # digest -> teams awaiting it
        self.on_verdict: Callable[[str, str], None] | None = None
        self._slots: asyncio.Semaphore | None = None

    def status_with_verdict(
        self,
        status: AgentTeamStatus,
        spec: Mapping[str, Any],
        previous: Mapping[str, Any] | None,
        where: tuple[str, str],
        settings: VerifySettings,
        *,
        generation: int,
        now: dt.datetime,
    ) -> AgentTeamStatus:
        """`status` with the team's Verified condition; starts its check when it has none."""
        report, problem = None, None
        try:
            protocol = protocol_of(
                dict(spec),
                tokens_per_call=settings.tokens_per_call,
                swarm_parts=settings.swarm_parts,
                seconds_per_call=settings.seconds_per_call,
            )
        except InvalidInput as exc:
            problem = str(exc)
        else:
            digest = protocol_digest(protocol)
            report = self.reports.get(digest)
            if report is None:
                self._start(digest, protocol, where, settings)
        desired = verified_condition(report, problem, generation=generation, now=now)
        before = [c for c in previous_conditions(previous) if c.type == VERIFIED]
        kept = [c for c in status.conditions if c.type != VERIFIED]
        return status.model_copy(update={"conditions": kept + merge_conditions(before, [desired])})

    def _start(
        self, digest: str, protocol: TeamProtocol, where: tuple[str, str], settings: VerifySettings
    ) -> None:
        self.waiting.setdefault(digest, set()).add(where)
        if digest in self.pending:
            return
        self.pending[digest] = asyncio.ensure_future(self._check(digest, protocol, where, settings))

    async def _check(
        self, digest: str, protocol: TeamProtocol, where: tuple[str, str], settings: VerifySettings
    ) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(settings.concurrency)
        base = settings.spec_dir or Path(tempfile.gettempdir()) / "hive-verify"
        try:
            async with self._slots:  # TLC bounds its own runs: two, each within the time limit
                self.reports[digest] = await asyncio.to_thread(
                    verify_protocol,
                    protocol,
                    base / digest,
                    time_limit_s=settings.time_limit_s,
                    java=settings.java,
                    proof_timeout_s=settings.proof_timeout_s,
                )
        except HiveError as exc:
            log.warning("AgentTeam %s/%s: verification failed: %s", *where, exc)
            self.reports[digest] = VerifyReport(
                outcome="unknown", pattern=str(protocol.pattern), properties=[], message=str(exc)
            )
        finally:
            self.pending.pop(digest, None)
        for team in sorted(self.waiting.pop(digest, set())):
            if self.on_verdict is not None:
                self.on_verdict(*team)


VERIFIER = Verifier()
