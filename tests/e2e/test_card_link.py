"""Update card in one tap: Portier's `GET /card/<token>` makes Stripe's card page at the tap.

Billing-portal sessions are short-lived logins, to be made when the customer taps
(docs.stripe.com/customer-management/portal-deep-links; ../shared/stripe/BEHAVIOUR.md), so the
button carries a signed token and Portier makes the session when it is opened.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from billing.card_links import card_link
from billing.models import Notice, utcnow
from billing.reminders import scan_cards
from bot.logs import configure_logging
from tests.fakes.telegram_objects import FakeUser
from tests.world import World

MONTH = 31 * 86400


def _labels(message: Any) -> list[str]:
    return [b["text"] for row in message.keyboard for b in row]


def _portal_sessions(world: World) -> int:
    return len(world.sandbox.store.all("billing_portal.session"))


def _link(world: World, user: FakeUser, customer: str, *, locale: str = "en",
          ago: timedelta = timedelta(0)) -> str:
    return card_link(world.service.runtime.billing, customer_id=customer, channel="telegram",
                     user_id=str(user.id), chat_id=str(user.id), locale=locale,
                     now=utcnow() - ago)


async def _card_notices(world: World) -> int:
    async with world.service.runtime.billing.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Notice)
                                        .where(Notice.kind == "card_updated")) or 0)


async def test_a_failed_payment_is_recovered_in_two_taps_and_the_card(world: World) -> None:
    """Payment failed → tap Update card (Stripe's page opens) → the card → tap Pay now in
    the "Card updated" notice: two taps in the chat, no message in between."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_visa_chargeDeclined")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    failed = await world.notice(user, "Payment failed")
    sessions = _portal_sessions(world)
    url = await world.press(user, failed, "Update card")  # tap 1: a URL, no message
    assert isinstance(url, str) and url.startswith(f"{world.url}/card/")
    assert _portal_sessions(world) == sessions  # made at the tap, not with the notice
    await world.follow(url, payment_method="pm_card_mastercard")  # the card, on Stripe's page
    assert _portal_sessions(world) == sessions + 1
    await world.settle()
    updated = await world.telegram.next_message(user)
    assert (updated.text or "").splitlines() == [
        "Card updated: Mastercard •••• 4444",
        f"Mastercard •••• 4444, expires 12/{_year(world, customer['id'])}, pays your "
        "subscription from now on.",
        "An invoice of €29.00 is still open."]
    assert _labels(updated) == ["Pay €29.00 now"]
    paid = await world.press(user, updated, "Pay €29.00 now")  # tap 2
    assert not isinstance(paid, str) and "Paid €29.00. Thank you!" in (paid.text or "")
    await world.settle()
    assert "Status: Active" in ((await world.say(user, "/plan")).text or "")


def _year(world: World, customer: str) -> int:
    card = world.sandbox.get(customer)["invoice_settings"]["default_payment_method"]
    return int(world.sandbox.get(card)["card"]["exp_year"])


async def test_the_card_updated_notice_comes_once_however_often_its_events_arrive(
        world: World) -> None:
    """customer.updated and customer.subscription.updated both name the new card; delivered
    again (twice each), they add no second notice and ask Stripe nothing more."""
    user, customer = await world.linked_user()
    reply = await world.say(user, "/card")
    url = await world.press(user, reply, "Update card")
    assert isinstance(url, str)
    await world.follow(url, payment_method="pm_card_mastercard")
    await world.settle()
    await world.notice(user, "Card updated: Mastercard •••• 4444")
    kinds = ("customer.updated", "customer.subscription.updated", "payment_method.attached")
    again = [e["id"] for e in world.sandbox.events() if e["type"] in kinds
             and e["data"]["object"].get("customer", e["data"]["object"]["id"]) == customer["id"]]
    assert len(again) >= 2
    card_reads = _card_reads(world)
    world.sandbox.redeliver(again, times=2, shuffle=True, seed=8)
    await world.settle()
    await world.telegram.assert_no_message(user, within=0.5)
    assert await _card_notices(world) == 1
    assert _card_reads(world) == card_reads


