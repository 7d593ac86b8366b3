"""One fixture builds a world: a Stripe sandbox, a fake Telegram, a database and Portier."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from billing.links import mint_token
from bot.service import Service, bind, running
from bot.settings import Settings, load_settings
from sandbox import Sandbox, SandboxServer
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_objects import BotMessage, FakeChat, FakeUser

CATALOG = """
[business]
name = "Acme Cloud"
support_url = "https://acme.example/help"

[[plans]]
key = "basic"
name = "Basic"
description = "For one person"
prices = ["basic_monthly", "basic_yearly"]
features = ["1 project", "Email support"]

[[plans]]
key = "pro"
name = "Pro"
prices = ["pro_monthly", "pro_yearly"]
features = ["10 projects", "Priority support"]

[team]
prices = ["team_seat_monthly"]

[changes]
downgrade = "period_end"

[cancel]
save_coupon = "STAY25"
pause_days = [30, 60]

[notices]
renewal_days = [7, 1]
"""

STRIPE_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_test_portier"
TELEGRAM_SECRET = "tg-webhook-secret-123"
API_KEY = "portier-api-key-for-tests"


@dataclass
class World:
    """Everything a test needs, in one place."""

    sandbox: Sandbox
    telegram: FakeTelegram
    service: Service
    settings: Settings
    http: httpx.AsyncClient
    _next_user: list[int] = field(default_factory=lambda: [1000])

    @property
    def url(self) -> str:
        """Return Portier's base URL."""
        return self.service.url

    def user(self, language_code: str = "en", first_name: str = "Ada") -> FakeUser:
        """Create a fresh Telegram user."""
        self._next_user[0] += 1
        return self.telegram.user(self._next_user[0], first_name=first_name,
                                  language_code=language_code)

    def group(self) -> FakeChat:
        """Create a Telegram group."""
        self._next_user[0] += 1
        return self.telegram.group(-100_000 - self._next_user[0])

    async def say(self, user: FakeUser, text: str, chat: FakeChat | None = None) -> BotMessage:
        """Send text as the user and return the bot's next message in that chat."""
        status = await self.telegram.send(user, text, chat)
        assert status == 200, status
        return await self.telegram.next_message(chat or user)

    async def press(self, user: FakeUser, message: BotMessage, label: str) -> BotMessage | str:
        """Press a button by its label: the bot's next message, or a URL button's URL."""
        outcome = await self.telegram.press(user, message, label)
        if isinstance(outcome, str):
            return outcome
        assert outcome == 200, outcome
        return await self.telegram.next_message(message.chat_id)

    async def follow(self, url: str, payment_method: str = "pm_card_visa") -> httpx.Response:
        """Complete a sandbox hosted page (Checkout, portal, invoice) as a customer would."""
        assert url.startswith(self.sandbox.public_url), url
        response = await self.http.post(url, data={"payment_method": payment_method})
        await self.webhooks_idle()
        return response

    async def settle(self) -> None:
        """Wait for sandbox webhooks and Portier's worker to finish."""
        await self.webhooks_idle()
        self.service.worker.kick()
        await self.service.worker.idle()

    async def webhooks_idle(self) -> None:
        """Wait (off the event loop, which serves Portier) until sandbox webhooks are sent."""
        assert await asyncio.to_thread(self.sandbox.wait_webhooks_idle, 10)

    async def mint(self, customer_id: str) -> str:
        """Mint a link token for a customer."""
        billing = self.service.runtime.billing
        async with billing.db.session() as session:
            minted = await mint_token(session, gateway=billing.gateway,
                                      secret=billing.link_secret, customer_id=customer_id)
        return minted.token

    async def customer_with_plan(self, lookup_key: str = "pro_monthly",
                                 card: str = "pm_card_visa") -> dict[str, Any]:
        """Create a customer subscribed to a price in the sandbox (outside the chat)."""
        customer = self.sandbox.create_customer(email="ada@example.com", name="Ada",
                                                payment_method=card)
        self.sandbox.subscribe(customer["id"], lookup_key, payment_method=card)
        await self.webhooks_idle()
        return customer

    async def switch_card(self, customer_id: str, card: str) -> None:
        """Make `card` the customer's default, as they would in the billing portal."""
        portal = await self.service.runtime.billing.gateway.create_card_update(
            customer_id=customer_id, return_url=self.url, locale="en",
            key=f"test-switch-{customer_id}-{card}")
        self.sandbox.complete_portal(portal.id, card)
        await self.webhooks_idle()

    async def linked_user(self, lookup_key: str = "pro_monthly", language_code: str = "en",
                          card: str = "pm_card_visa") -> tuple[FakeUser, dict[str, Any]]:
        """Return a user whose chat is linked to a subscribed customer."""
        customer = await self.customer_with_plan(lookup_key, card)
        user = self.user(language_code)
        reply = await self.say(user, f"/start {await self.mint(customer['id'])}")
        assert "Connected" in (reply.text or "") or "Verbunden" in (reply.text or ""), reply.text
        return user, customer


@contextlib.asynccontextmanager
async def make_world(database_url: str, tmp_path: Path, *, webhook: bool = True,
                     send_rate: int = 30) -> AsyncIterator[World]:
    """Start a sandbox, a fake Telegram and Portier against them."""
    sandbox = Sandbox(api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET)
    box = SandboxServer(sandbox)
    stripe_base = box.start()
    sandbox.seed_demo_catalog()
    telegram = FakeTelegram()
    telegram.start()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(
        database_url=database_url, stripe_secret_key=STRIPE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=stripe_base,
        telegram_bot_token=telegram.token, telegram_api_base=telegram.api_base,
        telegram_webhook_url=f"{url}/telegram/webhook" if webhook else None,
        telegram_webhook_secret=TELEGRAM_SECRET, link_secret=secrets.token_hex(16),
        api_key=API_KEY, catalog_path=catalog, public_url=url,
        slack_bot_token=None, slack_signing_secret=None, send_rate=send_rate)
    sandbox.set_webhook(f"{url}/stripe/webhook", WEBHOOK_SECRET)
    try:
        async with running(settings, sock=sock, worker_interval=0.5) as service, \
                httpx.AsyncClient(timeout=30) as http:
            yield World(sandbox=sandbox, telegram=telegram, service=service, settings=settings,
                        http=http)
    finally:
        telegram.stop()
        box.stop()
