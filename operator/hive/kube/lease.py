"""A coordination.k8s.io Lease used as a lock, as client-go's leader election uses one.

One attempt (`LeaseLock.try_acquire_or_renew`) reads the Lease and writes it back with the
resourceVersion it read, so of two writers racing for it the API server lets exactly one win
(the other gets 409 Conflict). A Lease held by someone else counts as held until it has gone
unchanged for its ``leaseDurationSeconds`` *as measured on this machine's monotonic clock from
when this lock first saw that version*: the holder's timestamps are recorded for people, never
compared with our clock, so clock skew between machines cannot hand the Lease over early.
``leaseTransitions`` counts the changes of holder; `release` empties the holder so that the next
candidate need not wait out the duration (a clean shutdown).

Two users: the operator's leader election (hive.operator.leadership), and `TeamRunLease`, the
claim that lets one of a coordinator agent's replicas run the team's goal (hive.runtime.pod).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from hive.kube.errors import api_errors
from hive.reconcile.agentteam import run_lease_name

LEADER_LABEL = "hive.dev/leader"


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says now."""

    holder: str | None
    duration_s: int
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    transitions: int
    resource_version: str


def _record(lease: Lease) -> LeaseRecord:
    spec = lease.spec or LeaseSpec()
    return LeaseRecord(
        holder=spec.holderIdentity or None,
        duration_s=int(spec.leaseDurationSeconds or 0),
        acquired=spec.acquireTime,
        renewed=spec.renewTime,
        transitions=int(spec.leaseTransitions or 0),
        resource_version=str((lease.metadata and lease.metadata.resourceVersion) or ""),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaseLock:
    """The Lease `namespace`/`name`, taken and kept by `identity` for `duration_s` at a time."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        name: str,
        identity: str,
        duration_s: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration_s = duration_s
        self.clock = clock
        self.record: LeaseRecord | None = None  # as last read or written
        self._observed_at = 0.0  # our clock when `record`'s version was first seen

    @property
    def what(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def _observe(self, record: LeaseRecord) -> None:
        if self.record is None or self.record.resource_version != record.resource_version:
            self._observed_at = self.clock()
        self.record = record

    def held_by_other(self) -> bool:
        """Whether, as last read, someone else holds the Lease and it has not run out."""
        record = self.record
        if record is None or record.holder in (None, self.identity):
            return False
        return self.clock() < self._observed_at + record.duration_s

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when `identity` holds the Lease afterwards. API errors other than
        a lost race (409) raise Hive errors."""
        with api_errors(self.what):
            try:
                current = await self.client.get(Lease, self.name, namespace=self.namespace)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                return await self._create()
            self._observe(_record(current))
            if self.held_by_other():
                return False
            return await self._write(self._taken(self.record))  # type: ignore[arg-type]

    def _taken(self, record: LeaseRecord) -> Lease:
        now = _now()
        mine = record.holder == self.identity
        return Lease(
            metadata=ObjectMeta(
                name=self.name, namespace=self.namespace, resourceVersion=record.resource_version
            ),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=self.duration_s,
                acquireTime=record.acquired if mine and record.acquired else now,
                renewTime=now,
                leaseTransitions=record.transitions + (0 if mine or not record.holder else 1),
            ),
        )

    async def _create(self) -> bool:
        now = _now()
        lease = Lease(
            metadata=ObjectMeta(name=self.name, namespace=self.namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=self.duration_s,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )
        try:
            created = await self.client.create(lease)
        except ApiError as exc:
            if exc.status.code == 409:  # another candidate created it first
                return False
            raise
        self._observe(_record(created))
        return True

    async def _write(self, lease: Lease) -> bool:
        try:
            written = await self.client.replace(lease)
        except ApiError as exc:
            if exc.status.code == 409:  # changed since we read it: someone else won
                return False
            raise
        self._observe(_record(written))
        return True

    async def release(self) -> None:
        """Give the Lease up if this identity holds it (the next candidate takes it at once)."""
        record = self.record
        if record is None or record.holder != self.identity:
            return
        with api_errors(self.what):
            released = Lease(
                metadata=ObjectMeta(
                    name=self.name,
                    namespace=self.namespace,
                    resourceVersion=record.resource_version,
                ),
                spec=LeaseSpec(
                    holderIdentity=None,
                    leaseDurationSeconds=1,
                    acquireTime=record.acquired,
                    renewTime=_now(),
                    leaseTransitions=record.transitions,
                ),
            )
            await self._write(released)


async def read_lease(client: AsyncClient, namespace: str, name: str) -> LeaseRecord | None:
    """The Lease as it is now; None when there is none."""
    with api_errors(f"Lease {namespace}/{name}"):
        try:
            return _record(await client.get(Lease, name, namespace=namespace))
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise


async def mark_leader_pod(client: AsyncClient, namespace: str, pod: str, leader: bool) -> None:
    """Label `pod` ``hive.dev/leader=true`` (or drop the label): the metrics Service selects it."""
    body = {"metadata": {"labels": {LEADER_LABEL: "true" if leader else None}}}
    with api_errors(f"Pod {namespace}/{pod}"):
        await client.patch(Pod, pod, body, namespace=namespace, patch_type=PatchType.MERGE)


class TeamRunLease:
    """The claim on a team's run (hive.runtime.pod.RunClaim): the Lease ``hive-run-<team>`` in
    the team's namespace, held by one coordinator replica (its pod name) while it runs."""

    def __init__(
        self, client: AsyncClient, namespace: str, team: str, identity: str, duration_s: int
    ) -> None:
        self.lock = LeaseLock(client, namespace, run_lease_name(team), identity, duration_s)
        self.retry_s = duration_s / 3

    async def try_claim(self) -> bool:
        return await self.lock.try_acquire_or_renew()

    async def release(self) -> None:
        await self.lock.release()