def _card_reads(world: World) -> int:
    return sum(1 for method, path in world.sandbox.requests
               if method == "GET" and path.startswith("/v1/payment_methods/"))


async def test_a_german_chat_gets_the_notice_and_its_pages_in_german(world: World) -> None:
    """The link carries the chat's language: Stripe's page returns to the German /return,
    the notice is German, and an expired link says so in German whatever the browser says."""
    user, customer = await world.linked_user(language_code="de")
    card = await world.say(user, "/card")
    assert "24 Stunden" in (card.text or "")
    url = await world.press(user, card, "Karte ändern")
    assert isinstance(url, str)
    back = await world.follow(url, payment_method="pm_card_mastercard")
    assert "lang=de" in back.headers["location"]
    await world.settle()
    await world.notice(user, "Karte geändert: Mastercard •••• 4444")
    expired = await world.http.get(_link(world, user, customer["id"], locale="de",
                                         ago=timedelta(hours=25)),
                                   headers={"Accept-Language": "en-US,en;q=0.9"})
    assert expired.status_code == 410
    assert "<html lang='de'>" in expired.text and "Dieser Link ist abgelaufen." in expired.text
    assert f'href="https://t.me/{world.telegram.username}"' in expired.text
    assert "Zum Chat" in expired.text


async def test_an_expired_link_makes_nothing(world: World) -> None:
    """A token minted 25 hours ago gets 410 and a page back to the chat; Stripe is not asked."""
    user, customer = await world.linked_user()
    await world.settle()  # the sign-up's own webhooks re-read nothing more while counting
    sessions, requests = _portal_sessions(world), len(world.sandbox.requests)
    answer = await world.http.get(_link(world, user, customer["id"], ago=timedelta(hours=25)))
    assert answer.status_code == 410 and "This link has expired." in answer.text
    assert "Send /card in the chat for a fresh button." in answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert (_portal_sessions(world), len(world.sandbox.requests)) == (sessions, requests)


