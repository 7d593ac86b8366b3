"""Serve a Sandbox with uvicorn on 127.0.0.1 in a daemon thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn

from sandbox.control import Sandbox


class SandboxServer:
    """Run `sandbox.app` in the background; `start()` returns the base URL."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host, self.port = host, port
        self.base_url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and return `http://127.0.0.1:PORT` once it accepts connections."""
        config = uvicorn.Config(
            self.sandbox.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
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
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sandbox.close()
        self._server = self._thread = None
