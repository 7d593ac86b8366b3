"""Fixtures: a seeded sandbox served on 127.0.0.1, a real Stripe client, a webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from sandbox import Sandbox, SandboxServer
from tests.sandbox.shapes import missing_keys

API_KEY = "sk_test_sandbox"

# stripe 16.1's HTTPXClient posts `data=<str>`, which httpx 0.28 deprecates; the project turns
# warnings into errors, so this one known warning from the SDK is let through here.
SDK_HTTPX_WARNING = (
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let the SDK's known httpx deprecation warning pass in the sandbox tests."""
    for item in items:
        if "tests/sandbox" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings(SDK_HTTPX_WARNING))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox with the demo catalog, served over HTTP; answers are shape-checked at the end."""
    sb = Sandbox(api_key=API_KEY, webhook_secret="whsec_test")
    sb.responses = []
    server = SandboxServer(sb)
    server.start()
    sb.seed_demo_catalog()
    yield sb
    server.stop()
    problems = [p for body in sb.responses for p in missing_keys(body)]
    assert not problems, "answers lack keys of Stripe's examples:\n" + "\n".join(problems[:40])


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[stripe.StripeClient]:
    """The real Stripe SDK pointed at the sandbox, with an async HTTP client."""
    http = stripe.HTTPXClient()
    yield stripe.StripeClient(
        API_KEY, base_addresses={"api": sandbox.public_url}, http_client=http, max_network_retries=0
    )
    await http.close_async()


class Receiver:
    """A tiny local webhook endpoint recording raw bodies and signature headers."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.received.append((body, self.headers.get("Stripe-Signature", "")))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 whose first answer is a 500 (to exercise retries)."""
    rec = Receiver(fail_first=1)
    yield rec
    rec.close()
