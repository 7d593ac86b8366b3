"""One fixture builds a world: a Stripe sandbox, a fake Telegram, a database and Portier."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from billing.links import mint_token
from billing.models import Notice
from billing.services import Billing
from bot.demo import add_save_coupon
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

    async def notice(self, chat: FakeUser | FakeChat, title: str,
                     timeout: float = 10.0) -> BotMessage:
        """Wait for a pushed message whose text starts with `title`, skipping others."""
        while True:
            message = await self.telegram.next_message(chat, timeout=timeout)
            if (message.text or "").startswith(title):
                return message

    async def follow(self, url: str, payment_method: str = "pm_card_visa") -> httpx.Response:
        """Complete a sandbox hosted page (Checkout, portal, invoice) as a customer would;
        a card link (Portier's `GET /card/<token>`) is opened first, to the page it makes."""
        if url.startswith(f"{self.url}/card/"):
            opened = await self.http.get(url)
            assert opened.status_code == 302, (opened.status_code, opened.text)
            url = opened.headers["location"]
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
        """Create a customer who subscribed through Checkout (outside the chat), as most
        customers do: the card sits on the subscription, the customer has no default card."""
        gateway = self.service.runtime.billing.gateway
        price = self.service.runtime.billing.prices.by_key[lookup_key]
        session = await gateway.call(gateway.v1.checkout.sessions.create_async, {
            "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}],
            "customer_email": "ada@example.com", "success_url": f"{self.url}/return"})
        done = await asyncio.to_thread(self.sandbox.complete_checkout, session.id, card)
        await self.webhooks_idle()
        return self.sandbox.get(done["customer"])

    async def switch_card(self, customer_id: str, card: str) -> None:
        """Make `card` the customer's default, as they would in the billing portal."""
        portal = await self.service.runtime.billing.gateway.create_card_update(
            customer_id=customer_id, return_url=self.url, locale="en",
            key=f"test-switch-{customer_id}-{card}")
        self.sandbox.complete_portal(portal["id"], card)
        await self.webhooks_idle()
        await self.take_card_notices(customer_id)

    async def take_card_notices(self, customer_id: str, timeout: float = 10.0) -> None:
        """Consume the "Card updated" notice a card saved in the portal sends each chat linked
        to the customer (tests that switch cards to set a scene expect what comes next)."""
        card = self.sandbox.get(customer_id)["invoice_settings"]["default_payment_method"]
        await self.settle()
        db = self.service.runtime.billing.db
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with db.session() as session:
                found = (await session.execute(select(Notice.chat_id, Notice.status).where(
                    Notice.dedupe_key.like(f"card_updated:{card}@%")))).all()
            if all(status != "pending" for _, status in found):
                break
            assert asyncio.get_running_loop().time() < deadline, found
            await asyncio.sleep(0.05)
        last4 = self.sandbox.get(card)["card"]["last4"]
        for chat_id, status in found:
            if status == "sent":  # "Card updated: Visa •••• 4242", in the chat's language
                message = await self.telegram.next_message(int(chat_id))
                title = (message.text or "").splitlines()[0]
                assert title.endswith(f"•••• {last4}") and ":" in title, message.text

    async def linked_user(self, lookup_key: str = "pro_monthly", language_code: str = "en",
                          card: str = "pm_card_visa") -> tuple[FakeUser, dict[str, Any]]:
        """Return a user whose chat is linked to a subscribed customer."""
        customer = await self.customer_with_plan(lookup_key, card)
        user = self.user(language_code)
        reply = await self.say(user, f"/start {await self.mint(customer['id'])}")
        assert "Connected" in (reply.text or "") or "Verbunden" in (reply.text or ""), reply.text
        return user, customer


FAST_CHAT_PACE = 0.05


@contextlib.asynccontextmanager
async def make_world(database_url: str, tmp_path: Path, *, webhook: bool = True,
                     send_rate: int = 30, chat_pace: float | None = FAST_CHAT_PACE,
                     admin_ids: frozenset[int] = frozenset()) -> AsyncIterator[World]:
    """Start a sandbox, a fake Telegram and Portier against them.

    `chat_pace` (seconds) stands in for Telegram's one pushed message a second per chat:
    a test of a notice, a card update and a receipt in one chat would otherwise wait a
    second for each. The real pace is Portier's default and `chat_pace=None` keeps it; the
    outbox's tests of pacing do.
    """
    sandbox = Sandbox(api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET)
    box = SandboxServer(sandbox)
    stripe_base = box.start()
    sandbox.seed_demo_catalog()
    add_save_coupon(sandbox)
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
        slack_bot_token=None, slack_signing_secret=None, send_rate=send_rate,
        telegram_admin_ids=admin_ids)
    sandbox.set_webhook(f"{url}/stripe/webhook", WEBHOOK_SECRET)
    try:
        async with running(settings, sock=sock, worker_interval=0.5) as service, \
                httpx.AsyncClient(timeout=30) as http:
            if chat_pace is not None:
                pacing = service.outbox.pace.pacing
                pacing["telegram"] = dataclasses.replace(pacing["telegram"], per_chat=chat_pace)
            yield World(sandbox=sandbox, telegram=telegram, service=service, settings=settings,
                        http=http)
    finally:
        telegram.stop()
        box.stop()


