"""Watching a kind of object without holding it: each event's object, as parsed JSON, handed to
a callback that keeps what it needs, and dropped.

What the operator watches of the teams' children (eight kinds and the agents' pods, several
objects a team) it reads a few fields of. kopf's watch machinery, made for the objects it runs
handlers with, keeps a memory of five objects for every object it has seen, deep-copies each
event's body and queues the events of each object for a task of its own: at a thousand teams,
tens of megabytes held and, worse, a burst of ten thousand queued bodies whose pages the
allocator keeps long after. A `Watch` reads one event at a time off the stream and holds
nothing but the resourceVersion to resume from.

The protocol is the API server's: a watch without a resourceVersion begins with an ADDED event
for every object that exists (what a listing would have said), then streams changes; it is
resumed from the last version seen (bookmarks keep that fresh while nothing changes), and
started afresh when the server answers that the version is too old (410 Gone). Objects deleted
while a watch was away are not reported; the periodic listings of the readers catch those.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from lightkube import ALL_NS

from hive.kube.children import KIND_RESOURCES, label_selector
from hive.kube.client import ApiClient

log = logging.getLogger(__name__)

OnEvent = Callable[[str, dict[str, Any]], None]  # (ADDED | MODIFIED | DELETED, object)
SERVER_TIMEOUT_S = 300  # a watch the server ends after this long (then resumed at once)
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)  # between failed tries in a row


class WatchGone(Exception):
    """The server no longer has the version the watch would resume from (410 Gone)."""


class Watch:
    """The objects of `kind` in `namespace` (None: every namespace) carrying `labels` (a None
    value: the label with any value), each event handed to `on_event` as it is read."""

    def __init__(
        self,
        client: ApiClient,
        kind: str,
        namespace: str | None,
        labels: Mapping[str, str | None],
        on_event: OnEvent,
        *,
        server_timeout_s: int = SERVER_TIMEOUT_S,
    ) -> None:
        self.kind = kind
        self._client = client
        self._namespace = namespace
        self._selector = label_selector(labels)
        self._on_event = on_event
        self._server_timeout_s = server_timeout_s
        self.version: str | None = None  # to resume from; None: start afresh
        self.started = 0  # watch requests sent (the first, then each resumption)

    async def run(self) -> None:
        """Watch until cancelled, resuming after every end, error or lost connection."""
        failures = 0
        while True:
            try:
                await self._stream()
                failures = 0
            except WatchGone:
                self.version = None
                failures = 0
            except (httpx2.HTTPError, ValueError) as exc:
                pause = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                log.warning("watch of %s: %s; again in %.1f s", self.kind, exc, pause)
                await asyncio.sleep(pause)

    async def _stream(self) -> None:
        generic = self._client._client  # lightkube's request builder, then its httpx client
        where = ALL_NS if self._namespace is None else self._namespace
        params: dict[str, Any] = {
            "labelSelector": self._selector or None,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": self._server_timeout_s,
            "resourceVersion": self.version,
        }
        request = generic.prepare_request(
            "list", KIND_RESOURCES[self.kind], namespace=where, watch=True, params=params
        )
        http = generic._client
        timeout = httpx2.Timeout(10.0, read=self._server_timeout_s + 30.0)
        built = http.build_request(
            request.method, request.url, params=request.params, timeout=timeout
        )
        self.started += 1
        response = await http.send(built, stream=True)
        try:
            if response.status_code == 410:
                raise WatchGone()
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line:
                    self._take(json.loads(line))
        finally:
            await response.aclose()

    def _take(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchGone()
            raise ValueError(f"the server ended the watch: {obj.get('message') or obj}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.version = str(version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            try:
                self._on_event(kind, obj)
            except Exception:  # one object a reader cannot take stops no watch
                log.exception("watch of %s: an event was not taken", self.kind)
