"""Which replica acts: the holder of a coordination.k8s.io Lease; the others stand by.

Why a Lease of our own (hive.kube.lease) rather than kopf's peering: kopf's peering keeps its
peers in a KopfPeering custom resource (a CRD more to install and grant), tells peers apart by
priority and pauses the lower ones when it *sees* a higher one, but has no deadline after which
a leader that cannot reach the API server stops by itself: a partitioned leader would go on
acting while the standby, no longer seeing it, starts too. A Lease is what Kubernetes' own
controllers elect with, and lets us say exactly when a leader stops.

The timing, as client-go's: the leader renews every ``retry_period_s``; if it has not renewed
for ``renew_deadline_s`` it stops acting (each renewal is cut off at that deadline, so a hung
request cannot hold it); a standby takes the Lease once it has seen it unchanged for
``lease_duration_s`` on its own clock. As renew_deadline_s < lease_duration_s, the old leader
has stopped before a new one can start. The standby takes over at most lease_duration_s +
retry_period_s after the leader's last renewal (14 s with the defaults).

What "acting" means: kopf's watches, and the watches of the teams' children beside them
(hive.operator.handlers, `watch_children_while_acting`), run only on the leader. Standby, kopf
is paused through its own pause switch (the toggle set its peering freeze uses: watch streams
close, no events reach handlers, timers and daemons stop) and the children's watches end; the
admission webhook and the health endpoint are apart from it and keep answering on every
replica. Work already queued or in flight when leadership is lost is fenced by `may_act()`: a
ChaosExperiment's actions check it right before each write (hive.operator.chaos), a pod kill
renewing the Lease first (`confirm_leading`); a queued or retried reconcile checks it before
it starts, the periodic resync before it asks for anything, a child's watch event before it is
taken (hive.operator.handlers). A reconcile already past that check finishes its level-based
writes; a chaos step never acts twice. kopf has no public hook for its pause switch;
`pause_kopf_while_standing_by` wraps its orchestrator
(``kopf._core.reactor.orchestration.orchestrator``, kopf pinned exactly in pyproject) to add
one toggle to the switch, and fails loudly at start if kopf changes that.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kopf._core.reactor import orchestration  # kopf's internals: kopf is pinned exactly
from prometheus_client import Gauge

from hive.errors import HiveError, NotInstalled
from hive.kube.client import ApiClient
from hive.kube.lease import LeaseLock, mark_leader_pod
from hive.settings import Settings

log = logging.getLogger(__name__)
LEADER = Gauge("hive_operator_leader", "1 while this replica holds the leader Lease and acts.")


@dataclass(frozen=True)
class Election:
    """Where and as whom this replica takes part in the election."""

    namespace: str
    lease: str
    identity: str
    pod: str | None  # labelled hive.dev/leader=true while it leads
    duration_s: int
    renew_deadline_s: float
    retry_period_s: float


def election_from(settings: Settings) -> Election | None:
    """The election `settings` ask for; None when this replica acts alone."""
    le, kube = settings.operator.leader_election, settings.kube
    account = kube.service_account_dir
    enabled = le.enabled
    if enabled is None:
        enabled = kube.kubeconfig is None and (account / "token").is_file()
    if not enabled:
        return None
    return Election(
        namespace=le.lease_namespace or settings.operator.namespace or _account_namespace(account),
        lease=le.lease_name,
        identity=le.pod_name or f"{socket.gethostname()}-{os.getpid()}",
        pod=le.pod_name,
        duration_s=le.lease_duration_s,
        renew_deadline_s=le.renew_deadline_s,
        retry_period_s=le.retry_period_s,
    )


def _account_namespace(account: Path) -> str:
    path = account / "namespace"
    return path.read_text().strip() if path.is_file() else "default"


class Leadership:
    """Keeps trying to hold the Lease; says whether this replica may act right now."""

    def __init__(
        self,
        election: Election,
        client: ApiClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.election = election
        self.client = client
        self.clock = clock
        self.lock = LeaseLock(
            client, election.namespace, election.lease, election.identity, election.duration_s
        )
        self.leading = False
        self._renewed_at = float("-inf")  # our clock when the last successful renewal was sent
        self.changed = asyncio.Event()  # set on every change of `acting`; cleared by waiters
        # called with the new value whenever `leading` changes, before kopf hears of it
        self.on_change: Callable[[bool], None] | None = None
        # one try at a time: a renewal for a pod kill and the loop's would race each other
        self._trying = asyncio.Lock()

    @property
    def acting(self) -> bool:
        """True while this replica leads and its last renewal is younger than the deadline."""
        return self.leading and self.clock() < self._renewed_at + self.election.renew_deadline_s

    async def run(self) -> None:
        """Take part in the election until cancelled; on cancellation, give the Lease up."""
        labelling = (
            asyncio.create_task(self._keep_label(self.election.pod))
            if self.election.pod is not None
            else None
        )
        try:
            while True:
                if self.leading and not self.acting:  # the deadline passed mid-request
                    self._set_leading(False)
                await self._attempt()
                await asyncio.sleep(self._pause())
        finally:
            if labelling is not None:
                labelling.cancel()
            was_leading = self.leading
            self._set_leading(False)
            if was_leading:
                with contextlib.suppress(HiveError, OSError, TimeoutError):
                    await asyncio.wait_for(self.lock.release(), self.election.retry_period_s)
                if self.election.pod is not None:
                    await self._label(self.election.pod, False)

    def _pause(self) -> float:
        period = self.election.retry_period_s
        if not self.leading:
            return period
        left = self._renewed_at + self.election.renew_deadline_s - self.clock()
        return max(0.0, min(period, left))

    async def _attempt(self) -> bool:
        """One try to take or renew the Lease; True when this replica holds it afterwards."""
        async with self._trying:
            return await self._try()

    async def _try(self) -> bool:
        sent = self.clock()
        # a leader's renewal may not outlast its deadline; a standby's try, one period
        limit = (
            self._renewed_at + self.election.renew_deadline_s - sent
            if self.leading
            else self.election.retry_period_s
        )
        held = False
        try:
            held = await asyncio.wait_for(self.lock.try_acquire_or_renew(), max(0.05, limit))
        except (HiveError, TimeoutError, OSError) as exc:
            log.warning("leader election: %s: %s", self.lock.what, exc or type(exc).__name__)
        if held:
            self._renewed_at = sent
            self._set_leading(True)
        elif self.leading and (not self.acting or self.lock.held_by_other()):
            self._set_leading(False)
        return held

    async def renew_now(self) -> bool:
        """Renew the Lease now, for an action that must not happen twice: True only when this
        replica was acting and the API server took its renewal (a write it accepts from the
        holder alone, at the version read). The standby cannot take the Lease for a whole
        lease duration after that write."""
        return self.acting and await self._attempt() and self.acting

    def _set_leading(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        LEADER.set(1 if leading else 0)
        record = self.lock.record
        if leading:
            log.info(
                "leading as %s (Lease %s/%s, transitions %s)",
                self.election.identity,
                self.election.namespace,
                self.election.lease,
                record.transitions if record else 0,
            )
        else:
            log.warning("stopped leading as %s", self.election.identity)
        if self.on_change is not None:
            self.on_change(leading)
        self.changed.set()

    async def _keep_label(self, pod: str) -> None:
        """Keep `pod` labelled hive.dev/leader=true exactly while leading, retrying until the
        API server takes it; at start, whatever a restarted container left is put right."""
        labelled: bool | None = None
        while True:
            leading = self.leading
            if labelled != leading and await self._label(pod, leading):
                labelled = leading
            await asyncio.sleep(min(1.0, self.election.retry_period_s))

    async def _label(self, pod: str, leading: bool) -> bool:
        try:
            await asyncio.wait_for(
                mark_leader_pod(self.client, self.election.namespace, pod, leading),
                self.election.retry_period_s,
            )
        except (HiveError, TimeoutError, OSError) as exc:
            change = "set" if leading else "removed"
            log.warning("leader label of pod %s not %s: %s", pod, change, exc or "timeout")
            return False
        return True

    async def wait_changed(self, timeout_s: float) -> None:
        """Return when `acting` may have changed (or after `timeout_s`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout_s)
        self.changed.clear()


