"""A team's privacy policy put in place in a process: the guard made from ``spec.privacy`` and
the settings (key, salt) or the team's transit key, its middleware first in the agent's call
chain (after the debugger), trace content and log records scrubbed at their sinks, memory writes
scrubbed before they are embedded and stored."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hive.api.agentteam import AgentStatus, PrivacyStatus, RunStatus
from hive.api.privacy import Boundary, PrivacySpec
from hive.errors import HiveError
from hive.runtime.identity.audit import AuditLog
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.keyring import Keyring
from hive.runtime.privacy.middleware import PrivacyLogFilter, PrivacyMiddleware
from hive.runtime.privacy.traces import scrub_exports
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.tracing.setup import Tracing
from hive.settings import PrivacySettings


def make_guard(
    spec: PrivacySpec | None,
    agent: str,
    settings: PrivacySettings,
    audit: AuditLog | None = None,
    keyring: Keyring | None = None,
) -> Guard | None:
    """The agent's guard, or None where the team has no privacy policy. `keyring` (the team's
    transit key, where a Vault is configured) seals pseudonyms; without it the key from the
    team's Secret (HIVE_PRIVACY__KEY) does."""
    if spec is None:
        return None
    key = settings.key.get_secret_value() if settings.key else None
    salt = settings.salt.get_secret_value() if settings.salt else None
    return Guard(spec, agent=agent, key=key, salt=salt, audit=audit, keyring=keyring)


class PrivacyNotStarted(HiveError):
    """A team's privacy policy could not be put in place in an agent's pod (its packages or
    model missing, its key or recognisers unusable): the pod reports it and stops rather than
    run without the policy."""

    def __init__(self, agent: str, cause: BaseException) -> None:
        super().__init__(
            f"spec.privacy could not start in agent {agent}'s pod "
            f"({type(cause).__name__}: {cause}); the agent does not run without it"
        )
        self.agent = agent


def pod_guard(
    spec: PrivacySpec | None,
    agent: str,
    settings: PrivacySettings,
    keyring: Callable[[], Keyring] | None = None,
) -> Guard | None:
    """The pod's guard (None without a policy; `keyring` makes the team's transit keyring where
    a Vault is configured); PrivacyNotStarted whatever stops it."""
    if spec is None:
        return None
    try:
        return make_guard(spec, agent, settings, keyring=keyring() if keyring else None)
    except Exception as exc:  # any cause: the pod must say why, not crash-loop silently
        raise PrivacyNotStarted(agent, exc) from exc


class StatusWriter(Protocol):
    async def report(self, status: AgentStatus) -> None: ...

    async def report_run(self, run: RunStatus) -> None: ...


class ScrubbedStatus:
    """An agent's status writes with their texts through the guard first: what it works on,
    its last error, the run's answer and message. A team's status is read by whoever may read
    the team, so it is held to the policy's logs boundary (logs, trace content and events).
    Everything else passes to the writer as it is."""

    def __init__(self, writer: StatusWriter, guard: Guard) -> None:
        self._writer = writer
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def _text(self, text: str | None, source: str) -> str | None:
        if text is None:
            return None
        scrubbed: str = self._guard.scrub_text(text, Boundary.LOGS, source)
        return scrubbed

    async def report(self, status: AgentStatus) -> None:
        await self._writer.report(
            status.model_copy(
                update={
                    "current_task": self._text(status.current_task, "status currentTask"),
                    "last_error": self._text(status.last_error, "status lastError"),
                }
            )
        )

    async def report_run(self, run: RunStatus) -> None:
        await self._writer.report_run(
            run.model_copy(
                update={
                    "result": self._text(run.result, "status run.result"),
                    "message": self._text(run.message, "status run.message"),
                }
            )
        )


class PrivacySink(Protocol):
    async def report_privacy(self, privacy: PrivacyStatus) -> None: ...


def privacy_reporter(sink: PrivacySink, guard: Guard) -> Callable[[], Awaitable[None]]:
    """What the coordinator calls after each run: the guard's counts into status.privacy."""

    async def report() -> None:
        await sink.report_privacy(guard.status(dt.datetime.now(dt.UTC)))

    return report


def scrub_trace_content(middlewares: Any, guard: Guard) -> None:
    """Content recorded on spans (tracing's ``scrub`` hook) goes through the guard (logs)."""
    for middleware in middlewares:
        if hasattr(middleware, "scrub"):
            middleware.scrub = lambda text: guard.scrub_text(text, Boundary.LOGS, "trace")


def install_log_filter(guard: Guard) -> PrivacyLogFilter:
    """Every record the root logger's handlers write is scrubbed first."""
    log_filter = PrivacyLogFilter(guard)
    root = logging.getLogger()
    root.addFilter(log_filter)
    for handler in root.handlers:
        handler.addFilter(log_filter)
    return log_filter


def with_privacy(chain: Chain, guard: Guard) -> Chain:
    """`chain` with the guard's middleware first, its trace content scrubbed."""
    scrub_trace_content(chain.middlewares, guard)
    return Chain((PrivacyMiddleware(guard), *chain.middlewares), chain.agent)


def scrub_memory_write(chain: Chain, store: str, text: str) -> str:
    """`text` as the chain's privacy policy lets it into memory `store` (as it is without)."""
    for middleware in chain.middlewares:
        if isinstance(middleware, PrivacyMiddleware):
            return middleware.guard.scrub_text(text, Boundary.MEMORY_WRITES, f"memory:{store}")
    return text


def install_privacy(parts: ChainParts, guard: Guard, tracing: Tracing | None = None) -> None:
    """An agent pod's policy: its middleware in the chain's parts, trace content, every span
    `tracing` exports and the process's logs scrubbed."""
    parts.privacy = PrivacyMiddleware(guard)
    scrub_trace_content([parts.tracing], guard)
    scrub_exports(tracing, guard)
    install_log_filter(guard)


LOCAL_NAMESPACE, LOCAL_TEAM = "local", "run"


def local_audit() -> AuditLog:
    """The audit log of ``hive run``'s findings (namespace local, team run)."""
    from hive.runtime.identity.audit import team_log_path
    from hive.settings import get_settings

    folder = get_settings().agent.audit_dir
    return AuditLog(team_log_path(folder, LOCAL_NAMESPACE, LOCAL_TEAM))
