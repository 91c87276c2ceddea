"""Ports for loopback servers come from outside the kernel's ephemeral range, never twice."""

from __future__ import annotations

import socket

from hive.ports import ephemeral_range, free_port


def test_a_free_port_is_below_the_range_outgoing_connections_draw_from() -> None:
    low, high = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert all(not low <= p <= high for p in ports)
    assert len(set(ports)) == len(ports)


def test_a_free_port_can_be_listened_on() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert server.getsockname()[1] == port


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import hive.ports as ports

    held = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", held))
        holder.listen()
        ports._handed_out.discard(held)
        monkeypatch.setattr("hive.ports.random.sample", lambda c, k: [held, held + 1])
        assert free_port() == held + 1
