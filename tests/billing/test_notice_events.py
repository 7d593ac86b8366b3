"""Notices written by Stripe events: who gets them, with what, once, and only when still true."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from billing import events as _events  # noqa: F401 - registers the welcome handler
from billing import notice_events
from billing.links import link_customer
from billing.models import Notice
from billing.notices import notify, quiet_until
from billing.prefs import save_prefs
from billing.services import Billing
from billing.webhooks import process_pending, record
from tests.billing.conftest import Shop

DAY = 86400


async def _link(billing: Billing, customer: str, user_id: str) -> None:
    async with billing.db.session() as session:
        await link_customer(session, channel="telegram", user_id=user_id, chat_id=user_id,
                            customer_id=customer)


async def _feed(shop: Shop, *, times: int = 1, shuffle: bool = False,
                since: int = 0) -> list[dict[str, Any]]:
    """Record the sandbox's events (each `times` times, maybe shuffled), then process them."""
    events = [e for e in shop.sandbox.events() if e["created"] >= since] * times
    if shuffle:
        random.Random(7).shuffle(events)
    for event in events:
        async with shop.billing.db.session() as session:
            await record(session, event)
    while await process_pending(shop.billing):
        pass
    return events


async def _notices(billing: Billing, kind: str | None = None) -> list[Notice]:
    async with billing.db.session() as session:
        query = select(Notice).order_by(Notice.id)
        if kind is not None:
            query = query.where(Notice.kind == kind)
        return list(await session.scalars(query))


async def _announced(billing: Billing) -> list[Notice]:
    """Return the notices but "Card updated": the scenes below save cards after the chat is
    linked (shop.customer sets a first card and then another, fail_renewal saves a declining
    one in the portal), each of which the chat is told about (tested on its own below)."""
    return [n for n in await _notices(billing) if n.kind != "card_updated"]


async def _api(shop: Shop, fn: Any, *args: Any, key: str | None = None) -> Any:
    options = {"idempotency_key": key} if key else {}
    return await shop.billing.gateway.call(fn, *args, options=options)


async def test_a_failed_renewal_notifies_every_linked_chat(shop: Shop) -> None:
    """It queues one payment-failed notice per linked chat: amount, reason, next retry."""
    customer = shop.customer()
    await _link(shop.billing, customer, "501")
    await _link(shop.billing, customer, "502")
    invoice = await shop.fail_renewal(customer)
    await _feed(shop)
    failed = await _notices(shop.billing, "payment_failed")
    assert [n.chat_id for n in failed] == ["501", "502"]
    assert failed[0].dedupe_key == f"payment_failed:{invoice}:1@telegram:501"
    params = failed[0].params
    assert (params["invoice"], params["amount"], params["currency"]) == (invoice, 2900, "eur")
    assert params["reason"] == "generic_decline" and params["next_retry"] > shop.sandbox.now()
    assert {n.kind for n in await _announced(shop.billing)} == {"payment_failed"}


async def test_events_delivered_three_times_shuffled_notify_once(shop: Shop) -> None:
    """Duplicated and shuffled events still give exactly one notice per change."""
    customer = shop.customer()
    await _link(shop.billing, customer, "503")
    await shop.fail_renewal(customer)
    await shop.switch_card(customer, "pm_card_visa")
    await asyncio.to_thread(shop.sandbox.advance_time, 3 * DAY + 60)  # the retry pays it
    await _feed(shop, times=3, shuffle=True)
    kinds = sorted(n.kind for n in await _announced(shop.billing))
    assert kinds == ["payment_failed", "payment_received"] or kinds == ["payment_received"]
    assert len([k for k in kinds if k == "payment_received"]) == 1


async def test_a_failure_already_paid_is_not_announced(shop: Shop) -> None:
    """A payment failure processed after the invoice was paid says nothing (stale)."""
    customer = shop.customer()
    await _link(shop.billing, customer, "504")
    invoice = await shop.fail_renewal(customer)
    await asyncio.to_thread(shop.sandbox.pay_invoice, invoice, "pm_card_visa")
    await _feed(shop)
    assert [n.kind for n in await _announced(shop.billing)] == ["payment_received"]
    assert (await _announced(shop.billing))[0].params["after_failure"] is True


async def test_pay_now_in_the_chat_notifies_nobody(shop: Shop) -> None:
    """A payment made through Portier (its idempotency key) was answered in the chat."""
    from billing.invoices import pay_invoice

    customer = shop.customer()
    await _link(shop.billing, customer, "505")
    invoice = await shop.fail_renewal(customer)
    await _feed(shop)
    await shop.switch_card(customer, "pm_card_visa")
    await pay_invoice(shop.billing, customer_id=customer, invoice_id=invoice)
    await _feed(shop)
    assert [n.kind for n in await _announced(shop.billing)] == ["payment_failed"]


