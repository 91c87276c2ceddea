"""`hive agent`: the pod entrypoint, wiring the runtime to the Kubernetes status reporter."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import yaml
from pydantic import ValidationError

from hive.api.agentteam import AgentSpec
from hive.errors import InvalidInput
from hive.kube.client import async_client
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.runtime.reporting import heartbeat
from hive.settings import Settings

HEARTBEAT_S = 15.0


def load_agent_config(path: Path, agent: str) -> AgentSpec:
    """The agent's own spec from the configuration the operator mounts."""
    if not path.is_file():
        raise InvalidInput(f"--config {path}", "no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        spec = AgentSpec.model_validate(data.get("agent") or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise InvalidInput(
            f"--config {path}", f"not an agent configuration ({exc.__class__.__name__})"
        ) from exc
    if spec.name != agent:
        raise InvalidInput(f"--config {path}", f"describes agent {spec.name!r}, not {agent!r}")
    return spec


def run_agent(
    settings: Settings,
    namespace: str,
    team: str,
    agent: str,
    once: bool,
    config: AgentSpec | None = None,
) -> None:
    async def main() -> None:
        client = async_client(settings.kube, field_manager=field_manager_for(agent))
        reporter = StatusReporter(client, namespace, team, agent)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if once:
            stop.set()
        try:
            role = config.role if config else None
            await heartbeat(reporter, agent, role, interval_s=HEARTBEAT_S, stop=stop)
        finally:
            await client.close()

    asyncio.run(main())
