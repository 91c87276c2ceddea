"""Entry point of the `hive` command. Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from hive.cli.audit import audit
from hive.cli.compliancecmd import compliance
from hive.cli.composecmd import add_to as add_compose_commands
from hive.cli.debugcmd import debug
from hive.cli.errors import one_line_errors
from hive.cli.gatewaycmd import gateway
from hive.cli.memorycmd import memory
from hive.cli.profilecmd import profile
from hive.cli.ragcmd import rag
from hive.cli.sessionscmd import sessions
from hive.cli.swarmcmd import swarm
from hive.cli.testcmd import test
from hive.cli.toolscmd import tools
from hive.cli.trace import trace
from hive.cli.verifycmd import verify
from hive.errors import HiveError
from hive.settings import Settings, get_settings


def settings_with(**overrides: Any) -> Settings:
    """The settings tree with command-line values laid over the environment's."""
    base = get_settings()
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split(".")
        part = getattr(base, section).model_copy(update={key: value})
        base = base.model_copy(update={section: part})
    return base


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hive")
def cli() -> None:
    """Hive runs teams of AI agents on Kubernetes, declared as custom resources."""


@cli.command()
@click.option("--kubeconfig", type=click.Path(path_type=Path), help="Kubeconfig to use.")
@click.option("--namespace", "-n", help="Watch only this namespace (default: all).")
@one_line_errors
def operator(kubeconfig: Path | None, namespace: str | None) -> None:
    """Run the operator: reconcile Hive's resources until interrupted."""
    from hive.operator.runner import run

    run(settings_with(**{"kube.kubeconfig": kubeconfig, "operator.namespace": namespace}))


@cli.command()
@click.option(
    "--output-dir",
    "-o",
    "output_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Write one file per CRD into this folder (repeatable).",
)
@click.option("--check", is_flag=True, help="Fail if the files in an --output-dir differ.")
@one_line_errors
def crds(output_dirs: tuple[Path, ...], check: bool) -> None:
    """Print (or write) the CustomResourceDefinitions generated from the API models."""
    from hive.cli.crds import render_crds, write_crds

    if not output_dirs:
        click.echo(render_crds(), nl=False)
        return
    for output_dir in output_dirs:
        changed = write_crds(output_dir, check=check)
        if check and changed:
            raise HiveError(
                f"CRDs in {output_dir} are out of date: {', '.join(changed)}; run make crds"
            )
        for name in changed:
            click.echo(f"wrote {output_dir / name}")


@cli.command()
@click.option("--team", required=True, help="AgentTeam the agent belongs to.")
@click.option("--agent", "agent_name", required=True, help="Agent name within the team.")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--kubeconfig", type=click.Path(path_type=Path), help="Kubeconfig to use.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The agent's configuration (its ConfigMap, mounted by the operator).",
)
@click.option("--once", is_flag=True, help="Report one heartbeat and exit.")
@one_line_errors
def agent(
    team: str,
    agent_name: str,
    namespace: str,
    kubeconfig: Path | None,
    config_path: Path | None,
    once: bool,
) -> None:
    """Pod entrypoint of one agent: serve its peers, work, and report into its AgentTeam."""
    from hive.cli.agent import run_agent

    settings = settings_with(**{"kube.kubeconfig": kubeconfig})
    run_agent(settings, namespace, team, agent_name, once, config_path)


