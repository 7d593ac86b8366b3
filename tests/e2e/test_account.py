"""My plan, update card, invoices and forget me — as a linked Telegram user."""

from __future__ import annotations

from sqlalchemy import select

from billing.models import ChatLink
from tests.world import World

MONTH = 31 * 24 * 3600


async def test_update_card_through_the_portal(world: World) -> None:
    """/card gives one button to Portier's card link, which makes the portal session at the
    tap (flow payment_method_update, back to Portier's /return); saving a card there shows it
    in /plan and the chat is told "Card updated"."""
    user, _ = await world.linked_user()
    sessions = len(world.sandbox.store.all("billing_portal.session"))
    reply = await world.say(user, "/card")
    assert world.sandbox.store.all("billing_portal.session")[sessions:] == []  # not yet
    url = await world.press(user, reply, "Update card")
    assert isinstance(url, str) and url.startswith(f"{world.url}/card/")
    opened = await world.http.get(url)
    assert opened.status_code == 302 and opened.headers["cache-control"] == "no-store"
    portal_url = opened.headers["location"]
    assert "/pay/portal/" in portal_url
    portal = world.sandbox.get(portal_url.rsplit("/", 1)[-1])
    assert portal["flow"]["type"] == "payment_method_update"
    assert portal["return_url"] == f"{world.url}/return?lang=en"
    response = await world.follow(portal_url, payment_method="pm_card_mastercard")
    assert response.status_code == 303
    await world.settle()
    updated = await world.notice(user, "Card updated: Mastercard •••• 4444")
    assert [b["text"] for row in updated.keyboard for b in row] == ["My plan"]
    plan = await world.say(user, "/plan")
    assert "Mastercard •••• 4444" in (plan.text or "")


async def test_invoices_page_five_at_a_time(world: World) -> None:
    """Invoices come newest first, five a page, with hosted and PDF links and older pages."""
    user, _ = await world.linked_user()
    for _ in range(6):
        world.sandbox.advance_time(MONTH)
    await world.settle()
    first = await world.say(user, "/invoices")
    lines = (first.text or "").splitlines()
    assert lines[0] == "Invoices" and len(lines) == 6
    assert all("€29.00" in line and "Paid" in line for line in lines[1:])
    labels = [b["text"] for row in first.keyboard for b in row]
    assert labels.count("PDF") == 5 and "Older invoices" in labels
    assert all(b.get("url", "").count("/pay/invoice/") == 1
               for row in first.keyboard for b in row if b["text"] == "PDF")
    older = await world.press(user, first, "Older invoices")
    assert not isinstance(older, str)
    assert len((older.text or "").splitlines()) == 3  # title + the 2 oldest of 7 invoices


async def test_pay_now_after_a_failed_renewal(world: World) -> None:
    """An open invoice offers Pay now; a declining card says why, a new card pays it."""
    user, customer = await world.linked_user()
    await world.switch_card(customer["id"], "pm_card_visa_chargeDeclined")
    world.sandbox.advance_time(MONTH)
    await world.settle()
    failed = await world.notice(user, "Payment failed")
    assert "€29.00" in (failed.text or "") and "declined" in (failed.text or "")
    plan = await world.say(user, "/plan")
    assert "Past due" in (plan.text or "")
    page = await world.say(user, "/invoices")
    pay = next(b["text"] for row in page.keyboard for b in row if b["text"].startswith("Pay "))
    declined = await world.press(user, page, pay)
    assert not isinstance(declined, str)
    assert "declined" in (declined.text or "") and "Nothing was changed" in (declined.text or "")
    url = await world.press(user, declined, "Update card")
    assert isinstance(url, str)
    await world.follow(url, payment_method="pm_card_visa")
    await world.notice(user, "Card updated: Visa •••• 4242")
    assert await world.telegram.press(user, page, pay) == 200
    await world.notice(user, "Paid €29.00")
    assert "Status: Active" in ((await world.say(user, "/plan")).text or "")


async def test_forget_me_after_confirm(world: World) -> None:
    """/forget asks first; confirming deletes the link and leaves Stripe untouched."""
    user, customer = await world.linked_user()
    ask = await world.say(user, "/forget")
    kept = await world.press(user, ask, "Keep everything")
    assert not isinstance(kept, str) and "Nothing was changed" in (kept.text or "")
    ask = await world.say(user, "/forget")
    done = await world.press(user, ask, "Yes, forget me")
    assert not isinstance(done, str) and "forgotten" in (done.text or "")
    async with world.service.runtime.billing.db.session() as session:
        assert list(await session.scalars(select(ChatLink))) == []
    assert "not connected" in ((await world.say(user, "/plan")).text or "")
    assert world.sandbox.get(customer["id"])["id"] == customer["id"]


async def test_plan_without_subscription_offers_plans(world: World) -> None:
    """A linked customer without a subscription is offered the plans."""
    customer = world.sandbox.create_customer(email="x@example.com")
    user = world.user()
    await world.say(user, f"/start {await world.mint(customer['id'])}")
    reply = await world.say(user, "/plan")
    assert "no active subscription" in (reply.text or "")
    assert reply.keyboard[0][0]["text"] == "See plans"
