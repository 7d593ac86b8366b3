"""Cancel with a reason and a save offer, resume, and end a pause early — in Telegram."""

from __future__ import annotations

import dataclasses
from typing import Any

from billing.subscriptions import live_overview
from tests.e2e.test_change import _lookup, _press, _sub
from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.world import World

DAY = 86400


async def _reason(world: World, user: FakeUser, label: str) -> BotMessage:
    ask = await world.say(user, "/cancel")
    assert "What is the main reason?" in (ask.text or ""), ask.text
    return await _press(world, user, ask, label)


async def test_declined_offer_cancels_with_feedback_and_comment(world: World) -> None:
    """Something else → comment → no offer → confirm: Stripe records feedback and comment."""
    user, customer = await world.linked_user("pro_monthly")
    ask = await _reason(world, user, "Something else")
    assert "tell us" in (ask.text or "")
    confirm = await world.say(user, "Moving to another country")
    assert "will end on" in (confirm.text or ""), confirm.text
    done = await _press(world, user, confirm, "Cancel subscription")
    assert "Active until" in (done.text or ""), done.text
    sub = _sub(world, customer)
    assert sub["cancel_at_period_end"] is True
    assert sub["cancellation_details"]["feedback"] == "other"
    assert sub["cancellation_details"]["comment"] == "Moving to another country"
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    assert "Ends on" in (plan.text or "")
    labels = [label for row in plan.buttons() for label in row]
    assert "Resume subscription" in labels and "Cancel subscription" not in labels


async def test_resume_undoes_the_cancel(world: World) -> None:
    """Resume from My plan undoes a pending cancel."""
    user, customer = await world.linked_user("pro_monthly")
    ask = await _reason(world, user, "Features are missing")
    confirm = await _press(world, user, ask, "Skip")
    done = await _press(world, user, confirm, "Cancel subscription")
    assert _sub(world, customer)["cancellation_details"]["feedback"] == "missing_features"
    resumed = await _press(world, user, done, "Resume subscription")
    assert "continues" in (resumed.text or ""), resumed.text
    assert _sub(world, customer)["cancel_at_period_end"] is False
    await world.settle()
    assert "Renews on" in ((await world.say(user, "/plan")).text or "")
    # A second cancel is a new intent: it applies again.
    again = await _reason(world, user, "Quality was too low")
    done = await _press(world, user, again, "Cancel subscription")
    sub = _sub(world, customer)
    assert sub["cancel_at_period_end"] is True
    assert sub["cancellation_details"]["feedback"] == "low_quality"


async def test_coupon_offer_accepted(world: World) -> None:
    """Too expensive → the save coupon; accepting puts a discount on the subscription."""
    user, customer = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "It's too expensive")
    assert "25% off for 3 months" in (offer.text or ""), offer.text
    kept = await _press(world, user, offer, "Stay with the discount")
    assert "discount is applied" in (kept.text or "")
    sub = _sub(world, customer)
    assert sub["cancel_at_period_end"] is False
    assert [world.sandbox.get(d)["source"]["coupon"] for d in sub["discounts"]] == ["STAY25"]
    overview = await live_overview(world.service.runtime.billing, customer_id=customer["id"])
    assert overview is not None and overview.discount_name == "25% off for 3 months"
    plan = await world.say(user, "/plan")  # read from the local mirror
    assert "Discount applied: 25% off for 3 months" in (plan.text or ""), plan.text
    # At most one offer per subscription: the next cancel goes straight to the confirm.
    again = await _reason(world, user, "It's too expensive")
    assert "will end on" in (again.text or ""), again.text


