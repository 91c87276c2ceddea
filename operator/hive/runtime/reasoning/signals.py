"""Publishing reasoning and planning events: the same bus and kinds with or without a bus."""

from __future__ import annotations

from typing import Any

from hive.runtime.events import Event, EventBus, EventKind


async def emit(bus: EventBus | None, kind: EventKind, agent: str, **data: Any) -> None:
    """Publish one event when there is a bus; reasoning works the same without one."""
    if bus is not None:
        await bus.publish(Event(kind, agent, data))