@pytest.mark.parametrize("forge", [
    lambda url: url[:-2] + ("AA" if not url.endswith("AA") else "BB"),
    lambda url: url.rsplit(".", 1)[0] + "." + "A" * 22,
    lambda url: url + "%0a",
    lambda url: url.rsplit("/", 1)[0] + "/" + "x" * 5000,
    lambda url: url.rsplit("/", 1)[0] + "/..%2F..%2Freturn",
])
async def test_a_forged_or_malformed_link_makes_nothing(world: World, forge: Any) -> None:
    """403 and a page in the browser's language that points back to the chat."""
    user, customer = await world.linked_user()
    sessions = _portal_sessions(world)
    answer = await world.http.get(forge(_link(world, user, customer["id"])),
                                  headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert answer.status_code in (403, 404), answer.status_code
    if answer.status_code == 403:
        assert "Dieser Link ist ungültig." in answer.text and "Zum Chat" in answer.text
    assert _portal_sessions(world) == sessions


async def test_a_link_dies_with_the_chat_s_link_to_its_customer(world: World) -> None:
    """After /forget, or once the chat is linked to another customer, an old button opens
    nothing; the chat's new button works."""
    user, customer = await world.linked_user()
    reply = await world.say(user, "/card")
    old = await world.press(user, reply, "Update card")
    assert isinstance(old, str)
    other = await world.customer_with_plan("basic_monthly")
    linked = await world.say(user, f"/start {await world.mint(other['id'])}")
    assert "Connected" in (linked.text or "")
    sessions = _portal_sessions(world)
    answer = await world.http.get(old)
    assert answer.status_code == 410
    assert "This chat is no longer connected to the subscription." in answer.text
    assert _portal_sessions(world) == sessions
    fresh = await world.press(user, await world.say(user, "/card"), "Update card")
    assert isinstance(fresh, str)
    opened = await world.http.get(fresh)
    assert opened.status_code == 302
    portal = world.sandbox.get(opened.headers["location"].rsplit("/", 1)[-1])
    assert portal["customer"] == other["id"]
    ask = await world.say(user, "/forget")
    await world.press(user, ask, "Yes, forget me")
    assert (await world.http.get(fresh)).status_code == 410
    assert _portal_sessions(world) == sessions + 1


async def test_stripe_failing_at_the_tap_changes_nothing_and_a_retry_works(
        world: World) -> None:
    """Stripe down when the button is opened: 503, "Nothing was changed. Please try again";
    the same button works once Stripe answers."""
    user, customer = await world.linked_user()
    url = _link(world, user, customer["id"])
    # Every attempt of the first tap fails (the SDK retries a 500 twice).
    world.sandbox.fail_next(status=500, type_="api_error", times=3,
                            path_prefix="/v1/billing_portal")
    answer = await world.http.get(url)
    assert answer.status_code == 503
    assert "Stripe&#x27;s page could not be opened." in answer.text
    assert "Nothing was changed. Please try again in a moment." in answer.text
    assert not [s for s in world.sandbox.store.all("billing_portal.session")
                if s["customer"] == customer["id"]]
    again = await world.http.get(url)
    assert again.status_code == 302 and "/pay/portal/" in again.headers["location"]


async def test_the_link_and_its_token_stay_out_of_the_logs(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing logs a card link's token, refused or opened (uvicorn's access log is off and
    a card-link path is redacted wherever it might appear)."""
    configure_logging("json", world.settings.secrets(), level=logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        user, customer = await world.linked_user()
        url = await world.press(user, await world.say(user, "/card"), "Update card")
        assert isinstance(url, str)
        token = url.rsplit("/", 1)[-1]
        opened = await world.http.get(url)
        assert opened.status_code == 302
        assert (await world.http.get(url[:-1] + "x")).status_code == 403
        expired = _link(world, user, customer["id"], ago=timedelta(days=2))
        assert (await world.http.get(expired)).status_code == 410
        logged = "\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records)
        for secret in (token, token.split(".")[0], expired.rsplit("/", 1)[-1],
                       opened.headers["location"]):
            assert secret not in logged
    finally:
        configure_logging("console", level=logging.WARNING)


async def test_an_update_card_button_of_an_older_message_still_leads_there(world: World) -> None:
    """A button sent before the one-tap link (action "card") answers with the link."""
    user, _ = await world.linked_user()
    assert await world.telegram.press_data(user, await world.say(user, "/help"), "card") == 200
    reply = await world.telegram.next_message(user)
    url = await world.press(user, reply, "Update card")
    assert isinstance(url, str) and url.startswith(f"{world.url}/card/")


async def test_plan_and_the_card_expiring_notice_open_the_card_page_in_one_tap(
        world: World) -> None:
    """/plan's Update card and the card-expiring notice's are the same one-tap link."""
    user, customer = await world.linked_user(card="pm_card_mastercard")
    await world.settle()
    plan = await world.say(user, "/plan")
    url = await world.press(user, plan, "Update card")
    assert isinstance(url, str) and url.startswith(f"{world.url}/card/")
    billing = world.service.runtime.billing
    sub = world.sandbox.store.all("subscription", lambda s: s["customer"] == customer["id"])[0]
    card = world.sandbox.get(sub["default_payment_method"])["card"]
    year, month = card["exp_year"], card["exp_month"]
    ends = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    due = ends - timedelta(days=billing.catalog.card_expiry_days - 1)
    assert (await scan_cards(billing.db, billing.catalog, now=due)).added == 1
    async with billing.db.session() as session:  # queued for `due`, years ahead: send it now
        await session.execute(update(Notice).where(Notice.kind == "card_expiring")
                              .values(send_after=utcnow()))
    expiring = await world.notice(user, "Your card expires soon")
    assert _labels(expiring) == ["Update card"]
    url = await world.press(user, expiring, "Update card")
    assert isinstance(url, str) and url.startswith(f"{world.url}/card/")
    opened = await world.http.get(url)
    assert opened.status_code == 302 and "/pay/portal/" in opened.headers["location"]
