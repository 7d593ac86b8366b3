"""`portier sandbox`: the Stripe sandbox alone, with the demo catalog, in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TextIO

from sandbox import Sandbox, SandboxServer, seed_demo_catalog

API_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_sandbox"  # noqa: S105 - a well-known test secret, like the key
# Where `portier run` listens by default (PORTIER_HOST, PORTIER_PORT).
WEBHOOK_URL = "http://127.0.0.1:8080/stripe/webhook"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve_sandbox(host: str, port: int, out: TextIO = sys.stdout,
                        stop: asyncio.Event | None = None) -> None:
    """Serve the sandbox with the demo catalog until Ctrl-C (or `stop` is set)."""
    sandbox = Sandbox(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, webhook_url=WEBHOOK_URL)
    server = SandboxServer(sandbox, host=host, port=port)
    base = await asyncio.to_thread(server.start)
    try:
        seed_demo_catalog(sandbox)
        out.write(
            f"Stripe sandbox (test mode) on {base}, with the demo catalog.\n"
            "Point Portier at it (environment or .env):\n"
            f"  STRIPE_API_BASE={base}\n"
            f"  STRIPE_SECRET_KEY={API_KEY}\n"
            f"  STRIPE_WEBHOOK_SECRET={WEBHOOK_SECRET}\n"
            f"Events are signed with that secret and sent to {WEBHOOK_URL}.\n"
            f"Move the clock: curl -d seconds=2678400 {base}/_sandbox/advance\n"
            "Ctrl-C stops it.\n")
        out.flush()
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
    finally:
        await asyncio.to_thread(server.stop)