async def test_action_required_links_the_hosted_invoice(shop: Shop) -> None:
    """A card that needs authentication gets a notice with the hosted invoice page."""
    customer = shop.customer()
    await _link(shop.billing, customer, "506")
    await shop.switch_card(customer, "pm_card_authenticationRequired")
    end = shop.subscription(customer)["items"]["data"][0]["current_period_end"]
    await shop.advance(end - shop.sandbox.now() + 3600)
    await _feed(shop)
    [action] = await _notices(shop.billing, "action_required")
    assert action.params["hosted_url"].endswith(f"/pay/invoice/{action.params['invoice']}")
    assert len(await _notices(shop.billing, "payment_failed")) == 1


async def test_changes_made_elsewhere_are_announced(shop: Shop) -> None:
    """Plan changes, cancels, pauses and resumes made outside Portier reach the chat."""
    customer = shop.customer()
    await _link(shop.billing, customer, "507")
    sub = shop.subscription(customer)
    v1 = shop.billing.gateway.v1
    basic = shop.billing.prices.by_key["basic_monthly"].id
    item = sub["items"]["data"][0]["id"]
    for n, change in enumerate((
            {"items": [{"id": item, "price": basic}], "proration_behavior": "none"},
            {"cancel_at_period_end": True}, {"cancel_at_period_end": False},
            {"pause_collection": {"behavior": "void"}})):
        await _api(shop, v1.subscriptions.update_async, sub["id"], change, key=f"dash-{n}")
        await _feed(shop)  # each webhook arrives before the next change
    notices = await _announced(shop.billing)
    assert [n.kind for n in notices] == ["plan_changed", "canceled", "resumed", "paused"]
    assert notices[0].params["plan"] == "Basic" and notices[0].params["amount"] == 900
    assert notices[1].params["ends_at"] == sub["items"]["data"][0]["current_period_end"]


async def test_changes_made_in_the_chat_are_not_announced_again(shop: Shop) -> None:
    """A change Portier made (idempotency key portier-…) was confirmed in the chat."""
    customer = shop.customer()
    await _link(shop.billing, customer, "508")
    sub = shop.subscription(customer)
    await shop.billing.gateway.cancel_at_period_end(
        sub["id"], feedback="other", comment="", key="portier-test-cancel")
    await _feed(shop)
    assert await _announced(shop.billing) == []


async def test_a_change_undone_before_processing_is_not_announced(shop: Shop) -> None:
    """A cancel undone by the time the event is processed announces only the resume."""
    customer = shop.customer()
    await _link(shop.billing, customer, "509")
    sub = shop.subscription(customer)
    v1 = shop.billing.gateway.v1
    for n, value in enumerate((True, False)):
        await _api(shop, v1.subscriptions.update_async, sub["id"],
                   {"cancel_at_period_end": value}, key=f"elsewhere-{n}")
    await _feed(shop)
    assert [n.kind for n in await _announced(shop.billing)] == ["resumed"]


async def test_ended_and_trial_ending(shop: Shop) -> None:
    """A subscription that ends, and a trial about to end, are announced once each."""
    v1 = shop.billing.gateway.v1
    ending = shop.customer()
    await _link(shop.billing, ending, "510")
    await _api(shop, v1.subscriptions.cancel_async, shop.subscription(ending)["id"])
    trial = shop.customer(plan=None)
    await _link(shop.billing, trial, "511")
    price = shop.billing.prices.by_key["pro_monthly"].id
    await _api(shop, v1.subscriptions.create_async, {
        "customer": trial, "items": [{"price": price}], "trial_period_days": 14})
    await shop.advance(12 * DAY)
    await _feed(shop, times=2)
    [ended] = await _notices(shop.billing, "ended")
    assert ended.chat_id == "510" and ended.params["plan"] == "Pro"
    [trial_note] = await _notices(shop.billing, "trial_ending")
    assert trial_note.chat_id == "511" and trial_note.params["trial_end"] > shop.sandbox.now()


def test_changes_are_read_from_previous_attributes() -> None:
    """It names plan changes, cancels, undos, pauses and resumes; a renewal is none of them."""
    def sub(price: str = "p1", **extra: Any) -> dict[str, Any]:
        return {"items": {"data": [{"price": {"id": price}}]}, "cancel_at_period_end": False,
                "cancel_at": None, "pause_collection": None} | extra
    changes = notice_events.changes
    assert changes({"items": sub("p0")["items"]}, sub()) == ["plan_changed"]
    assert changes({"items": sub()["items"]}, sub()) == []  # a renewal moves the period only
    assert changes({"cancel_at_period_end": False, "cancel_at": None},
                   sub(cancel_at_period_end=True, cancel_at=9)) == ["canceled"]
    assert changes({"cancel_at": 9}, sub()) == ["resumed"]
    assert changes({"pause_collection": None},
                   sub(pause_collection={"behavior": "void"})) == ["paused"]
    assert changes({"pause_collection": {"behavior": "void"}}, sub()) == ["resumed"]
    assert changes({"status": "active"}, sub(status="past_due")) == []


def test_decline_code_comes_from_the_payment() -> None:
    """It reads the decline code of the invoice's payment when Stripe expanded it."""
    intent = {"last_payment_error": {"code": "card_declined",
                                     "decline_code": "insufficient_funds"}}
    paid = {"payments": {"data": [{"payment": {"payment_intent": intent}}]}}
    assert notice_events.decline_code(paid) == "insufficient_funds"
    assert notice_events.decline_code({"payments": {"data": []}}) is None


