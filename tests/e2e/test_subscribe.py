"""Start, subscribe through Checkout, and see the plan — as a Telegram user does it."""

from __future__ import annotations

from tests.world import World


async def test_new_user_subscribes_and_sees_plan(world: World) -> None:
    """It greets, lists plans, links a Checkout, links the chat on payment, shows the plan."""
    user = world.user()
    hello = await world.say(user, "/start")
    assert "Welcome to Acme Cloud" in (hello.text or "")
    plans = await world.press(user, hello, "See plans")
    assert not isinstance(plans, str)
    assert "Pro" in (plans.text or "") and "€29.00 per month" in (plans.text or "")
    offer = await world.press(user, plans, "Pro · €29.00 per month")
    assert not isinstance(offer, str)
    url = await world.press(user, offer, "Pay with Stripe")
    assert isinstance(url, str)
    response = await world.follow(url)
    assert response.status_code == 303
    assert response.headers["location"].startswith(world.url + "/return")
    await world.settle()
    welcome = await world.telegram.next_message(user)
    assert "Welcome to Acme Cloud!" in (welcome.text or "")
    assert "Pro" in (welcome.text or "") and "renews on" in (welcome.text or "")
    plan = await world.press(user, welcome, "My plan")
    assert not isinstance(plan, str)
    text = plan.text or ""
    assert "Pro" in text and "Status: Active" in text and "Visa •••• 4242" in text
    assert "Next invoice: €29.00" in text