@cli.command()
@click.argument("team_file", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("task", required=False)
@click.option("--endpoint", help="Chat-completions base URL to use instead of the team's model.")
@click.option("--model", "model_name", help="Model name to use instead of the team's.")
@click.option(
    "--approve",
    type=click.Choice(["model", "auto", "ask"]),
    default="model",
    show_default=True,
    help="Who approves results when the team requires approval: the senior's model, "
    "everyone, or you at the terminal.",
)
@click.option("--live/--no-live", default=None, help="Live view (default: on a terminal).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the report as JSON.",
)
@click.option(
    "--policy",
    "policy_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file with SandboxPolicies the agents refer to (repeatable); the team file's own "
    "SandboxPolicy documents count too.",
)
@click.option(
    "--svg",
    "svg_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also save what the terminal showed as an SVG picture.",
)
@click.option(
    "--chaos",
    "chaos_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A ChaosExperiment whose faults the run's agents meet, as agent pods would.",
)
@click.option(
    "--session",
    help="Continue session ID (instead of the team's spec.memory.session): the team is given "
    "the notes of the session's earlier runs most similar to the task, and this run is saved "
    "to it (see hive sessions show ID).",
)
@click.option(
    "--session-store",
    "session_store",
    help="Redis URL of the sessions (default: the coordinator's MemoryStore when the team file "
    "has it and it is a redis one, else HIVE_AGENT__SESSIONS__REDIS_URL, the redis hive demo "
    "starts).",
)
@click.option(
    "--tools",
    "tools_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of ToolVersion (and Secret) documents: the agents' tools come from it, "
    "followed while the team runs (files added, changed or removed take effect at once).",
)
@click.option(
    "--mcp",
    "mcp_servers",
    multiple=True,
    metavar="[NAME=]SERVER",
    help="An MCP server whose tools join the agents' tools (repeatable): a streamable-HTTP URL "
    "or stdio:COMMAND [ARGS...] (started as a child process). Agents that list tool NAME "
    "(default: mcp) get them; tools the server adds while the team runs appear at once.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Run under the interactive debugger: a terminal UI that pauses at breakpoints (keys: "
    "c continue, n step, a abort, e edit, o score, k skip, m/p/u/t/r inspect, b break, x export, "
    "q quit).",
)
@click.option(
    "--break",
    "breaks",
    multiple=True,
    help="Pause the debugged run (repeatable): delegate[:AGENT] before a delegation, "
    "model[:AGENT] after a model call, tool[:NAME] before a tool call, score<X on a review "
    "below X, error on an error.",
)
@click.option(
    "--debug-session",
    "debug_session",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the run's debug session (stop points, model answers, actions) as JSON.",
)
@click.option(
    "--replay",
    "replay_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Replay a debug session: its recorded model answers and changes (the model answers "
    "only once the recording runs out); says whether the report is the same.",
)
@click.option(
    "--rewind",
    help="With --replay: re-run from recorded step STEP with a change there instead of the "
    "recorded ones: STEP, STEP:edit=TEXT, STEP:score=X, STEP:skip or STEP:abort.",
)
@click.option("--check", is_flag=True, help="Only check the team file and show the team.")
@one_line_errors
def run(
    team_file: Path,
    task: str | None,
    endpoint: str | None,
    model_name: str | None,
    approve: str,
    live: bool | None,
    report_path: Path | None,
    policy_files: tuple[Path, ...],
    svg_path: Path | None,
    chaos_file: Path | None,
    session: str | None,
    session_store: str | None,
    tools_dir: Path | None,
    mcp_servers: tuple[str, ...],
    debug: bool,
    breaks: tuple[str, ...],
    debug_session: Path | None,
    replay_path: Path | None,
    rewind: str | None,
    check: bool,
) -> None:
    """Run the team of TEAM_FILE (an AgentTeam or its spec) on TASK (default: its goal).

    Exit status: 0 succeeded, 1 failed, 3 deadlocked.
    """
    from hive.cli.teamfile import load_policies, load_team, policies_of, show_team

    team = load_team(team_file)
    policies = policies_of(team, load_policies([team_file, *policy_files]))
    from hive.cli.memorycmd import load_memory_stores

    memory_stores = load_memory_stores([team_file, *policy_files])
    from hive.cli.sessionscmd import choose_session

    chosen_session = choose_session(
        team_file, team, session, session_store, memory_stores, get_settings()
    )
    from hive.cli.debugcmd import debug_choice

    debugging = debug_choice(debug, breaks, debug_session, replay_path, rewind)
    if check:
        show_team(team, task)
        return
    from hive.cli.chaosrun import load_chaos
    from hive.cli.runteam import run_command

    chaos = load_chaos(chaos_file) if chaos_file else None
    model_key = None
    if team.model.vault_ref:  # read as the team's own identity, as in a pod
        from hive.cli.runvault import local_model_key

        model_key = local_model_key(team_file, team, get_settings())

    sys.exit(
        run_command(
            team,
            task,
            endpoint=endpoint,
            model_name=model_name,
            approve=approve,
            live=live,
            report_path=report_path,
            model_file=get_settings().embedded_model,
            policies=policies,
            svg_path=svg_path,
            chaos=chaos,
            model_key=model_key,
            memory_stores=memory_stores,
            session=chosen_session,
            tools_dir=tools_dir,
            mcp_servers=mcp_servers,
            debug=debugging,
        )
    )


@cli.group()
def model() -> None:
    """The embedded models, offline: SmolLM2-135M-Instruct (chat, llama.cpp) and all-MiniLM-L6-v2
    (embeddings, onnxruntime)."""


@model.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--embeddings",
    is_flag=True,
    help="Serve the sentence-embedding model (all-MiniLM-L6-v2, /v1/embeddings) instead.",
)
@one_line_errors
def model_serve(host: str, port: int, embeddings: bool) -> None:
    """Serve the embedded model's chat-completions API until interrupted (a team's model pod)."""
    from hive.cli.modelcmd import serve, serve_embeddings

    if embeddings:
        serve_embeddings(host, port, get_settings().agent.embeddings)
        return
    serve(host, port, get_settings().embedded_model)