def test_quiet_hours_end_in_the_customers_zone() -> None:
    """Quiet hours wrap midnight and are read in the customer's time zone."""
    late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
    assert quiet_until("21:00-08:00", None, late) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert quiet_until("21:00-08:00", None, late.replace(hour=12)) is None
    assert quiet_until("21:00-08:00", "Europe/Berlin", late.replace(hour=6)) == datetime(
        2026, 3, 2, 7, 0, tzinfo=UTC)  # 07:00 in Berlin; quiet until 08:00 Berlin
    assert quiet_until("21:00-08:00", "Not/AZone", late) is not None  # unknown zone: UTC
    assert quiet_until("12:00-13:00", "UTC", late.replace(hour=12, minute=59)) == datetime(
        2026, 3, 2, 13, 0, tzinfo=UTC)
    assert quiet_until(None, "UTC", late) is None


async def test_quiet_hours_defer_all_but_payment_problems(billing: Billing) -> None:
    """Notices wait for the end of quiet hours; a payment failure goes at once."""
    await _link(billing, "cus_quiet", "512")
    async with billing.db.session() as session:
        await save_prefs(session, channel="telegram", user_id="512", timezone="Asia/Tokyo")
    now = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 22:00 in Tokyo
    async with billing.db.session() as session:
        for kind in ("plan_changed", "payment_failed"):
            assert await notify(session, customer_id="cus_quiet", kind=kind,
                                key=f"{kind}:sub_1:evt_1", params={},
                                quiet_hours="21:00-08:00", now=now) == 1
        assert await notify(session, customer_id="cus_quiet", kind="plan_changed",
                            key="plan_changed:sub_1:evt_1", params={},
                            quiet_hours="21:00-08:00", now=now) == 0
    changed, failed = await _notices(billing)
    assert changed.send_after == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo
    assert failed.send_after == now


async def test_a_card_saved_in_the_portal_is_confirmed_once_per_card(shop: Shop) -> None:
    """Each card saved in the portal gets one "Card updated" (its customer.updated and
    subscription events, delivered three times and shuffled, notwithstanding), with the open
    invoice to pay when there is one."""
    customer = shop.customer()
    await _feed(shop)
    await _link(shop.billing, customer, "520")
    invoice = await shop.fail_renewal(customer)  # saves a declining card first
    await _feed(shop)
    since = shop.sandbox.now()
    await shop.switch_card(customer, "pm_card_mastercard")
    await _feed(shop, times=3, shuffle=True, since=since)
    declining, mastercard = await _notices(shop.billing, "card_updated")
    assert declining.params["last4"] == "0341"
    new_card = shop.sandbox.get(customer)["invoice_settings"]["default_payment_method"]
    assert mastercard.dedupe_key == f"card_updated:{new_card}@telegram:520"
    assert mastercard.params == {
        "customer": customer, "payment_method": new_card, "brand": "mastercard",
        "last4": "4444", "exp_month": 12, "exp_year": mastercard.params["exp_year"],
        "invoice": invoice, "amount": 2900, "currency": "eur"}
    assert mastercard.send_after <= mastercard.created_at  # no quiet hours for an answer


async def test_a_saved_card_nobody_is_told_about_asks_stripe_nothing(shop: Shop) -> None:
    """Without a linked chat, a card saved in the portal reads no payment method."""
    customer = shop.customer()
    await shop.switch_card(customer, "pm_card_mastercard")
    await _feed(shop)
    assert not [p for m, p in shop.sandbox.requests if p.startswith("/v1/payment_methods/")]
    assert await _notices(shop.billing, "card_updated") == []


async def test_a_default_card_that_pays_nothing_is_not_announced(shop: Shop) -> None:
    """A new customer default while the subscription pays with its own card changes what
    pays nothing (API reference, subscription.default_payment_method): no notice until the
    subscription's own card is replaced too."""
    v1 = shop.billing.gateway.v1
    customer = shop.customer(plan=None)
    own = await _api(shop, v1.payment_methods.attach_async, "pm_card_amex",
                     {"customer": customer})
    price = shop.billing.prices.by_key["pro_monthly"].id
    sub = await _api(shop, v1.subscriptions.create_async, {
        "customer": customer, "items": [{"price": price}], "default_payment_method": own.id})
    await _feed(shop)
    await _link(shop.billing, customer, "521")
    since = shop.sandbox.now()
    new = await _api(shop, v1.payment_methods.attach_async, "pm_card_mastercard",
                     {"customer": customer})
    await _api(shop, v1.customers.update_async, customer,
               {"invoice_settings": {"default_payment_method": new.id}})
    await _feed(shop, since=since)
    assert await _notices(shop.billing, "card_updated") == []
    await _api(shop, v1.subscriptions.update_async, sub.id, {"default_payment_method": new.id})
    await _feed(shop, times=2, since=since)
    [updated] = await _notices(shop.billing, "card_updated")
    assert (updated.params["brand"], updated.params["last4"]) == ("mastercard", "4444")
    assert "invoice" not in updated.params
