"""A replica's loop over its agent's work queue, as a process:

    python -m hive.runtime.workqueue.worker REDIS_URL NAMESPACE TEAM AGENT CONSUMER \\
        --handler module:function [--visibility-s 30]

`function` is an async callable taking the task's payload and returning its (JSON) result.
Stops on SIGTERM or SIGINT after the task in hand."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal

from hive.runtime.workqueue.queue import Handler, WorkQueue


def load(spec: str) -> Handler:
    module, _, name = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


async def serve(args: argparse.Namespace) -> None:
    queue = WorkQueue(
        args.redis_url,
        args.namespace,
        args.team,
        args.agent,
        visibility_s=args.visibility_s,
        max_deliveries=args.max_deliveries,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await queue.consume(args.consumer, load(args.handler), stop)
    finally:
        await queue.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("redis_url", "namespace", "team", "agent", "consumer"):
        parser.add_argument(name)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--visibility-s", type=float, default=30.0)
    parser.add_argument("--max-deliveries", type=int, default=3)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
