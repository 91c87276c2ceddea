"""One way out of an agent: every call it makes passes one chain of middlewares.

A *call* is a model completion, a tool call, a peer request, a sandbox execution or a memory
operation. Where the runtime makes one (``OpenAICompatible``, ``ToolRegistry.call``,
``RemoteMember``, the sandbox pools), it hands the chain a :class:`Call` that says what is
called and a zero-argument ``transport`` that makes the call; each middleware sees the call,
may act before and after it, and calls ``proceed()`` to go on (or raises instead)::

    async def middleware(call: Call, proceed: Proceed[T]) -> T:
        ...                       # before: time it, refuse it (an open breaker), delay it
        result = await proceed()  # the rest of the chain, then the transport
        ...                       # after: record the outcome
        return result

Middlewares run in list order, the first outermost. An empty chain calls the transport
directly, so an agent without resilience settings pays nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Proceed = Callable[[], Awaitable[T]]


class CallKind(StrEnum):
    MODEL = "model"
    TOOL = "tool"
    PEER = "peer"
    SANDBOX = "sandbox"
    MEMORY = "memory"


@dataclass(frozen=True)
class Call:
    """What an agent calls: its kind, the dependency (a model name, a tool, a peer, a sandbox,
    a memory store) and the operation on it (``complete``, ``execute``, ``propose``, ...)."""

    kind: CallKind
    dependency: str
    operation: str
    agent: str = ""
    request: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """The call's arguments where a middleware may change them before it tries again (a model
    call's ``messages``); the transport reads them each time it runs. None: not changeable."""

    @property
    def key(self) -> str:
        """The dependency as breakers and error patterns name it: ``kind:dependency``."""
        return f"{self.kind.value}:{self.dependency}"


class Middleware(Protocol):
    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any: ...


@dataclass(frozen=True)
class Chain:
    """The middlewares every call of one agent passes, in order (the first outermost)."""

    middlewares: Sequence[Middleware] = field(default_factory=tuple)
    agent: str = ""

    async def run(self, call: Call, transport: Proceed[T]) -> T:
        if not self.middlewares:
            return await transport()
        if self.agent and not call.agent:
            call = replace(call, agent=self.agent)

        async def at(index: int) -> T:
            if index == len(self.middlewares):
                return await transport()
            result: T = await self.middlewares[index](call, lambda: at(index + 1))
            return result

        return await at(0)

    def with_agent(self, agent: str) -> Chain:
        return Chain(self.middlewares, agent)


EMPTY = Chain()
