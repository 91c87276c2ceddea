"""Why a team's pods cannot run, from what their status and their nodes say.

The operator observes each pod of an agent as a small :class:`PodObserved` (see
:func:`observe_pod`) and each node those pods run on as Ready or not (see
:func:`node_not_ready`); :func:`pod_problems` turns both into one line per problem, in the
pod's own words. Everything here is pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Container waiting reasons that mean the container will not start without a change.
FAILING_WAITING_REASONS = frozenset(
    {
        "ErrImageNeverPull",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)
# How long a pod's sandbox may take to be made before it counts as failing: a missing runtime
# handler leaves a pod ContainerCreating, with only PodReadyToStartContainers=False to show.
SANDBOX_GRACE = dt.timedelta(seconds=90)
# After this long without a sandbox, the pod's FailedCreatePodSandBox event (what the runtime
# said: an unknown runtime handler, a CNI failure) is read and reported.
SANDBOX_EVENT_GRACE = dt.timedelta(seconds=10)
SANDBOX_EVENT_REASON = "FailedCreatePodSandBox"
PROBLEM_LIMIT = 300  # characters of one problem
MESSAGE_LIMIT = 2000  # characters of all problems together


@dataclass(frozen=True)
class PodObserved:
    """What matters about one pod of an agent: where it runs and what keeps it from running."""

    name: str
    node: str | None = None
    problems: tuple[str, ...] = ()  # in the pod's own words, one per container or condition
    sandbox_pending_since: dt.datetime | None = None  # PodReadyToStartContainers=False since
    sandbox_failure: str | None = None  # the runtime's words, from the pod's latest event

    def sandbox_pending_for(self, now: dt.datetime) -> dt.timedelta | None:
        since = self.sandbox_pending_since
        return None if since is None else now - since


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _clip(text: str, limit: int = PROBLEM_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _container_problem(container: Mapping[str, Any]) -> str | None:
    waiting = _mapping(_mapping(container.get("state")).get("waiting"))
    reason = _text(waiting.get("reason"))
    if reason not in FAILING_WAITING_REASONS:
        return None
    words = f"container {_text(container.get('name')) or '?'}: {reason}"
    message = _text(waiting.get("message"))
    if message:
        words += f": {message}"
    terminated = _mapping(_mapping(container.get("lastState")).get("terminated"))
    if reason == "CrashLoopBackOff" and terminated:
        last = f"last exit code {terminated.get('exitCode', '?')}"
        if terminated.get("reason"):
            last += f" ({_text(terminated['reason'])})"
        if terminated.get("message"):
            last += f": {_text(terminated['message'])}"
        words += f"; {last}"
    return _clip(words)


def observe_pod(pod: Mapping[str, Any]) -> PodObserved | None:
    """The compact observation of a pod (as a plain dict); None for a pod on its way out."""
    meta = _mapping(pod.get("metadata"))
    if meta.get("deletionTimestamp"):
        return None
    status = _mapping(pod.get("status"))
    phase = status.get("phase")
    if phase in ("Succeeded", "Failed"):
        return None  # a replaced pod; its Deployment makes another
    problems: list[str] = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in _list(status.get(key)):
            problem = _container_problem(container)
            if problem:
                problems.append(problem)
    conditions = {_text(c.get("type")): c for c in _list(status.get("conditions"))}
    scheduled = conditions.get("PodScheduled")
    if (
        phase == "Pending"
        and scheduled is not None
        and scheduled.get("status") == "False"
        and scheduled.get("reason") == "Unschedulable"
    ):
        why = _text(scheduled.get("message")) or "no node fits"
        problems.append(_clip(f"Unschedulable: {why}"))
    sandbox = conditions.get("PodReadyToStartContainers")
    pending_since = None
    if sandbox is not None and sandbox.get("status") == "False":
        pending_since = _time(sandbox.get("lastTransitionTime"))
    node = _text(_mapping(pod.get("spec")).get("nodeName")) or None
    return PodObserved(
        name=_text(meta.get("name")),
        node=node,
        problems=tuple(problems),
        sandbox_pending_since=pending_since,
    )


def node_not_ready(node: Mapping[str, Any]) -> str | None:
    """Why a node (as a plain dict) is not Ready, or None when it is."""
    for cond in _list(_mapping(node.get("status")).get("conditions")):
        if cond.get("type") != "Ready":
            continue
        if cond.get("status") == "True":
            return None
        reason, message = _text(cond.get("reason")), _text(cond.get("message"))
        return _clip(": ".join(part for part in (reason, message) if part))
    return "it reports no Ready condition"


def agent_problems(
    agent: str,
    pods: Iterable[PodObserved],
    nodes_not_ready: Mapping[str, str],
    now: dt.datetime,
) -> tuple[list[str], list[str]]:
    """(node problems, pod problems) of one agent's pods, one line each, without repeats."""
    node_lines: dict[str, int] = {}
    pod_lines: dict[str, int] = {}

    def count(lines: dict[str, int], line: str) -> None:
        lines[line] = lines.get(line, 0) + 1

    for pod in pods:
        if pod.node is not None and pod.node in nodes_not_ready:
            why = nodes_not_ready[pod.node]
            line = f"agent {agent}: node {pod.node} is NotReady"
            count(node_lines, f"{line} ({why})" if why else line)
            continue
        for problem in pod.problems:
            count(pod_lines, f"agent {agent}: {problem}")
        pending = pod.sandbox_pending_for(now)
        if not pod.problems and pod.sandbox_failure and pending and pending >= SANDBOX_EVENT_GRACE:
            count(
                pod_lines,
                _clip(f"agent {agent}: pod {pod.name} cannot start: {pod.sandbox_failure}"),
            )
        elif not pod.problems and pending is not None and pending >= SANDBOX_GRACE:
            grace = int(SANDBOX_GRACE.total_seconds())
            count(
                pod_lines,
                f"agent {agent}: pod {pod.name} has no sandbox after {grace}s "
                "(PodReadyToStartContainers=False; the pod's events say why)",
            )

    def lines(found: dict[str, int]) -> list[str]:
        return [line if n == 1 else f"{line} ({n} pods)" for line, n in found.items()]

    return lines(node_lines), lines(pod_lines)


def joined(problems: Iterable[str]) -> str:
    """Problems as one condition message, clipped to a readable length."""
    return _clip("; ".join(problems), MESSAGE_LIMIT)


def needs_sandbox_event(pod: PodObserved, now: dt.datetime) -> bool:
    """True when the pod has waited for its sandbox long enough that its events say why."""
    pending = pod.sandbox_pending_for(now)
    return not pod.problems and pending is not None and pending >= SANDBOX_EVENT_GRACE


def recheck_after(pods: Iterable[PodObserved], now: dt.datetime) -> float | None:
    """Seconds until a pod's wait for its sandbox crosses a grace above (nothing else wakes
    the team then: the pod itself does not change); None when no pod waits."""
    waits = []
    for pod in pods:
        pending = pod.sandbox_pending_for(now)
        if pod.problems or pending is None:
            continue
        for grace in (SANDBOX_EVENT_GRACE, SANDBOX_GRACE):
            if pending < grace:
                waits.append((grace - pending).total_seconds() + 1)
                break
    return min(waits) if waits else None
