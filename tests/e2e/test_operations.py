"""Operator surfaces: health, metrics, the return page, logs without secrets, concurrency."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import delete

from billing.db import Database
from billing.mirror_models import MirrorCustomer
from bot.logs import configure_logging
from tests.world import STRIPE_KEY, TELEGRAM_SECRET, World


async def test_healthz_follows_the_database(world: World) -> None:
    """/healthz answers 200 while the database answers and 503 when it does not."""
    assert (await world.http.get(f"{world.url}/healthz")).status_code == 200
    billing = world.service.runtime.billing
    working = billing.db
    billing.db = Database("postgresql://nobody@127.0.0.1:1/nothing")  # nothing listens there
    try:
        assert (await world.http.get(f"{world.url}/healthz")).status_code == 503
    finally:
        await billing.db.close()
        billing.db = working


async def test_metrics_and_return_page(world: World) -> None:
    """/metrics speaks Prometheus text; /return sends the customer back to the chat."""
    metrics = await world.http.get(f"{world.url}/metrics")
    assert metrics.status_code == 200 and "portier_stripe_requests_total" in metrics.text
    page = await world.http.get(f"{world.url}/return?session_id=cs_test_1")
    assert page.status_code == 200 and "return to the chat" in page.text
    assert f"https://t.me/{world.telegram.username}" in page.text
    canceled = await world.http.get(f"{world.url}/return?canceled=1")
    assert "Nothing was charged" in canceled.text


async def test_return_page_speaks_the_customers_language(world: World) -> None:
    """The page speaks the `lang` Portier put in the return URL, else the browser's choice."""
    german = await world.http.get(f"{world.url}/return?session_id=cs_1&lang=de")
    assert "<html lang='de'>" in german.text and "Fertig." in german.text
    assert "Zum Chat" in german.text
    browser = await world.http.get(f"{world.url}/return?canceled=1", headers={
        "Accept-Language": "fr-CH, fr;q=0.9, de-DE;q=0.8, en;q=0.7"})
    assert "Es wurde nichts berechnet." in browser.text
    hostile = await world.http.get(f"{world.url}/return", params={"lang": "<script>x"},
                                   headers={"Accept-Language": "q=;;,,*;q=abc"})
    assert hostile.status_code == 200 and "<html lang='en'>" in hostile.text
    assert "<script>" not in hostile.text


async def test_checkout_and_portal_send_the_customer_back_in_their_language(
        world: World) -> None:
    """A German chat's Checkout and card pages return to the German page."""
    user = world.user(language_code="de")
    plans = await world.press(user, await world.say(user, "/start"), "Tarife ansehen")
    assert not isinstance(plans, str)
    pro = next(label for row in plans.buttons() for label in row if label.startswith("Pro"))
    offer = await world.press(user, plans, pro)
    assert not isinstance(offer, str)
    url = await world.press(user, offer, "Mit Stripe bezahlen")
    assert isinstance(url, str)
    response = await world.follow(url)
    assert response.status_code == 303
    assert "lang=de" in response.headers["location"]
    page = await world.http.get(response.headers["location"])
    assert "Fertig." in page.text
    await world.settle()
    await world.telegram.next_message(user)  # the welcome
    card = await world.say(user, "/card")
    portal = await world.press(user, card, card.buttons()[0][0])
    assert isinstance(portal, str)
    back = await world.follow(portal)
    assert "lang=de" in back.headers["location"]


async def test_logs_hold_no_secrets_or_hosted_links(world: World,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A whole subscribe-and-update-card walk logs no key, token, secret or hosted URL."""
    configure_logging("json", world.settings.secrets(), level=logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    user, _ = await world.linked_user()
    reply = await world.say(user, "/card")
    url = await world.press(user, reply, "Update card")
    assert isinstance(url, str)
    opened = await world.http.get(url)  # the card link makes the portal session now
    assert opened.status_code == 302
    world.sandbox.fail_next(status=500, type_="api_error", times=5)
    await world.say(user, "/plan")
    logged = "\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records)
    for secret in (STRIPE_KEY, TELEGRAM_SECRET, world.telegram.token, url,
                   url.rsplit("/", 1)[-1], opened.headers["location"]):
        assert secret not in logged
    configure_logging("console", level=logging.WARNING)


async def test_a_slow_chat_does_not_delay_another(world: World) -> None:
    """Updates of different chats run concurrently; one chat's updates keep their order."""
    slow, _ = await world.linked_user()
    fast = world.user()
    gateway = world.service.runtime.billing.gateway
    original = gateway.customer_subscriptions

    async def slow_subscriptions(customer_id: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(1.5)
        return await original(customer_id)

    # /plan reads the mirror; with the slow chat's customer gone from it, /plan asks Stripe.
    async with world.service.runtime.billing.db.session() as session:
        await session.execute(delete(MirrorCustomer))
    gateway.customer_subscriptions = slow_subscriptions  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        await world.telegram.send(slow, "/plan")
        await world.telegram.send(slow, "/help")
        quick = await world.say(fast, "/help")
        assert time.perf_counter() - started < 1.0
        assert "/plan" in (quick.text or "")
        first = await world.telegram.next_message(slow)
        second = await world.telegram.next_message(slow)
        assert "Pro" in (first.text or "") and "What I can do" in (second.text or "")
    finally:
        gateway.customer_subscriptions = original  # type: ignore[method-assign]
