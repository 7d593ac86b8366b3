"""Notices pushed into the chat by renewals, failed payments and changes made elsewhere."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from billing.models import Notice, utcnow
from billing.reminders import scan_cards
from tests.world import World

MONTH = 31 * 86400


def _labels(message: Any) -> list[str]:
    return [b["text"] for row in message.keyboard for b in row]


def _subscription(world: World, customer: str) -> dict[str, Any]:
    subs = world.sandbox.store.all("subscription", lambda s: s["customer"] == customer)
    return world.sandbox.get(subs[0]["id"])


def _open_invoice(world: World, customer: str) -> dict[str, Any]:
    [invoice] = world.sandbox.store.all(
        "invoice", lambda i: i["customer"] == customer and i["status"] == "open")
    return world.sandbox.get(invoice["id"])


async def _update_card_and_pay(world: World, user: Any, notice: Any) -> None:
    """From a payment-failed notice, two taps and the card: Update card opens Stripe's page,
    the card is saved there, and Pay now in the "Card updated" notice pays."""
    url = await world.press(user, notice, "Update card")
    assert isinstance(url, str) and url.startswith(f"{world.url}/card/")
    await world.follow(url, payment_method="pm_card_visa")
    await world.settle()
    updated = await world.notice(user, "Card updated: Visa •••• 4242")
    assert _labels(updated) == ["Pay €29.00 now"]
    paid = await world.press(user, updated, "Pay €29.00 now")
    assert not isinstance(paid, str) and "Paid €29.00. Thank you!" in (paid.text or "")
    await world.settle()


async def test_a_renewal_without_funds_says_so_with_amount_and_retry_date(world: World) -> None:
    """Insufficient funds: the notice names amount, reason in plain words and the retry day;
    Pay now with the same card says why again, and pays once the card is updated."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_chargeDeclinedInsufficientFunds")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    notice = await world.telegram.next_message(user)
    retry = datetime.fromtimestamp(_open_invoice(world, customer["id"])["next_payment_attempt"],
                                   UTC)
    assert retry.date() > datetime.fromtimestamp(world.sandbox.now(), UTC).date()
    assert (notice.text or "").splitlines() == [
        "Payment failed",
        "We could not charge €29.00 for your subscription.",
        "The card has insufficient funds.",
        f"We will try again on {retry:%b} {retry.day}, {retry.year}. Update your card or pay "
        "now to keep your subscription."], notice.text
    assert _labels(notice) == ["Update card", "Pay €29.00 now"]
    declined = await world.press(user, notice, "Pay €29.00 now")
    assert not isinstance(declined, str)
    assert (declined.text or "") == "The card has insufficient funds. Nothing was changed."
    await _update_card_and_pay(world, user, notice)
    await world.telegram.assert_no_message(user, within=0.5)
    assert "Status: Active" in ((await world.say(user, "/plan")).text or "")


async def test_a_german_customer_reads_the_decline_reason_in_german(world: World) -> None:
    """The same notice for a German-speaking customer: amount, reason and retry day in German."""
    user, customer = await world.linked_user(language_code="de")
    await world.switch_card(customer["id"], "pm_card_chargeDeclinedInsufficientFunds")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    notice = await world.telegram.next_message(user)
    retry = datetime.fromtimestamp(_open_invoice(world, customer["id"])["next_payment_attempt"],
                                   UTC)
    lines = (notice.text or "").splitlines()
    assert lines[0] == "Zahlung fehlgeschlagen", notice.text
    assert lines[1:3] == ["Wir konnten 29,00\xa0€ für Ihr Abo nicht abbuchen.",
                          "Die Karte ist nicht ausreichend gedeckt."], notice.text
    day = rf"{retry.day}\. [A-ZÄÖÜ][a-zäöü]+\.? {retry.year}"
    assert re.match(rf"Wir versuchen es am {day} noch einmal\.", lines[3]), notice.text
    assert _labels(notice) == ["Karte ändern", "Jetzt 29,00\xa0€ bezahlen"]


async def test_a_successful_renewal_sends_no_failure(world: World) -> None:
    """A renewal that succeeds says nothing, unless renewal receipts are on."""
    user, _ = await world.linked_user()
    world.sandbox.advance_time(MONTH)
    await world.settle()
    await world.telegram.assert_no_message(user, within=0.5)
    billing = world.service.runtime.billing
    billing.catalog = replace(billing.catalog, renewal_receipts=True)
    world.sandbox.advance_time(MONTH)
    await world.settle()
    receipt = await world.telegram.next_message(user)
    assert (receipt.text or "").startswith("Payment received")
    assert "We received your payment of €29.00" in (receipt.text or "")
    assert any(label.startswith("Invoice") for label in _labels(receipt))