async def test_pause_offer_accepted_and_resumed_early(world: World) -> None:
    """Unused → a pause; accepting pauses collection until a day; Resume now ends it."""
    user, customer = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "I don't use it enough")
    paused = await _press(world, user, offer, "Pause for 30 days")
    assert "Paused until" in (paused.text or ""), paused.text
    pause = _sub(world, customer)["pause_collection"]
    assert pause["behavior"] == "void"
    assert 29 * DAY < pause["resumes_at"] - world.sandbox.now() <= 30 * DAY + 60
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(user, "/plan")
    assert "Paused until" in (plan.text or "")
    resumed = await _press(world, user, plan, "Resume now")
    assert "active again" in (resumed.text or "")
    assert _sub(world, customer)["pause_collection"] is None


async def test_cheaper_plan_offer_goes_to_the_preview(world: World) -> None:
    """Without a save coupon, too expensive offers a cheaper plan through the change preview."""
    billing = world.service.runtime.billing
    billing.catalog = dataclasses.replace(billing.catalog, save_coupon=None)
    user, customer = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "It's too expensive")
    assert "Would Basic at €9.00 per month suit you better?" in (offer.text or ""), offer.text
    preview = await _press(world, user, offer, "See Basic")
    assert "No charge today" in (preview.text or "")
    await _press(world, user, preview, "Confirm")
    sub = _sub(world, customer)
    assert sub["schedule"] and not sub["cancel_at_period_end"]


async def test_declining_the_offer_then_cancel(world: World) -> None:
    """No thanks → confirm → cancel at period end; the offer is not made twice."""
    user, customer = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "It's too expensive")
    confirm = await _press(world, user, offer, "No thanks, cancel")
    done = await _press(world, user, confirm, "Cancel subscription")
    assert "Active until" in (done.text or "")
    sub = _sub(world, customer)
    assert sub["cancel_at_period_end"] and sub["discounts"] == []
    assert sub["cancellation_details"]["feedback"] == "too_expensive"
    assert sub["metadata"]["portier_offer"] == "coupon"


async def test_bad_input_mid_cancel_changes_nothing(world: World) -> None:
    """Free text at a button step, a forged offer, another user's resume: nothing changes."""
    user, customer = await world.linked_user("pro_monthly")
    ask = await world.say(user, "/cancel")
    typed = await world.say(user, "just cancel it")
    assert "buttons" in (typed.text or ""), typed.text
    forged = await world.telegram.press_data(user, ask, "cxl:coupon")
    assert forged == 200
    answer = await world.telegram.next_message(user)
    assert "offer is not available" in (answer.text or ""), answer.text
    assert await world.telegram.press_data(user, ask, "cxl:pause:365") == 200
    assert "not available" in ((await world.telegram.next_message(user)).text or "")
    assert await world.telegram.press_data(user, ask, "cxl:why:hate_it") == 200
    assert "no longer valid" in ((await world.telegram.next_message(user)).text or "")
    sub = _sub(world, customer)
    assert not sub["cancel_at_period_end"] and not sub["discounts"]
    assert sub["pause_collection"] is None

    # Someone else's subscription named in a Resume button.
    ask2 = await _reason(world, user, "Customer service was lacking")
    await _press(world, user, ask2, "Cancel subscription")
    other, _ = await world.linked_user("basic_monthly")
    await world.settle()  # /plan reads the mirror, which webhooks keep current
    plan = await world.say(other, "/plan")
    assert await world.telegram.press_data(other, plan, f"resume:{sub['id']}") == 200
    answer = await world.telegram.next_message(other)
    assert "someone else's" in (answer.text or ""), answer.text
    assert _sub(world, customer)["cancel_at_period_end"] is True
    assert _lookup(_sub(world, customer)) == "pro_monthly"


async def test_cancel_when_already_ending_offers_resume(world: World) -> None:
    """/cancel on a subscription that already ends says when and offers Resume."""
    user, customer = await world.linked_user("pro_monthly")
    ask = await _reason(world, user, "I switched to another service")
    done = await _press(world, user, ask, "Cancel subscription")
    assert "Active until" in (done.text or "")
    again = await world.say(user, "/cancel")
    assert "already ends on" in (again.text or "")
    sub: dict[str, Any] = _sub(world, customer)
    assert sub["cancellation_details"]["feedback"] == "switched_service"