_current: Leadership | None = None


def may_act() -> bool:
    """Whether this replica may act now: it leads, or there is no election."""
    return _current is None or _current.acting


async def confirm_leading() -> bool:
    """`may_act`, proven against the API server (`Leadership.renew_now`) when there is an
    election: what a pod kill asks right before it is sent."""
    return _current is None or await _current.renew_now()


def elect(leadership: Leadership | None) -> None:
    """Make `leadership` the one `may_act` asks (None: this replica acts alone)."""
    global _current
    _current = leadership


def pause_kopf_while_standing_by(leadership: Leadership) -> None:
    """Add a toggle "not the leader" to kopf's pause switch, on whenever `leadership` is not
    acting. Call before kopf starts."""
    original: Callable[..., Awaitable[None]] = orchestration.orchestrator
    if getattr(original, "hive_paused_by", None) is not None:
        original = original.hive_paused_by  # type: ignore[attr-defined]
    if "operator_paused" not in inspect.signature(original).parameters:
        raise NotInstalled(
            "kopf with the pause switch hive.operator.leadership drives",
            "the kopf version pinned in pyproject.toml (make venv)",
        )

    async def orchestrator(*, operator_paused: Any, **kwargs: Any) -> None:
        standby = await operator_paused.make_toggle(not leadership.acting, name="not the leader")
        follower = asyncio.create_task(_follow(leadership, standby))
        try:
            await original(operator_paused=operator_paused, **kwargs)
        finally:
            follower.cancel()

    orchestrator.hive_paused_by = original  # type: ignore[attr-defined]
    orchestration.orchestrator = orchestrator


async def _follow(leadership: Leadership, standby: Any) -> None:
    """Keep kopf's toggle in step with `leadership`, also when a deadline passes unannounced."""
    while True:
        await standby.turn_to(not leadership.acting)
        await leadership.wait_changed(0.5)