async def test_a_failed_renewal_is_recovered_from_the_notice(world: World) -> None:
    """The failure notice says amount, reason and retry; its buttons update the card and pay."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_visa_chargeDeclined")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    notice = await world.telegram.next_message(user)
    text = notice.text or ""
    assert text.startswith("Payment failed") and "We could not charge €29.00" in text
    assert "The card was declined." in text and "We will try again on" in text
    assert _labels(notice) == ["Update card", "Pay €29.00 now"]
    await _update_card_and_pay(world, user, notice)
    # Paid in the chat: answered there, so no notice follows (no second failure either).
    await world.telegram.assert_no_message(user, within=0.5)
    assert "Status: Active" in ((await world.say(user, "/plan")).text or "")


async def test_duplicated_shuffled_webhooks_notify_once(world: World) -> None:
    """Every event delivered three times, shuffled: still exactly one failure notice."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_visa_chargeDeclined")
    world.sandbox.webhook_mode(duplicate=2, shuffle=True, seed=3)
    world.sandbox.advance_time(MONTH)
    await world.settle()
    notice = await world.telegram.next_message(user)
    assert (notice.text or "").startswith("Payment failed")
    await world.settle()
    await world.telegram.assert_no_message(user, within=0.5)


async def test_a_payment_needing_authentication_links_the_invoice(world: World) -> None:
    """A bank asking for authentication gets a notice with the hosted invoice page."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_authenticationRequired")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    messages = [await world.telegram.next_message(user) for _ in range(2)]
    action = next(m for m in messages if (m.text or "").startswith("Please confirm"))
    url = await world.press(user, action, "Complete payment")
    assert isinstance(url, str) and "/pay/invoice/in_" in url
    assert any((m.text or "").startswith("Payment failed") for m in messages)


async def test_pay_now_needing_authentication_offers_the_invoice_page(world: World) -> None:
    """Pay now with a card the bank wants confirmed links Stripe's page that asks for it."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_authenticationRequired")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    failed = next(m for m in [await world.telegram.next_message(user) for _ in range(2)]
                  if (m.text or "").startswith("Payment failed"))
    answer = await world.press(user, failed, "Pay €29.00 now")
    assert not isinstance(answer, str)
    assert (answer.text or "") == ("The bank asks you to confirm the payment. "
                                   "Nothing was changed.")
    assert _labels(answer) == ["Complete payment", "Update card"]
    url = await world.press(user, answer, "Complete payment")
    assert url == _open_invoice(world, customer["id"])["hosted_invoice_url"]


async def _dashboard_update(world: World, subscription_id: str, params: dict[str, Any]) -> None:
    """Change a subscription as Stripe's Dashboard would: a raw API call, not Portier's."""
    gateway = world.service.runtime.billing.gateway
    await gateway.call(gateway.v1.subscriptions.update_async, subscription_id, params)


async def test_a_cancel_made_elsewhere_is_announced(world: World) -> None:
    """A cancel made in Stripe's dashboard reaches the chat with the end date."""
    user, customer = await world.linked_user()
    sub = _subscription(world, customer["id"])
    await _dashboard_update(world, sub["id"], {"cancel_at_period_end": True})
    await world.settle()
    notice = await world.telegram.next_message(user)
    assert (notice.text or "").startswith("Subscription canceled")
    assert "ends on" in (notice.text or "") and _labels(notice) == ["My plan"]


async def test_quiet_hours_defer_all_but_payment_failures(world: World) -> None:
    """During quiet hours a plan change waits; a payment failure goes out at once."""
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    billing = world.service.runtime.billing
    billing.catalog = replace(billing.catalog,
                              quiet_hours=f"{start:%H:%M}-{end:%H:%M}")
    user, customer = await world.linked_user()
    sub = _subscription(world, customer["id"])
    await _dashboard_update(world, sub["id"], {"cancel_at_period_end": True})
    await world.settle()
    await world.telegram.assert_no_message(user, within=0.5)
    async with billing.db.session() as session:
        [waiting] = await session.scalars(select(Notice).where(Notice.kind == "canceled"))
    assert waiting.status == "pending" and waiting.send_after > utcnow() + timedelta(minutes=30)
    await _dashboard_update(world, sub["id"], {"cancel_at_period_end": False})
    await world.switch_card(customer["id"], "pm_card_visa_chargeDeclined")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    notice = await world.telegram.next_message(user)
    assert (notice.text or "").startswith("Payment failed")
    await world.telegram.assert_no_message(user, within=0.3)


async def test_the_card_that_pays_a_checkout_subscription_is_announced_before_it_expires(
        world: World) -> None:
    """A Checkout customer's card sits on the subscription, not the customer: the scan finds
    it and the notice names it, `card_expiry_days` before it expires."""
    user, customer = await world.linked_user(card="pm_card_mastercard")
    await world.settle()
    sub = _subscription(world, customer["id"])
    card = world.sandbox.get(sub["default_payment_method"])["card"]
    assert world.sandbox.get(customer["id"])["invoice_settings"]["default_payment_method"] is None
    billing = world.service.runtime.billing
    year, month = card["exp_year"], card["exp_month"]
    ends = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)  # after its last day
    days = timedelta(days=billing.catalog.card_expiry_days)
    early = ends - days - timedelta(days=1)
    assert (await scan_cards(billing.db, billing.catalog, now=early)).due == 0
    due = ends - days + timedelta(days=1)
    assert (await scan_cards(billing.db, billing.catalog, now=due)).added == 1
    async with billing.db.session() as session:
        [notice] = await session.scalars(select(Notice).where(Notice.kind == "card_expiring"))
    assert (notice.params["brand"], notice.params["last4"]) == ("mastercard", "4444")
    assert notice.chat_id == str(user.id)
