"""The teams' Deployments and agent pods as the watch reports them, by team: what a team's
reconcile reads instead of listing them. Two label-selected LISTs a reconcile were most of a
busy operator's reads, and each one is a scan of the namespace on the API server, so a
thousand teams cost a thousand times a thousand.

An index is fed by the watch's events (the kopf handlers of hive.operator.handlers) and is
complete once it has been listed since it was last emptied: the first reconcile after the
start or a change of leadership lists the kind once for every team (a page at a time, keeping
only what a reconcile needs) and waits for it, while the events go on. The events seen during
a listing are laid over it in order, so nothing that changed or went meanwhile is lost. The
periodic resync marks an index stale: the next read starts a listing in the background and
goes on with what the watch said, and as that listing replaces what was held, an object whose
deletion a watch never reported (a watch that lost its place) is dropped then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
V = TypeVar("V")
ObjectKey = tuple[str, str]  # namespace, name
TeamKey = tuple[str, str]  # namespace, team
Held = tuple[TeamKey, V]


class TeamIndex(Generic[V]):
    """One kind's objects of every team, as `observe` sees them, by team."""

    def __init__(
        self,
        what: str,
        team_of: Callable[[Mapping[str, Any]], str | None],
        observe: Callable[[Mapping[str, Any]], V | None],
        listing: Callable[[], AsyncIterator[Mapping[str, Any]]],
    ) -> None:
        self.what = what
        self._team_of = team_of
        self._observe = observe
        self._listing = listing
        self._held: dict[ObjectKey, Held[V]] = {}
        self._by_team: dict[TeamKey, dict[str, V]] = {}
        self._complete = False
        self._stale = False
        self._running: asyncio.Future[None] | None = None
        self._background: asyncio.Task[None] | None = None
        self._during: list[tuple[ObjectKey, Held[V] | None]] | None = None

    def __len__(self) -> int:
        return len(self._held)

    def _entry(self, obj: Mapping[str, Any]) -> tuple[ObjectKey, Held[V] | None]:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        team = self._team_of(obj)
        value = self._observe(obj) if team else None
        return key, None if team is None or value is None else ((key[0], team), value)

    def seen(self, obj: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """Take in a watch event's object; whether what a reconcile reads of it changed."""
        key, entry = self._entry(obj)
        if deleted:
            entry = None
        if self._during is not None:
            self._during.append((key, entry))
        return self._put(key, entry)

    def _put(self, key: ObjectKey, entry: Held[V] | None) -> bool:
        before = self._held.get(key)
        if before == entry:
            return False
        if before is not None:
            members = self._by_team.get(before[0], {})
            members.pop(key[1], None)
            if not members:
                self._by_team.pop(before[0], None)
        if entry is None:
            self._held.pop(key, None)
        else:
            self._held[key] = entry
            self._by_team.setdefault(entry[0], {})[key[1]] = entry[1]
        return True

    async def of_team(self, namespace: str, team: str) -> dict[str, V]:
        """The team's objects by name, listing the kind first if the index is not complete."""
        if not self._complete:
            await self._list()
        elif self._stale and self._running is None:
            self._stale = False
            self._background = asyncio.ensure_future(self._relist())
        return dict(self._by_team.get((namespace, team), {}))

    async def _relist(self) -> None:
        try:
            await self._list()
        except Exception as exc:  # the watch's view stands until the next resync
            log.warning("listing %s again failed: %s", self.what, exc)

    async def _list(self) -> None:
        if self._running is not None:  # another reconcile is listing: wait for its listing
            await asyncio.shield(self._running)
            return
        running = self._running = asyncio.get_running_loop().create_future()
        self._during = []
        try:
            fresh: dict[ObjectKey, Held[V]] = {}
            async for obj in self._listing():
                key, entry = self._entry(obj)
                if entry is not None:
                    fresh[key] = entry
            during, self._during = self._during, None
            self._held, self._by_team = {}, {}
            for key, entry in fresh.items():
                self._put(key, entry)
            for key, entry in during:  # what the watch said while the listing ran
                self._put(key, entry)
            self._complete = True
            running.set_result(None)
        except BaseException as exc:
            self._during = None
            running.set_exception(exc)
            running.exception()  # retrieved here: a reconcile waiting on it gets it too
            raise
        finally:
            self._running = None

    def stale(self) -> None:
        """List again, in the background, at the next read (the periodic resync)."""
        self._stale = True

    def clear(self) -> None:
        """Forget everything (a change of leadership): the next read lists again."""
        self._held, self._by_team = {}, {}
        self._complete = self._stale = False

    def forget_teams_except(self, teams: set[TeamKey]) -> None:
        """Drop what is held for teams not in `teams` (gone without an event reaching us)."""
        for key in [k for k, (team, _) in self._held.items() if team not in teams]:
            self._put(key, None)
