"""`hive agent`: the pod entrypoint, wiring the runtime to the Kubernetes status reporter."""

from __future__ import annotations

import asyncio
import signal

from hive.kube.client import async_client
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.runtime.reporting import heartbeat
from hive.settings import Settings

HEARTBEAT_S = 15.0


def run_agent(settings: Settings, namespace: str, team: str, agent: str, once: bool) -> None:
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
            await heartbeat(reporter, agent, None, interval_s=HEARTBEAT_S, stop=stop)
        finally:
            await client.close()

    asyncio.run(main())
