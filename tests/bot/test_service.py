"""How `portier run` serves: its listening socket and its process set-up."""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path

from bot.service import bind
from tests.world import make_world


async def test_connections_to_portier_send_without_nagle_delay() -> None:
    """Accepted connections have TCP_NODELAY, so a response written in two parts (headers,
    then body) is not held back until the client's delayed ACK (40 ms a request)."""
    seen: list[int] = []

    async def note(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted = writer.get_extra_info("socket")
        seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    sock = bind("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    server = await asyncio.start_server(note, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen and seen[0] != 0


async def test_the_running_service_freezes_its_start_up_objects(database_url: str,
                                                                tmp_path: Path) -> None:
    """After start-up the long-lived objects sit in the collector's permanent generation, so
    full collections under load do not walk them (they stopped the loop for ~60 ms)."""
    gc.unfreeze()
    async with make_world(database_url, tmp_path):
        assert gc.get_freeze_count() > 10_000
