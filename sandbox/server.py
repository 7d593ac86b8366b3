"""Serve a Sandbox with uvicorn on 127.0.0.1 in a daemon thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import uvicorn

from sandbox.control import Sandbox

_POLL = 0.005  # seconds between looks at a stop request and at the connections left


class QuickServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is asked to.

    uvicorn looks at `should_exit` on a 0.1 s tick and, once stopping, sleeps a fixed 0.1 s
    and then polls its connections every 0.1 s: some 0.25 s a stop, for a server that
    stands in for Stripe or a chat app and is started and stopped once a test, hundreds of
    times a run. The same steps on a 5 ms poll; uvicorn has no setting for either wait.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def stop(self) -> None:
        """Ask the server to stop, from any thread; `serve()` returns soon after."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: it is stopped
                self._loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000  # on_tick refreshes the Date header each 10th
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + (self.config.timeout_graceful_shutdown or 5.0)
        state = self.server_state
        # uvicorn has no event for "the last connection closed": it polls as well.
        while (state.connections or state.tasks) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL)
        for task in state.tasks:
            task.cancel(msg="the server stopped")
        for server in self.servers:
            await server.wait_closed()


class SandboxServer:
    """Run `sandbox.app` in the background; `start()` returns the base URL."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host, self.port = host, port
        self.base_url: str | None = None
        self._server: QuickServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and return `http://127.0.0.1:PORT` once it accepts connections."""
        config = uvicorn.Config(
            self.sandbox.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = QuickServer(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()),  # type: ignore[union-attr]
            name="stripe-sandbox",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Stripe sandbox did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{self.host}:{port}"
        if not self.sandbox.public_url_fixed:
            self.sandbox.public_url = self.base_url
        return self.base_url

    def stop(self) -> None:
        """Stop the server and the webhook sender."""
        if self._server is not None:
            self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sandbox.close()
        self._server = self._thread = None
