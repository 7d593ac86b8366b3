"""Serve an ASGI app with uvicorn on 127.0.0.1, port 0, in a daemon thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from sandbox.server import QuickServer


class ThreadedServer:
    """A uvicorn server in a background thread, so code in the test's loop talks real HTTP."""

    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off", timeout_graceful_shutdown=2)
        self._server = QuickServer(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and return "http://127.0.0.1:<port>" once it accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="fake-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.005)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, timeout: float = 10.0) -> AsyncIterator[str]:
    """Serve an app in the running event loop; yield "http://127.0.0.1:<port>".

    This is how a bot's own webhook route runs in tests and benchmarks: in the same loop
    as python-telegram-bot, as in PTB's examples/customwebhookbot/starlettebot.py.
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="off", timeout_graceful_shutdown=2)
    server = QuickServer(config)
    task = asyncio.create_task(server.serve(), name="serve")
    deadline = time.monotonic() + timeout
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            await task
            raise RuntimeError("the server did not start")
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await task
