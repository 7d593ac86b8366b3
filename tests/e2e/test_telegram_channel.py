"""The Telegram channel: webhook secret, commands, groups, bad input, errors, polling."""

from __future__ import annotations

from pathlib import Path

from tests.world import World, make_world


async def test_wrong_secret_is_forbidden(world: World) -> None:
    """An update without the registered secret gets 403 and no answer; a body with it that
    is no update is dropped with 200 (Telegram repeats anything else)."""
    user = world.user()
    assert await world.telegram.send(user, "/start", secret="wrong") == 403
    assert await world.telegram.send(user, "/start", secret=None) == 403
    await world.telegram.assert_no_message(user)
    bad = await world.http.post(f"{world.url}/telegram/webhook", content=b"[]", headers={
        "X-Telegram-Bot-Api-Secret-Token": world.telegram.webhook.secret_token})  # type: ignore[union-attr]
    assert bad.status_code == 200
    await world.telegram.assert_no_message(user)


async def test_start_registers_webhook_and_commands(world: World) -> None:
    """At start it sets the webhook with the secret and registers commands per language."""
    hook = world.telegram.webhook
    assert hook is not None and hook.url == f"{world.url}/telegram/webhook"
    assert hook.secret_token
    names = [c["command"] for c in world.telegram.commands()]
    assert names == ["start", "plan", "invoices", "card", "cancel", "settings", "help", "forget"]
    assert world.telegram.commands(language_code="de")


async def test_group_chat_points_to_private_chat(world: World) -> None:
    """In a group, billing commands answer with a link to the private chat and no details."""
    user, _ = await world.linked_user()
    group = world.group()
    reply = await world.say(user, "/plan", chat=group)
    assert "private chat" in (reply.text or "")
    assert reply.keyboard[0][0]["url"] == f"https://t.me/{world.telegram.username}"
    assert "€" not in (reply.text or "")
    card = await world.say(user, f"/card@{world.telegram.username}", chat=group)
    assert "private chat" in (card.text or "")
    await world.telegram.send(user, "/plan@some_other_bot", chat=group)
    await world.telegram.assert_no_message(group)
    help_reply = await world.say(user, "/help", chat=group)
    assert "/plan" in (help_reply.text or "")


async def test_free_text_and_unknown_commands_get_clear_answers(world: World) -> None:
    """Free text where a button was expected, unknown commands and long text change nothing."""
    user = world.user()
    assert "use the buttons" in ((await world.say(user, "hello?")).text or "")
    assert "don't know that command" in ((await world.say(user, "/frobnicate")).text or "")
    assert "use the buttons" in ((await world.say(user, "x" * 4000)).text or "")


async def test_forged_and_stale_buttons_change_nothing(world: World) -> None:
    """Forged or stale button data is answered and changes nothing; every query is answered."""
    user, _ = await world.linked_user()
    hello = await world.say(user, "/start")
    for data in ("buy:gold:month", "pay:in_notmine123", "inv:in_notmine123", "zzz", "x" * 64):
        assert await world.telegram.press_data(user, hello, data) == 200
        reply = await world.telegram.next_message(user)
        assert "Nothing was changed" in (reply.text or "") or "no longer" in (reply.text or "")
    assert not world.telegram.pending_callbacks


async def test_another_users_invoice_button_does_nothing(world: World) -> None:
    """A button naming someone else's invoice says so and pays nothing."""
    _, customer = await world.linked_user(card="pm_card_visa")
    invoice_id = world.sandbox.events("invoice.paid")[-1]["data"]["object"]["id"]
    intruder, _ = await world.linked_user()
    page = await world.say(intruder, "/invoices")
    status = await world.telegram.press_data(intruder, page, f"pay:{invoice_id}")
    assert status == 200
    reply = await world.telegram.next_message(intruder)
    assert "someone else" in (reply.text or "")
    assert customer["id"]


async def test_stripe_outage_is_reported_as_nothing_changed(world: World) -> None:
    """When Stripe fails, the user is told that nothing was changed."""
    user, _ = await world.linked_user()
    world.sandbox.fail_next(status=500, type_="api_error", times=10)
    reply = await world.say(user, "/card")  # asks Stripe nothing: the session is made at the tap
    url = await world.press(user, reply, "Update card")
    assert isinstance(url, str)
    tapped = await world.http.get(url)
    assert tapped.status_code == 503 and "Nothing was changed" in tapped.text


async def test_polling_mode_answers_commands(database_url: str, tmp_path: Path) -> None:
    """Without a webhook URL the bot long-polls getUpdates and answers the same way."""
    async with make_world(database_url, tmp_path, webhook=False) as world:
        assert world.telegram.webhook is None
        user = world.user()
        hello = await world.say(user, "/start")
        assert "Welcome to Acme Cloud" in (hello.text or "")
        plans = await world.press(user, hello, "See plans")
        assert not isinstance(plans, str) and "Basic" in (plans.text or "")
