"""The debugger from the command line: `hive run --debug` and its flags (the terminal UI is
hive.cli.debugui), the replay of a recorded session, `hive debug TEAM` attaching to a team
running in a cluster through its coordinator's debug endpoint, and that endpoint's wiring in
the coordinator's pod (with the route where the subordinates' pods stop at its debugger)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx2
from rich.console import Console
from rich.markup import escape

from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput, Unavailable
from hive.runtime.debug.breakpoints import Breakpoint
from hive.runtime.debug.debugger import Debugger, Stop
from hive.runtime.debug.run import comparable
from hive.runtime.debug.session import Action, Session
from hive.runtime.teams.team import TeamResult
from hive.settings import Settings, get_settings

if TYPE_CHECKING:
    from hive.runtime.debug.remote import SubordinateStops
    from hive.runtime.debug.server import DebugServer, Decision
    from hive.runtime.pod import AgentPod, PodConfig
    from hive.runtime.resilience.chain import ChainParts

log = logging.getLogger(__name__)
TeamRun = Callable[..., Awaitable[TeamResult]]  # run_team with all but `live` and `console`


@dataclass
class DebugChoice:
    """What `hive run` was asked to debug: breakpoints, the UI, a session to write, a session
    to replay (from a step, with a change)."""

    breakpoints: list[Breakpoint] = field(default_factory=list)
    interactive: bool = False
    session_path: Path | None = None
    replay: Session | None = None
    debugger: Debugger = field(default_factory=Debugger)

    def finish(self, result: TeamResult, console: Console) -> None:
        """After the run: write the session, and say whether a replay gave the same report."""
        if self.session_path is not None:
            self.debugger.session.export(self.session_path)
            console.print(f"debug session written to {self.session_path}")
        if self.replay is not None and self.replay.report is not None:
            was, now = comparable(self.replay.report), comparable(result.wire())
            differ = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
            same = "the same report as the recorded run" if not differ else "a different report"
            console.print(
                f"replay: {same}" + (f" (differs in {', '.join(differ)})" if differ else "")
            )


def parse_change(text: str) -> tuple[int, Action | None]:
    """`--rewind STEP[:edit=TEXT|:score=X|:skip|:abort]` as the step and the change there."""
    step_text, _, change = text.partition(":")
    try:
        step = int(step_text)
    except ValueError:
        raise InvalidInput("--rewind", f"{text!r}: starts with a step number") from None
    if not change:
        return step, None
    action, _, value = change.partition("=")
    if action == "score":
        try:
            return step, Action("score", step, value=float(value))
        except ValueError:
            raise InvalidInput("--rewind", f"{text!r}: score=NUMBER") from None
    if action == "edit" and value:
        return step, Action("edit", step, value=value)
    if action in ("skip", "abort") and not value:
        return step, Action(action, step, value=True)
    raise InvalidInput("--rewind", f"{text!r}: the change is edit=TEXT, score=X, skip or abort")


def debug_choice(
    debug: bool,
    breaks: tuple[str, ...],
    session_path: Path | None,
    replay_path: Path | None,
    rewind: str | None,
) -> DebugChoice | None:
    """The run's debugging from `hive run`'s flags; None when it has none."""
    if not (debug or breaks or session_path or replay_path or rewind):
        return None
    if breaks and not debug:
        raise InvalidInput("--break", "breakpoints pause the run: give --debug too")
    if rewind and replay_path is None:
        raise InvalidInput("--rewind", "rewinds a recorded session: give --replay FILE too")
    points = [Breakpoint.parse(b) for b in breaks]
    if replay_path is None:
        return DebugChoice(points, debug, session_path, None, Debugger(points))
    session = Session.load(replay_path)
    if rewind:
        step, change = parse_change(rewind)
        session = session.rewound(step, change)
    return DebugChoice(points, debug, session_path, session, Debugger.replaying(session, points))


def describe(stop: Stop) -> str:
    """The paused stop point in a few lines."""
    data = stop.data
    if stop.kind == "delegated":
        what = f"{stop.agent} delegates to {data.get('to')}: {data.get('task')}"
    elif stop.kind == "model-call":
        calls = ", ".join(data.get("tool_calls") or []) or "none"
        what = f"{stop.agent}{_in_pod(data)}'s model answered: {data.get('content') or ''}\n"
        what += f"tool calls: {calls}"
    elif stop.kind == "tool-call":
        what = f"{stop.agent}{_in_pod(data)} is about to call the tool {data.get('tool')}"
        if data.get("arguments") is not None:
            what += f" with {json.dumps(data['arguments'], default=str)[:400]}"
    elif stop.kind == "reviewed":
        what = (
            f"{stop.agent} reviewed {data.get('of')}: score {data.get('score')} "
            f"({data.get('feedback') or 'no feedback'})"
        )
    else:
        what = f"{stop.agent}: {json.dumps(data, default=str)[:400]}"
    keys = {"edit": "e edit", "score": "o override the score", "skip": "k skip the call"}
    can = " · ".join(keys[c] for c in stop.changes)
    return f"{what}\n[dim]can change here: {can or 'nothing'}[/]"


def _in_pod(data: dict[str, Any]) -> str:
    """Where a subordinate in a pod of its own stopped (hive.runtime.debug.remote)."""
    return f" (pod {data['pod']})" if data.get("pod") else ""


def escaped_data(data: dict[str, Any]) -> dict[str, Any]:
    return {k: escape(v) if isinstance(v, str) else v for k, v in data.items()}


# --- hive debug TEAM: the debugger of a team running in a cluster ------------------------------

ACTIONS = ("continue", "step", "abort", "skip", "edit", "score", "break", "unbreak")
VIEWS = ("messages", "plan", "budgets", "tree", "model")


@dataclass
class Remote:
    """The coordinator's debug endpoint (hive.runtime.debug.server), with the caller's token."""

    client: httpx2.AsyncClient
    token: str

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        from hive.runtime.debug.server import TOKEN_HEADER

        headers = {TOKEN_HEADER: self.token}
        if "Authorization" not in self.client.headers and self.client.auth is None:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = await self.client.request(method, path, headers=headers, **kw)
        except httpx2.TransportError as exc:
            raise Unavailable(f"debug endpoint {self.client.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        if response.status_code >= 400:
            why = body.get("error") if isinstance(body, dict) else None
            raise InvalidInput(
                "hive debug", f"HTTP {response.status_code}: {why or response.reason_phrase}"
            )
        return body


def show_state(state: dict[str, Any], console: Console) -> None:
    points = ", ".join(state["breakpoints"]) or "none"
    if state["finished"]:
        report = state.get("report") or {}
        console.print(
            f"finished: {report.get('outcome')} {report.get('message') or ''}\n"
            f"answer: {report.get('output', '')}",
            markup=False,
        )
    elif state["paused"]:
        stop = Stop(**{k: v for k, v in state["paused"].items() if k != "changes"})
        stop.changes = tuple(state["paused"]["changes"])
        console.print(
            f"PAUSED at step {stop.index} · {stop.kind} · {stop.agent} · {stop.reason}",
            markup=False,
        )
        console.print(describe(Stop(**{**stop.__dict__, "data": escaped_data(stop.data)})))
    else:
        console.print(f"running · {state['steps']} stop points", markup=False)
    console.print(f"breakpoints: {points}", markup=False)


async def attach(
    remote: Remote, action: str | None, value: str | None, wait_s: float, console: Console
) -> None:
    """Do `action` (none: show the state; wait: until paused or finished) and show the state."""
    try:
        if action in (None, "show"):
            state = await remote.call("GET", "/debug")
        elif action == "wait":
            state = await remote.call("GET", "/debug")
            deadline = asyncio.get_running_loop().time() + wait_s
            while not (state["paused"] or state["finished"]):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise Unavailable(f"the run did not pause within {wait_s:g}s")
                state = await remote.call(
                    "GET", "/debug", params={"after": state["version"], "wait": min(left, 25)}
                )
        elif action == "inspect":
            if value not in VIEWS:
                raise InvalidInput("inspect", f"one of {', '.join(VIEWS)}")
            shown = await remote.call("GET", f"/debug/inspect/{value}")
            console.print_json(json.dumps(shown, default=str))
            return
        elif action == "export":
            if not value:
                raise InvalidInput("export", "give the file to write")
            session = await remote.call("GET", "/debug/session")
            text = json.dumps(session, indent=2) + "\n"
            await asyncio.to_thread(Path(value).write_text, text)
            console.print(f"debug session written to {value}", markup=False)
            return
        elif action in ACTIONS:
            if action in ("edit", "score", "break", "unbreak") and value is None:
                raise InvalidInput(action, "needs a value")
            state = await remote.call(
                "POST", "/debug/actions", json={"action": action, "value": value}
            )
        else:
            raise InvalidInput(
                "ACTION", f"{action!r}: show, wait, inspect, export or {', '.join(ACTIONS)}"
            )
        show_state(state, console)
    finally:
        await remote.client.aclose()


def remote_for(
    settings: Settings, namespace: str, team: str, url: str | None, token: str | None
) -> Remote:
    """The team coordinator's debug endpoint: `url` (a port-forward) or the API server's pod
    proxy to the coordinator's pod, with `token` or the kubeconfig's own bearer token."""
    from hive.api.agentteam import AgentTeamSpec, coordinator_of
    from hive.kube.client import load_config, sync_client
    from hive.kube.errors import api_errors
    from hive.kube.podproxy import pod_proxy, running_agent_pod
    from hive.kube.resources import resource
    from hive.runtime.debug import DEBUG_PORT

    if url and token:  # a port-forward and a token: no kubeconfig needed
        return Remote(httpx2.AsyncClient(base_url=url, timeout=60), token)
    config = load_config(settings.kube.kubeconfig, settings.kube.service_account_dir)
    own = config.get()
    token = token or (own.user.token if own and own.user else None)
    if not token:
        raise InvalidInput(
            "--token",
            "the kubeconfig has no bearer token (client certificates cannot be passed on): "
            "give a token the API server accepts, e.g. --token $(kubectl create token NAME)",
        )
    if url:
        return Remote(httpx2.AsyncClient(base_url=url, timeout=60), token)
    client = sync_client(settings.kube, field_manager="hive-debug")
    with api_errors(f"AgentTeam {namespace}/{team}"):
        obj = client.get(resource("AgentTeam"), team, namespace=namespace)
    spec = AgentTeamSpec.model_validate(obj["spec"])
    if not spec.debug.interactive:
        raise InvalidInput(
            f"AgentTeam {namespace}/{team}", "spec.debug.interactive is off: no debug endpoint"
        )
    pod = running_agent_pod(client, namespace, team, coordinator_of(spec))
    return Remote(pod_proxy(config, namespace, pod, DEBUG_PORT), token)


# --- the coordinator pod's side ----------------------------------------------------------------


@dataclass
class PodDebugging:
    """A pod's part in its team's debugging (spec.debug.interactive): the coordinator's
    debugger and endpoint, or a subordinate's stops at the coordinator's debugger."""

    debugger: Debugger | None = None
    server: DebugServer | None = None
    stops: SubordinateStops | None = None


def pod_debugger(config: PodConfig, settings: Settings, parts: ChainParts) -> PodDebugging | None:
    """With spec.debug.interactive: in the coordinator, the run's debugger (its hooks first in
    `parts`, its breakpoints spec.debug.breakpoints) and its endpoint, which lets in a caller
    the API server says may patch the team; in any other agent, first in `parts`, its calls'
    stops at the coordinator's debugger (hive.runtime.debug.remote)."""
    from hive.api.agentteam import coordinator_of
    from hive.kube.client import load_config
    from hive.kube.reviews import may_patch_team
    from hive.runtime.debug.hooks import DebugHooks
    from hive.runtime.debug.remote import SubordinateStops
    from hive.runtime.debug.server import DebugServer

    debug = config.spec.debug
    if not debug.interactive:
        return None
    if not config.is_coordinator:
        stops = SubordinateStops(
            config.agent, coordinator_of(config.spec), settings.agent.debug.stop_timeout_s
        )
        parts.debugger = stops
        return PodDebugging(stops=stops)
    points = [Breakpoint.parse(b, "debug.breakpoints") for b in debug.breakpoints]
    debugger = Debugger(points)
    parts.debugger = DebugHooks(debugger)
    kube = load_config(settings.kube.kubeconfig, settings.kube.service_account_dir)

    async def authorize(token: str) -> Decision:
        return await may_patch_team(kube, token, config.namespace, config.team)

    return PodDebugging(debugger, DebugServer(debugger, authorize, port=settings.agent.debug.port))