def _at(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


async def mirror_differences(sandbox: Sandbox, billing: Billing) -> list[str]:
    """Compare the local mirror field by field with the sandbox's objects; list what differs."""
    from billing.mirror_models import MirrorCustomer, MirrorInvoice, MirrorSubscription

    expected: list[tuple[type[Any], str, dict[str, Any]]] = []
    for customer in sandbox.store.all("customer"):
        method_id = customer["invoice_settings"]["default_payment_method"]
        card = sandbox.get(method_id)["card"] if method_id else {}
        expected.append((MirrorCustomer, customer["id"], {
            "email": customer["email"], "name": customer["name"], "card_id": method_id,
            "card_brand": card.get("brand"), "card_last4": card.get("last4"),
            "card_exp_month": card.get("exp_month"), "card_exp_year": card.get("exp_year"),
            "deleted": False}))
    for sub in sandbox.store.all("subscription"):
        item = sub["items"]["data"][0]
        own = sandbox.get(sub["default_payment_method"])["card"] if sub[
            "default_payment_method"] else {}
        pause = sub["pause_collection"] or {}
        discounts = [sandbox.get(d)["source"]["coupon"] for d in sub["discounts"]]
        next_amount = None
        if sub["status"] in ("active", "trialing", "past_due") and not (
                sub["cancel_at_period_end"] or sub["cancel_at"]):
            next_amount = await billing.gateway.next_invoice_amount(sub["customer"], sub["id"])
        expected.append((MirrorSubscription, sub["id"], {
            "customer_id": sub["customer"], "status": sub["status"], "item_id": item["id"],
            "price_id": item["price"]["id"], "unit_amount": item["price"]["unit_amount"],
            "currency": item["price"]["currency"], "quantity": item["quantity"],
            "interval": item["price"]["recurring"]["interval"],
            "current_period_start": _at(item["current_period_start"]),
            "current_period_end": _at(item["current_period_end"]),
            "cancel_at_period_end": sub["cancel_at_period_end"], "cancel_at": _at(sub["cancel_at"]),
            "canceled_at": _at(sub["canceled_at"]), "ended_at": _at(sub["ended_at"]),
            "trial_end": _at(sub["trial_end"]), "pause_behavior": pause.get("behavior"),
            "pause_resumes_at": _at(pause.get("resumes_at")), "schedule_id": sub["schedule"],
            "discount_coupon": discounts[0] if discounts else None,
            "card_id": sub["default_payment_method"], "card_brand": own.get("brand"),
            "card_last4": own.get("last4"), "card_exp_month": own.get("exp_month"),
            "card_exp_year": own.get("exp_year"), "latest_invoice_id": sub["latest_invoice"],
            "next_amount": next_amount, "created": _at(sub["created"])}))
    for invoice in sandbox.store.all("invoice"):
        parent = (invoice.get("parent") or {}).get("subscription_details") or {}
        expected.append((MirrorInvoice, invoice["id"], {
            "customer_id": invoice["customer"], "subscription_id": parent.get("subscription"),
            "number": invoice["number"], "status": invoice["status"],
            "billing_reason": invoice["billing_reason"], "total": invoice["total"],
            "amount_due": invoice["amount_due"], "amount_remaining": invoice["amount_remaining"],
            "currency": invoice["currency"], "attempt_count": invoice["attempt_count"],
            "next_payment_attempt": _at(invoice["next_payment_attempt"]),
            "hosted_url": invoice["hosted_invoice_url"], "pdf_url": invoice["invoice_pdf"],
            "created": _at(invoice["created"])}))
    differences: list[str] = []
    async with billing.db.session() as session:
        for model, object_id, fields in expected:
            row = await session.get(model, object_id)
            if row is None:
                differences.append(f"{object_id}: missing")
                continue
            differences += [f"{object_id}.{name}: mirror {getattr(row, name)!r} != {value!r}"
                            for name, value in fields.items() if getattr(row, name) != value]
        for model in (MirrorCustomer, MirrorSubscription, MirrorInvoice):
            known = {object_id for kind, object_id, _ in expected if kind is model}
            extra = set(await session.scalars(select(model.id))) - known
            differences += [f"{object_id}: not in the sandbox" for object_id in sorted(extra)]
    return differences


async def busy_shop(sandbox: Sandbox, billing: Billing) -> dict[str, str]:
    """Make customers in every state the mirror keeps; return their ids by what they show.

    Through Stripe's API as Portier or the Dashboard would: a plain plan, a yearly plan set
    to cancel, a declined renewal (past due), a downgrade scheduled for the period end, a
    discount, paused collection, a card switched in the portal, a customer without a plan;
    and through Checkout's page, as most customers arrive.
    """
    gateway, v1 = billing.gateway, billing.gateway.v1

    def customer(plan: str | None, card: str = "pm_card_visa") -> tuple[str, str | None]:
        made = sandbox.create_customer(email=f"{plan}@example.com", name="Ada",
                                       payment_method=card)
        sub = sandbox.subscribe(made["id"], plan, payment_method=card) if plan else None
        return str(made["id"]), str(sub["id"]) if sub else None

    if not sandbox.store.all("coupon", lambda c: c["id"] == "STAY25"):
        await gateway.call(v1.coupons.create_async, {
            "id": "STAY25", "percent_off": 25, "duration": "repeating",
            "duration_in_months": 3, "name": "25% off for 3 months"})
    ids: dict[str, str] = {}
    ids["plain"], _ = customer("pro_monthly")
    ids["ending"], sub = customer("basic_yearly", "pm_card_mastercard")
    await gateway.call(v1.subscriptions.update_async, sub, {"cancel_at_period_end": True})
    ids["scheduled"], scheduled = customer("pro_monthly")
    ids["discounted"], sub = customer("pro_monthly")
    await gateway.call(v1.subscriptions.update_async, sub, {"discounts": [{"coupon": "STAY25"}]})
    ids["paused"], sub = customer("basic_monthly")
    await gateway.call(v1.subscriptions.update_async, sub, {
        "pause_collection": {"behavior": "void", "resumes_at": sandbox.now() + 40 * 86400}})
    ids["switched"], _ = customer("pro_yearly")
    ids["declined"], _ = customer("pro_monthly")
    ids["none"], _ = customer(None)
    # Most customers come through Checkout: the card on the subscription, none on the customer;
    # one of them later saves another card in the portal.
    for key, card in (("checkout", "pm_card_visa"), ("checkout_switched", "pm_card_amex")):
        session = await gateway.call(v1.checkout.sessions.create_async, {
            "mode": "subscription", "customer_email": f"{key}@example.com",
            "line_items": [{"price": billing.prices.by_key["pro_monthly"].id, "quantity": 1}],
            "success_url": "https://x.example/ok"})
        ids[key] = str((await asyncio.to_thread(sandbox.complete_checkout, session.id,
                                                card))["customer"])
    portal = await gateway.create_card_update(customer_id=ids["checkout_switched"],
                                              return_url="https://x.example", locale="en",
                                              key=f"test-card-{ids['checkout_switched']}")
    await asyncio.to_thread(sandbox.complete_portal, portal["id"], "pm_card_mastercard")
    for key in ("switched", "declined"):
        card = "pm_card_mastercard" if key == "switched" else "pm_card_visa_chargeDeclined"
        portal = await gateway.create_card_update(customer_id=ids[key], return_url="https://x.example",
                                                  locale="en", key=f"test-card-{ids[key]}")
        await asyncio.to_thread(sandbox.complete_portal, portal["id"], card)
    await asyncio.to_thread(sandbox.advance_time, 32 * 86400)  # renewals: one declines
    await gateway.schedule_price(str(scheduled), key=f"test-schedule-{scheduled}",
                                 price_id=billing.prices.by_key["basic_monthly"].id, quantity=1)
    return ids