@cli.group()
def dev() -> None:
    """The local cluster: etcd, kube-apiserver, controllers, KWOK and the operator on loopback."""


@dev.command("up")
@click.option(
    "--node",
    is_flag=True,
    help="Also start a real node (containerd + kubelet; runc, and runsc for RuntimeClass "
    "gvisor) where pods really run. Needs root.",
)
@one_line_errors
def dev_up(node: bool) -> None:
    """Start the local control plane, the CRDs and the operator; bring back what died."""
    from hive.cli.devcmd import up

    up(get_settings(), node=node)


@dev.command("down")
@click.option("--purge", is_flag=True, help="Also delete certificates, etcd data and logs.")
@one_line_errors
def dev_down(purge: bool) -> None:
    """Stop everything the local control plane started."""
    from hive.cli.devcmd import down

    down(get_settings(), purge=purge)


@dev.command("status")
@one_line_errors
def dev_status() -> None:
    """Tell what runs and what died (exit 3 unless everything runs)."""
    from hive.cli.devcmd import status

    sys.exit(status(get_settings()))


@cli.command()
@one_line_errors
def demo() -> None:
    """Control plane up, CRDs installed, operator running, a sample team applied and shown."""
    from hive.cli.devcmd import demo as run_demo

    run_demo(get_settings())


@cli.command()
@click.option("--team", required=True, help="The AgentTeam.")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option(
    "--redis",
    "redis_url",
    help="Redis where the team's agents keep what they learn (default: the agents' setting, "
    "HIVE_AGENT__ERRORS_REDIS_URL).",
)
@click.option("--top", default=10, show_default=True, help="How many patterns to show.")
@one_line_errors
def errors(team: str, namespace: str, redis_url: str | None, top: int) -> None:
    """The team's most frequent error patterns, with the recovery that worked best so far."""
    from hive.cli.errorscmd import errors_command

    url = redis_url or get_settings().agent.errors_redis_url
    click.echo(errors_command(url, namespace, team, top))


cli.add_command(trace)
cli.add_command(sessions)
cli.add_command(audit)
cli.add_command(compliance)
cli.add_command(tools)
add_compose_commands(tools)
cli.add_command(memory)
cli.add_command(rag)
cli.add_command(profile)
cli.add_command(debug)
cli.add_command(verify)
cli.add_command(test)
cli.add_command(gateway)
cli.add_command(swarm)


def main() -> None:
    cli(prog_name="hive")


if __name__ == "__main__":
    main()
