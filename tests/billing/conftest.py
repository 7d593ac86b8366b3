"""Fixtures: a Billing wired to a seeded Stripe sandbox and a migrated database."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from billing.catalog import parse_catalog, resolve_prices
from billing.db import Database
from billing.gateway import StripeGateway
from billing.services import Billing
from billing.subscriptions import card_update_url
from sandbox import Sandbox, SandboxServer

API_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_billing_tests"
LINK_SECRET = "link-secret-for-billing-tests"
PUBLIC_URL = "https://portier.example"

CATALOG = """
[business]
name = "Acme Cloud"

[[plans]]
key = "basic"
name = "Basic"
prices = ["basic_monthly", "basic_yearly"]

[[plans]]
key = "pro"
name = "Pro"
prices = ["pro_monthly", "pro_yearly"]

[team]
prices = ["team_seat_monthly"]
"""


class HeaderLog:
    """An ASGI wrapper remembering the headers of every HTTP request it passes on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


class RecordingSandbox(Sandbox):
    """The sandbox, also keeping the request headers it saw (it logs only method and path)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = HeaderLog(super().app)

    @property
    def app(self) -> Any:  # type: ignore[override]
        """Serve the sandbox's app behind the header log."""
        return self.log


@dataclass
class Shop:
    """A Billing against a running sandbox, with the steps tests share."""

    billing: Billing
    sandbox: RecordingSandbox
    base_url: str

    def customer(self, card: str | None = "pm_card_visa", plan: str | None = "pro_monthly",
                 email: str = "ada@example.com") -> str:
        """Create a customer in the sandbox, subscribed to `plan` unless it is None."""
        customer = self.sandbox.create_customer(email=email, name="Ada", payment_method=card)
        if plan is not None:
            self.sandbox.subscribe(customer["id"], plan, payment_method=card)
        return str(customer["id"])

    def subscription(self, customer_id: str) -> dict[str, Any]:
        """Return the customer's newest subscription as the sandbox stores it."""
        subs = self.sandbox.store.all("subscription", lambda s: s["customer"] == customer_id)
        return self.sandbox.get(subs[0]["id"])

    async def switch_card(self, customer_id: str, card: str) -> None:
        """Save a new default card through a billing-portal session, as the hosted page does."""
        url = await card_update_url(self.billing, customer_id=customer_id, locale="en")
        await asyncio.to_thread(self.sandbox.complete_portal, url.rsplit("/", 1)[1], card)

    async def advance(self, seconds: int) -> None:
        """Move the sandbox clock (off the event loop)."""
        await asyncio.to_thread(self.sandbox.advance_time, seconds)

    async def fail_renewal(self, customer_id: str) -> str:
        """Make the next renewal decline; return the open invoice it leaves."""
        await self.switch_card(customer_id, "pm_card_visa_chargeDeclined")
        end = self.subscription(customer_id)["items"]["data"][0]["current_period_end"]
        await self.advance(end - self.sandbox.now() + 3600)
        open_ = self.sandbox.store.all(
            "invoice", lambda i: i["customer"] == customer_id and i["status"] == "open")
        assert len(open_) == 1, open_
        return str(open_[0]["id"])


@pytest.fixture
def sandbox_server() -> Iterator[tuple[RecordingSandbox, str]]:
    """A sandbox seeded with the demo catalog, served on 127.0.0.1."""
    sandbox = RecordingSandbox(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    server = SandboxServer(sandbox)
    base = server.start()
    sandbox.seed_demo_catalog()
    yield sandbox, base
    server.stop()


@pytest.fixture
async def shop(database_url: str,
               sandbox_server: tuple[RecordingSandbox, str]) -> AsyncIterator[Shop]:
    """A Billing (database, gateway, catalog, prices) and the sandbox it talks to."""
    sandbox, base = sandbox_server
    db = Database(database_url)
    gateway = StripeGateway(API_KEY, api_base=base)
    try:
        catalog = parse_catalog(tomllib.loads(CATALOG))
        prices = await resolve_prices(gateway, catalog)
        yield Shop(billing=Billing(db=db, gateway=gateway, catalog=catalog, prices=prices,
                                   link_secret=LINK_SECRET, public_url=PUBLIC_URL),
                   sandbox=sandbox, base_url=base)
    finally:
        await gateway.close()
        await db.close()


@pytest.fixture
def billing(shop: Shop) -> Billing:
    """The Billing of the shop."""
    return shop.billing