def attach_pod_debugger(pod: AgentPod, debugging: PodDebugging | None) -> None:
    """The pod's run under the debugger, its events to the debugger's hooks, and on its peer
    API the route where subordinates stop; a subordinate's stops bound to the coordinator's
    peer API and its delegated tasks marked. Both need the team's signing keys: without them
    the subordinates' calls do not stop (and the log says so)."""
    if debugging is None:
        return
    from hive.runtime.debug.hooks import DebugHooks
    from hive.runtime.debug.remote import StopRoute, mark_tasks

    keyless = "the team's agents have no signing keys: subordinates' calls do not stop"
    if debugging.debugger is not None:
        pod.debugger, pod.debug_server = debugging.debugger, debugging.server
        hooks = DebugHooks(pod.debugger)
        hooks.attach(pod.bus)
        if pod.callers is None:
            log.warning("debugger: %s", keyless)
        else:
            pod.peer_extensions.append(StopRoute(hooks, pod.callers).install)
    stops = debugging.stops
    if stops is not None:
        url = pod.config.peer_urls.get(stops.coordinator)
        if pod.signer is None or pod.callers is None or url is None:
            log.warning("debugger: %s", keyless if url else "no address of the coordinator")
            return
        stops.bind(url, pod.signer)
        pod.peer_extensions.append(mark_tasks)


