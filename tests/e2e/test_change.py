"""Change plan with a charge preview — as a linked Telegram user does it."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.world import World

DAY = 86400


def _euros(text: str, before: str) -> int:
    """Return the amount (in cents) written just before `before`, e.g. "€20.00 today"."""
    found = re.search(r"€([\d,]+\.\d\d) " + re.escape(before), text)
    assert found, text
    return int(found.group(1).replace(",", "").replace(".", ""))


def _sub(world: World, customer: dict[str, Any]) -> dict[str, Any]:
    subs = [o for o in world.sandbox.store.objects.values()
            if o.get("object") == "subscription" and o["customer"] == customer["id"]]
    return world.sandbox.get(subs[0]["id"])


def _lookup(sub: dict[str, Any]) -> str:
    return str(sub["items"]["data"][0]["price"]["lookup_key"])


def _invoices(world: World, customer: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in world.sandbox.store.objects.values()
            if o.get("object") == "invoice" and o["customer"] == customer["id"]]


async def _press(world: World, user: FakeUser, message: BotMessage, label: str) -> BotMessage:
    reply = await world.press(user, message, label)
    assert not isinstance(reply, str), reply
    return reply


async def _preview(world: World, user: FakeUser, label: str) -> BotMessage:
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    options = await _press(world, user, plan, "Change plan")
    return await _press(world, user, options, label)


async def test_options_are_marked_upgrade_or_downgrade(world: World) -> None:
    """Change plan lists the other plans and intervals, each an upgrade or a downgrade."""
    user, _ = await world.linked_user("pro_monthly")
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    options = await _press(world, user, plan, "Change plan")
    labels = [label for row in options.buttons() for label in row]
    assert "Pro · €290.00 per year · upgrade" in labels
    assert "Basic · €9.00 per month · downgrade" in labels
    assert "Basic · €90.00 per year · downgrade" in labels
    assert not any(label.startswith("Pro · €29.00 per month") for label in labels)


async def test_upgrade_charges_the_previewed_amount(world: World) -> None:
    """An upgrade is invoiced at once for exactly the prorated amount the preview showed."""
    user, customer = await world.linked_user("basic_monthly")
    world.sandbox.advance_time(10 * DAY)
    preview = await _preview(world, user, "Pro · €29.00 per month · upgrade")
    text = preview.text or ""
    assert "today (prorated), then €29.00 per month from" in text, text
    today = _euros(text, "today")
    assert 0 < today < 2000
    before = len(_invoices(world, customer))
    done = await _press(world, user, preview, "Confirm")
    assert "You are now on Pro" in (done.text or ""), done.text
    sub = _sub(world, customer)
    assert _lookup(sub) == "pro_monthly"
    new = [i for i in _invoices(world, customer) if i["billing_reason"] == "subscription_update"]
    assert len(_invoices(world, customer)) == before + 1 and len(new) == 1
    assert new[0]["amount_paid"] == today and new[0]["status"] == "paid"
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    assert "€29.00 per month" in (plan.text or "")


async def test_double_tapped_confirm_charges_once(world: World) -> None:
    """Pressing the same Confirm twice applies and charges the change once."""
    user, customer = await world.linked_user("basic_monthly")
    preview = await _preview(world, user, "Pro · €29.00 per month · upgrade")
    data = str(preview.button("Confirm")["callback_data"])
    for _ in range(2):
        assert await world.telegram.press_data(user, preview, data) == 200
    first = await world.telegram.next_message(user)
    second = await world.telegram.next_message(user)
    assert "You are now on Pro" in (first.text or "")
    assert "already on that plan" in (second.text or ""), second.text
    updates = [i for i in _invoices(world, customer)
               if i["billing_reason"] == "subscription_update"]
    assert len(updates) == 1 and _lookup(_sub(world, customer)) == "pro_monthly"


async def test_stale_preview_is_shown_again(world: World) -> None:
    """When the amount moved since the preview (a renewal passed), Confirm shows the new one."""
    user, customer = await world.linked_user("basic_monthly")
    world.sandbox.advance_time(20 * DAY)
    preview = await _preview(world, user, "Pro · €29.00 per month · upgrade")
    old = _euros(preview.text or "", "today")
    world.sandbox.advance_time(15 * DAY)  # past the renewal: a new period, a new proration
    await world.settle()
    fresh = await _press(world, user, preview, "Confirm")
    assert "amount changed" in (fresh.text or ""), fresh.text
    assert _euros(fresh.text or "", "today") != old
    assert _lookup(_sub(world, customer)) == "basic_monthly"
    done = await _press(world, user, fresh, "Confirm")
    assert "You are now on Pro" in (done.text or "")
    assert _lookup(_sub(world, customer)) == "pro_monthly"


async def test_declined_upgrade_keeps_the_plan(world: World) -> None:
    """An upgrade the card cannot pay leaves the plan unchanged and says why."""
    user, customer = await world.linked_user("basic_monthly")
    await world.switch_card(customer["id"], "pm_card_visa_chargeDeclined")
    preview = await _preview(world, user, "Pro · €29.00 per month · upgrade")
    declined = await _press(world, user, preview, "Confirm")
    text = declined.text or ""
    assert "declined" in text and "plan stays as it was" in text, text
    assert "Update card" in [label for row in declined.buttons() for label in row]
    sub = _sub(world, customer)
    assert _lookup(sub) == "basic_monthly" and sub["status"] == "active"
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    assert "€9.00 per month" in (plan.text or "")


async def test_downgrade_at_period_end_and_undo(world: World) -> None:
    """A downgrade waits for the period end through a schedule; Undo change releases it."""
    user, customer = await world.linked_user("pro_monthly")
    preview = await _preview(world, user, "Basic · €9.00 per month · downgrade")
    assert "No charge today" in (preview.text or "")
    done = await _press(world, user, preview, "Confirm")
    assert "You switch to Basic" in (done.text or ""), done.text
    sub = _sub(world, customer)
    assert sub["schedule"] and _lookup(sub) == "pro_monthly"
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    assert "Changes to Basic on" in (plan.text or ""), plan.text
    undone = await _press(world, user, plan, "Undo change")
    assert "You stay on Pro" in (undone.text or ""), undone.text
    assert _sub(world, customer)["schedule"] is None
    world.sandbox.advance_time(32 * DAY)
    assert _lookup(_sub(world, customer)) == "pro_monthly"


async def test_scheduled_downgrade_takes_effect(world: World) -> None:
    """When the period ends the schedule switches the price; the renewal bills the new one."""
    user, customer = await world.linked_user("pro_monthly")
    preview = await _preview(world, user, "Basic · €9.00 per month · downgrade")
    await _press(world, user, preview, "Confirm")
    end = _sub(world, customer)["items"]["data"][0]["current_period_end"]
    world.sandbox.advance_time(end - world.sandbox.now() + 60)
    await world.settle()
    assert _lookup(_sub(world, customer)) == "basic_monthly"
    paid = sorted(_invoices(world, customer), key=lambda i: i["created"])[-1]
    assert paid["amount_paid"] == 900


async def test_downgrade_now_credits(world: World) -> None:
    """With `[changes] downgrade = "now"` the price changes at once, crediting unused time."""
    billing = world.service.runtime.billing
    billing.catalog = _replace(billing.catalog, downgrade="now")
    user, customer = await world.linked_user("pro_monthly")
    preview = await _preview(world, user, "Basic · €9.00 per month · downgrade")
    assert "unused time on your current plan is credited" in (preview.text or ""), preview.text
    done = await _press(world, user, preview, "Confirm")
    assert "You are now on Basic" in (done.text or ""), done.text
    assert _lookup(_sub(world, customer)) == "basic_monthly"
    assert world.sandbox.store.pending_items.get(_sub(world, customer)["id"])


async def test_monthly_to_yearly_and_back(world: World) -> None:
    """Monthly → yearly is charged now (a new yearly period); yearly → monthly waits."""
    user, customer = await world.linked_user("pro_monthly")
    preview = await _preview(world, user, "Pro · €290.00 per year · upgrade")
    assert "then €290.00 per year from" in (preview.text or ""), preview.text
    today = _euros(preview.text or "", "today")
    await _press(world, user, preview, "Confirm")
    sub = _sub(world, customer)
    assert _lookup(sub) == "pro_yearly"
    latest = world.sandbox.get(sub["latest_invoice"])
    assert latest["amount_paid"] == today
    back = await _preview(world, user, "Pro · €29.00 per month · downgrade")
    assert "No charge today" in (back.text or "")
    await _press(world, user, back, "Confirm")
    assert _sub(world, customer)["schedule"]


async def test_bad_input_changes_nothing(world: World) -> None:
    """Free text at a preview, a tampered plan key, an old preview's button: clear answers."""
    user, customer = await world.linked_user("basic_monthly")
    preview = await _preview(world, user, "Pro · €29.00 per month · upgrade")
    typed = await world.say(user, "yes please")
    assert "Confirm or Back" in (typed.text or "")
    tampered = await world.telegram.press_data(user, preview, "chg:gold:month")
    assert tampered == 200
    answer = await world.telegram.next_message(user)
    assert "no longer available" in (answer.text or ""), answer.text
    forged = await world.telegram.press_data(user, preview, "chgok:pro:month:1000")
    assert forged == 200
    shown = await world.telegram.next_message(user)
    assert "out of date" in (shown.text or ""), shown.text
    assert _lookup(_sub(world, customer)) == "basic_monthly"
    assert not [i for i in _invoices(world, customer)
                if i["billing_reason"] == "subscription_update"]
    # The pending preview survived the free text: the real Confirm still applies.
    done = await _press(world, user, shown, "Confirm")
    assert "You are now on Pro" in (done.text or "")


async def test_another_users_schedule_is_refused(world: World) -> None:
    """Undo naming someone else's schedule says so and changes nothing."""
    owner, owner_customer = await world.linked_user("pro_monthly")
    preview = await _preview(world, owner, "Basic · €9.00 per month · downgrade")
    await _press(world, owner, preview, "Confirm")
    schedule = _sub(world, owner_customer)["schedule"]
    other, _ = await world.linked_user("pro_monthly")
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(other, "/plan")
    assert await world.telegram.press_data(other, plan, f"chgundo:{schedule}") == 200
    answer = await world.telegram.next_message(other)
    assert "someone else's" in (answer.text or ""), answer.text
    assert _sub(world, owner_customer)["schedule"] == schedule


def _replace(catalog: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(catalog, **changes)
