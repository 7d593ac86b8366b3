"""Hostile input over real HTTP: a clear 4xx (or, from Telegram, 200 and a dropped update),
never a 500 or a dropped connection; nothing stored or sent; the service healthy after."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import LinkToken, StripeEvent
from billing.prefs import get_prefs
from handlers.context import Actor
from tests.world import API_KEY, TELEGRAM_SECRET, WEBHOOK_SECRET, World

DEEP = 50_000
SECRETS = (WEBHOOK_SECRET, TELEGRAM_SECRET, API_KEY)
GROUP_ANONYMOUS_BOT = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                       "username": "GroupAnonymousBot"}


def _sign(body: bytes, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def _event(**fields: Any) -> dict[str, Any]:
    return {"id": "evt_hostile_1", "object": "event", "type": "customer.updated",
            "created": int(time.time()), "livemode": False,
            "data": {"object": {"id": "cus_1", "object": "customer"}}, **fields}


def _nested(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


async def _stored_events(world: World) -> int:
    async with world.service.runtime.billing.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(StripeEvent)) or 0)


async def _link_tokens(world: World) -> int:
    async with world.service.runtime.billing.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(LinkToken)) or 0)


async def _healthy(world: World) -> None:
    response = await world.http.get(f"{world.url}/healthz")
    assert response.status_code == 200, response.text


def _logged_without_secrets(caplog: pytest.LogCaptureFixture, words: str) -> None:
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert words in text, text
    assert not any(secret in text for secret in SECRETS)


async def _post_signed(world: World, body: bytes, at: int | None = None) -> int:
    response = await world.http.post(f"{world.url}/stripe/webhook", content=body,
                                     headers={"Stripe-Signature": _sign(body, at)})
    return response.status_code


async def _post_update(world: World, body: bytes | dict[str, Any]) -> int:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()  # \ud800 escaped
    response = await world.http.post(f"{world.url}/telegram/webhook", content=content, headers={
        "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"})
    return response.status_code


def _sent(world: World) -> list[dict[str, Any]]:
    return [*world.telegram.calls("sendMessage"), *world.telegram.calls("sendPhoto"),
            *world.telegram.calls("editMessageText")]


# -- POST /stripe/webhook --------------------------------------------------------------------


async def test_signed_deeply_nested_json_is_refused(world: World,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A validly signed body nested 50,000 levels deep gets 400, is logged and stored nowhere."""
    caplog.set_level(logging.INFO)
    for body in (_nested(), '{"id": "evt_deep", "type": "x", "data": ' + _nested() + "}"):
        assert await _post_signed(world, body.encode()) == 400
    assert await _stored_events(world) == 0
    _logged_without_secrets(caplog, "Stripe webhook refused")
    await _healthy(world)


@pytest.mark.parametrize("created", ['"yesterday"', str(2**70), "1e400", "-5", "true",
                                     "NaN", "1.5"])
async def test_signed_event_with_a_bad_created_is_refused(world: World, created: str) -> None:
    """A signed event whose `created` is a word, too big, infinite, negative or not an
    integer gets 400 and stores nothing."""
    body = json.dumps(_event(created="@")).replace('"@"', created).encode()
    assert await _post_signed(world, body) == 400
    assert await _stored_events(world) == 0
    await _healthy(world)


async def test_a_bad_event_does_not_spoil_good_ones_arriving_with_it(world: World) -> None:
    """A refused event is never stored, so a good event delivered at the same moment is."""
    good = json.dumps(_event(id="evt_good")).encode()
    bad = json.dumps(_event(id="evt_bad", created=2**70)).encode()
    url = f"{world.url}/stripe/webhook"
    answers = await asyncio.gather(
        world.http.post(url, content=bad, headers={"Stripe-Signature": _sign(bad)}),
        world.http.post(url, content=good, headers={"Stripe-Signature": _sign(good)}))
    assert [a.status_code for a in answers] == [400, 200]
    assert await _stored_events(world) == 1


async def test_signed_odd_values_are_refused(world: World) -> None:
    """Signed events with a lone surrogate, an overlong id or a non-object `data` get 400."""
    cases = [
        json.dumps(_event(id="evt_\ud800")).encode(),
        json.dumps(_event(id="evt_" + "x" * 300)).encode(),
        json.dumps(_event(data=[1, 2])).encode(),
        json.dumps(_event(type="")).encode(),
    ]
    for body in cases:
        assert await _post_signed(world, body) == 400, body[:80]
    assert await _stored_events(world) == 0
    await _healthy(world)