@click.command("debug")
@click.argument("team")
@click.argument("action", required=False)
@click.argument("value", required=False)
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--kubeconfig", type=click.Path(path_type=Path), help="Kubeconfig to use.")
@click.option(
    "--url",
    help="The debug endpoint itself (e.g. http://127.0.0.1:8092 through kubectl port-forward "
    "to the coordinator's port 8092), instead of the API server's pod proxy.",
)
@click.option(
    "--token",
    help="The bearer token the endpoint checks (default: the kubeconfig's own; a kubeconfig "
    "with a client certificate has none to pass on).",
)
@click.option("--wait-s", "wait_s", default=300.0, show_default=True, help="How long wait waits.")
@one_line_errors
def debug(
    team: str,
    action: str | None,
    value: str | None,
    namespace: str,
    kubeconfig: Path | None,
    url: str | None,
    token: str | None,
    wait_s: float,
) -> None:
    """Attach to the debugger of TEAM running in the cluster (spec.debug.interactive), through
    its coordinator's debug endpoint; only a caller allowed to patch the team gets in. The
    subordinates' model and tool calls, in their own pods, stop there too (a task delegated
    while a breakpoint is set or the user steps): the paused stop point names the agent and
    its pod.

    ACTION: show (the default), wait (until the run pauses or ends), continue, step, abort,
    skip, edit TEXT, score X, break SPEC, unbreak SPEC, inspect messages|plan|budgets|tree|model,
    export FILE (the session, for hive run --replay).
    """
    settings = get_settings()
    if kubeconfig is not None:
        settings = settings.model_copy(
            update={"kube": settings.kube.model_copy(update={"kubeconfig": kubeconfig})}
        )
    remote = remote_for(settings, namespace, team, url, token)
    asyncio.run(attach(remote, action, value, wait_s, Console()))
