"""A TCP relay from the node's bridge to the API server on loopback.

The local API server listens on 127.0.0.1 only. Pods reach it the way they do in any cluster,
through the ``kubernetes`` Service; kube-proxy sends that to the Service's endpoint, which the
real node sets to the bridge's gateway address. This relay listens there and copies bytes both
ways to the API server (TLS passes through untouched: the pod checks the API server's own
certificate). Run as ``python -m hive.dev.forward LISTEN_HOST:PORT TARGET_HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.write_eof()


async def _relay(
    target: tuple[str, int], client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
    finally:
        for writer in (client_w, server_w):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"forward: '{text}' is not HOST:PORT")
    return host, int(port)


async def serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    server = await asyncio.start_server(
        lambda r, w: _relay(target, r, w), *listen, reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m hive.dev.forward LISTEN_HOST:PORT TARGET_HOST:PORT")
    asyncio.run(serve(_address(argv[0]), _address(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