@pytest.mark.parametrize("ahead", [600, 10**20 - int(time.time())])
async def test_future_dated_signatures_are_refused(world: World, ahead: int,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A signature dated more than the tolerance (5 minutes) ahead — ten minutes, or the
    year 3 billion — gets 400 and stores nothing: it would stay replayable until then."""
    caplog.set_level(logging.INFO)
    body = json.dumps(_event()).encode()
    assert await _post_signed(world, body, at=int(time.time()) + ahead) == 400
    assert await _stored_events(world) == 0
    _logged_without_secrets(caplog, "Stripe webhook refused")
    assert await _post_signed(world, body, at=int(time.time()) + 60) == 200  # small skew is ok
    await _healthy(world)


# -- POST /telegram/webhook with the right secret -------------------------------------------


@pytest.mark.parametrize("body", [
    _nested(),
    '{"update_id": 7, "message": ' + _nested() + "}",
    '{"update_id": 7, "extra": ' + _nested() + ', "message": {}}',
    "[]",
    "not json",
])
async def test_malformed_updates_are_dropped_with_200(world: World, body: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A body from Telegram that is not an update is logged and dropped with 200, since
    Telegram repeats a non-2xx answer; nothing is answered in any chat."""
    caplog.set_level(logging.INFO)
    assert await _post_update(world, body.encode()) == 200
    _logged_without_secrets(caplog, "Telegram update dropped")
    assert _sent(world) == []
    await _healthy(world)


async def test_updates_with_a_malformed_message_are_dropped_with_200(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """`message` as a string or a list, or a message without `chat` or `date`, is logged and
    dropped with 200; nothing is sent and the next good update is answered as usual."""
    caplog.set_level(logging.INFO)
    user = world.user()
    whole = world.telegram.make_message_update(user, "/start")
    no_chat = {k: v for k, v in whole["message"].items() if k != "chat"}
    no_date = {k: v for k, v in whole["message"].items() if k != "date"}
    for n, message in enumerate(["/start", ["/start"], no_chat, no_date, 5, None]):
        assert await _post_update(world, {"update_id": 900 + n, "message": message}) == 200
    _logged_without_secrets(caplog, "Telegram update dropped")
    await world.telegram.assert_no_message(user)
    assert _sent(world) == []
    hello = await world.say(user, "/start")
    assert "Welcome to Acme Cloud" in (hello.text or "")
    await _healthy(world)


async def test_an_anonymous_group_admin_gets_one_clear_answer(world: World) -> None:
    """A command from an anonymous group admin (sent as GroupAnonymousBot on behalf of the
    group) gets one answer in the group: it cannot tell who they are, billing works in a
    private chat. No internal error, nothing linked to the group or the anonymous bot."""
    group = world.group()
    update = {"update_id": world.telegram.state.new_update_id(), "message": {
        "message_id": 1, "from": GROUP_ANONYMOUS_BOT, "sender_chat": group.chat_dict(),
        "chat": group.chat_dict(), "date": int(time.time()), "text": "/plan",
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
    assert await _post_update(world, update) == 200
    reply = await world.telegram.next_message(group)
    assert "anonymous" in (reply.text or "") and "private chat" in (reply.text or "")
    assert reply.keyboard[0][0]["url"] == f"https://t.me/{world.telegram.username}"
    await world.telegram.assert_no_message(group, within=0.5)
    assert not [c for c in world.telegram.call_log if c.status != 200]
    await _healthy(world)


async def test_a_lone_surrogate_as_time_zone_is_an_unknown_zone(world: World) -> None:
    """A lone surrogate typed as a time zone gets the usual "unknown time zone" answer and
    changes nothing."""
    user = world.user()
    menu = await world.say(user, "/settings")
    picker = await world.press(user, menu, "Change time zone")
    assert not isinstance(picker, str)
    update = world.telegram.make_message_update(user, "Europe/\ud800")
    assert await _post_update(world, update) == 200
    wrong = await world.telegram.next_message(user)
    assert "don't know the time zone" in (wrong.text or "")
    assert "Nothing was changed" in (wrong.text or "")
    assert "went wrong" not in (wrong.text or "")
    again = await world.say(user, "Tokyo")
    assert "Time zone: Asia/Tokyo" in (again.text or "")


# -- POST /api/link-tokens -------------------------------------------------------------------


async def _link(world: World, content: bytes) -> int:
    response = await world.http.post(f"{world.url}/api/link-tokens", content=content, headers={
        "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    return response.status_code


async def test_a_customer_id_with_a_trailing_newline_is_malformed(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """A customer id followed by a newline is a malformed body (422), not a Stripe outage."""
    caplog.set_level(logging.INFO)
    customer = await world.customer_with_plan()
    before = world.service.runtime.billing.gateway.requests
    assert await _link(world, json.dumps({"customer": customer["id"] + "\n"}).encode()) == 422
    assert world.service.runtime.billing.gateway.requests == before  # Stripe was not asked
    assert await _link_tokens(world) == 0
    _logged_without_secrets(caplog, "link token request refused")
    await _healthy(world)


async def test_a_deeply_nested_link_request_is_malformed(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """A body nested 50,000 levels deep gets 422 and mints nothing."""
    caplog.set_level(logging.INFO)
    for body in (_nested(), '{"customer": ' + _nested() + "}"):
        assert await _link(world, body.encode()) == 422
    assert await _link_tokens(world) == 0
    _logged_without_secrets(caplog, "link token request refused: nested too deeply")
    await _healthy(world)


async def test_an_oversized_link_request_gets_413(world: World) -> None:
    """A 1 MB body gets 413 on a connection that stays usable; nothing is minted."""
    body = json.dumps({"customer": "cus_x", "pad": "x" * 1_000_000}).encode()
    assert await _link(world, body) == 413
    assert await _link_tokens(world) == 0
    await _healthy(world)


async def test_the_settings_flow_itself_echoes_a_lone_surrogate_safely(world: World) -> None:
    """Whatever channel passes a lone surrogate on (the console reads undecodable bytes as
    surrogates), the unknown-zone answer is valid Unicode and nothing is saved."""
    portal = world.service.runtime.portal
    actor = Actor(channel="console", user_id="hostile", chat_id="hostile", private=True)
    await portal.button(actor, "set:tz")
    [reply] = await portal.text(actor, "Europe/\udcff")
    assert "don't know the time zone “Europe/?”" in reply.text
    reply.text.encode("utf-8")
    async with world.service.runtime.billing.db.session() as session:
        prefs = await get_prefs(session, channel="console", user_id="hostile")
    assert prefs is None or prefs.timezone is None
