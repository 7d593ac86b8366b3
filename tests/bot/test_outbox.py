"""The outbox sender against the fake Telegram: pacing, 429, 403, 5xx, and kills mid-run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from billing.deliveries import settle
from billing.models import Notice, UnreachableChat, utcnow
from billing.notices import add_many, enqueue
from bot.channels import Pacing
from bot.outbox import Issue, Outbox
from bot.pacing import Pace
from bot.telegram import TelegramChannel
from handlers.replies import Reply
from tests.fakes.telegram_objects import FakeUser
from tests.world import World, make_world

PARAMS = {"plan": "Pro", "amount": 2900, "currency": "eur", "interval": "month"}
RETRY_AFTER_WARNING = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning")  # PTB 22 warns building RetryAfter


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A running Portier whose outbox sends 100 messages a second."""
    async with make_world(database_url, tmp_path, send_rate=100) as w:
        yield w


def _outbox(world: World) -> Outbox:
    assert world.service.outbox is not None
    return world.service.outbox


async def _queue(world: World, chat: FakeUser, key: str) -> None:
    billing = world.service.runtime.billing
    async with billing.db.session() as session:
        await enqueue(session, dedupe_key=key, channel="telegram", user_id=str(chat.id),
                      chat_id=str(chat.id), kind="plan_changed", params=PARAMS)
    _outbox(world).kick()


async def _rows(world: World) -> list[Notice]:
    async with world.service.runtime.billing.db.session() as session:
        return list(await session.scalars(select(Notice).order_by(Notice.id)))


async def _wait_for(world: World, check: Callable[[list[Notice]], bool],
                    timeout: float = 5.0) -> None:
    """Wait (with a timeout) until the notices in the database pass the check."""
    async with asyncio.timeout(timeout):  # a database has no event to wait for: poll it
        while not check(await _rows(world)):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _sends(world: World, chat: FakeUser) -> list[int]:
    return [c.status for c in world.telegram.call_log
            if c.method == "sendMessage" and str(c.params.get("chat_id")) == str(chat.id)]


async def test_sends_a_due_notice_once(world: World) -> None:
    """A due notice reaches its chat once and is recorded as sent."""
    user = world.user()
    await _queue(world, user, "plan_changed:sub_1:evt_1")
    message = await world.telegram.next_message(user)
    assert (message.text or "").startswith("Plan changed")
    await _outbox(world).idle()
    [row] = await _rows(world)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    await world.telegram.assert_no_message(user, within=0.5)


async def test_many_chats_get_their_notices_at_the_send_rate(world: World) -> None:
    """Notices to many chats leave at the send rate: each chat once, none lost, no faster
    than the rate allows (beyond the pacer's brief catch-up) and not far slower."""
    users = [world.user() for _ in range(150)]
    async with world.service.runtime.billing.db.session() as session:
        await add_many(session, [
            {"dedupe_key": f"plan_changed:sub_{u.id}:evt_1", "channel": "telegram",
             "user_id": str(u.id), "chat_id": str(u.id), "kind": "plan_changed",
             "params": PARAMS} for u in users])
    outbox = _outbox(world)
    outbox.kick()
    await outbox.idle(timeout=15)
    sends = [c for c in world.telegram.call_log if c.method == "sendMessage"]
    assert sorted(str(c.params.get("chat_id")) for c in sends) == sorted(
        str(u.id) for u in users)
    assert {c.status for c in sends} == {200}
    span, ideal = sends[-1].at - sends[0].at, (len(users) - 1) / 100  # the world's rate
    assert ideal - 0.25 <= span <= 1.5 * ideal + 0.5, (span, ideal)
    assert {r.status for r in await _rows(world)} == {"sent"}


async def test_idle_waits_for_a_notice_that_fell_due_to_be_recorded(world: World) -> None:
    """Idle while nothing is due; a notice that falls due later ends that: idle() returns
    again only once its outcome is in the database, not while it is still `sending`."""
    await world.service.worker.stop()  # its periodic kicks would hide a stale idle
    outbox, user = _outbox(world), world.user()
    async with world.service.runtime.billing.db.session() as session:
        await enqueue(session, dedupe_key="plan_changed:sub_1:evt_1", channel="telegram",
                      user_id=str(user.id), chat_id=str(user.id), kind="plan_changed",
                      params=PARAMS, send_after=utcnow() + timedelta(seconds=1.5))
    outbox.kick()
    await outbox.idle()  # nothing due yet
    await world.telegram.next_message(user, timeout=6)
    await outbox.idle()
    [row] = await _rows(world)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_one_message_a_second_per_chat(world: World) -> None:
    """Three notices for one chat go out at least a second apart."""
    _outbox(world).pace.pacing["telegram"] = TelegramChannel.pacing  # the world's is faster
    user = world.user()
    for n in range(3):
        await _queue(world, user, f"plan_changed:sub_1:evt_{n}")
    times = [(await world.telegram.next_message(user, timeout=6)).at for _ in range(3)]
    assert times[1] - times[0] >= 0.95 and times[2] - times[1] >= 0.95


@RETRY_AFTER_WARNING
async def test_429_is_retried_after_retry_after(world: World) -> None:
    """Telegram's 429 is honoured: the message goes again after retry_after, once."""
    user = world.user()
    world.telegram.fail_next("sendMessage", 429, retry_after=1, chat_id=user)
    await _queue(world, user, "plan_changed:sub_1:evt_1")
    await world.telegram.next_message(user, timeout=6)
    first, second = [c for c in world.telegram.call_log if c.method == "sendMessage"]
    assert (first.status, second.status) == (429, 200) and second.at - first.at >= 1


@RETRY_AFTER_WARNING
async def test_each_429_puts_the_notice_back_as_pending(world: World) -> None:
    """A notice's 429 is not retried inside the rate limiter: the notice goes back to
    pending at once, due after retry_after, each time, and is then sent once."""
    user = world.user()
    world.telegram.fail_next("sendMessage", 429, retry_after=1, chat_id=user, times=3)
    await _queue(world, user, "plan_changed:sub_1:evt_1")
    await world.telegram.wait_for_calls("sendMessage", 1)
    await _wait_for(world, lambda rows: rows[0].status == "pending" and rows[0].attempts == 1)
    [row] = await _rows(world)
    assert "429 retry_after=1" in (row.last_error or "")
    assert row.send_after > utcnow() and row.claimed_at is None
    await world.telegram.next_message(user, timeout=10)
    assert await _sends(world, user) == [429, 429, 429, 200]
    await _outbox(world).idle()
    [row] = await _rows(world)
    assert (row.status, row.attempts) == ("sent", 4)


@RETRY_AFTER_WARNING
async def test_a_notice_waiting_in_the_rate_limiter_is_pending(world: World) -> None:
    """While PTB's limiter holds every request back (a reply's 429, retried after its
    retry_after), a notice handed to the channel waits there as pending, not `sending`; it
    becomes `sending` only as its request leaves, and arrives once."""
    asker, other = world.user(), world.user()
    world.telegram.fail_next("sendMessage", 429, retry_after=2, chat_id=asker)
    assert await world.telegram.send(asker, "/help") == 200
    await world.telegram.wait_for_calls("sendMessage", 1)  # the 429: the limiter sleeps
    outbox = _outbox(world)
    await _queue(world, other, "plan_changed:sub_1:evt_1")
    async with asyncio.timeout(5):
        while not outbox._held:  # noqa: ASYNC110 - handed to the channel, in the limiter
            await asyncio.sleep(0.01)
    [row] = await _rows(world)
    assert row.status == "pending" and row.claimed_at is not None
    await world.telegram.next_message(other, timeout=6)
    await world.telegram.next_message(asker, timeout=6)
    assert await _sends(world, other) == [200]
    await outbox.idle()
    [row] = await _rows(world)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_403_marks_the_chat_unreachable(world: World) -> None:
    """A chat that blocked the bot is marked unreachable and gets nothing more."""
    blocked, other = world.user(), world.user()
    world.telegram.fail_next("sendMessage", 403, chat_id=blocked)
    await _queue(world, blocked, "plan_changed:sub_1:evt_1")
    await _queue(world, other, "plan_changed:sub_2:evt_1")
    await world.telegram.next_message(other)
    await _outbox(world).idle()
    await _queue(world, blocked, "plan_changed:sub_1:evt_2")
    await _outbox(world).idle()
    rows = await _rows(world)
    assert [r.status for r in rows] == ["unreachable", "sent", "unreachable"]
    assert await _sends(world, blocked) == [403]
    async with world.service.runtime.billing.db.session() as session:
        assert await session.get(UnreachableChat, ("telegram", str(blocked.id))) is not None


async def test_server_errors_are_retried_with_backoff(world: World) -> None:
    """A 500 is retried after a backoff; the message arrives once."""
    user = world.user()
    world.telegram.fail_next("sendMessage", 500, chat_id=user)
    await _queue(world, user, "plan_changed:sub_1:evt_1")
    await world.telegram.next_message(user, timeout=10)
    assert await _sends(world, user) == [500, 200]
    await _outbox(world).idle()
    [row] = await _rows(world)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_kill_between_claim_and_send_loses_and_repeats_nothing(world: World) -> None:
    """Claimed notices not yet handed to Telegram go back to pending and are sent once."""
    outbox = _outbox(world)
    users = [world.user() for _ in range(3)]
    gate, reached = asyncio.Event(), asyncio.Event()
    render = outbox.render

    async def slow_render(notice: Any) -> Reply:
        reached.set()
        await gate.wait()
        return await render(notice)

    outbox.render = slow_render  # type: ignore[method-assign]
    for n, user in enumerate(users):
        await _queue(world, user, f"plan_changed:sub_{n}:evt_1")
    await asyncio.wait_for(reached.wait(), 5)
    rows = await _rows(world)  # claimed, not yet sent: held, still pending
    assert {r.status for r in rows} == {"pending"} and rows[0].claimed_at is not None
    assert outbox._task is not None
    outbox._task.cancel()  # the kill
    await asyncio.gather(outbox._task, return_exceptions=True)
    assert {(r.status, r.claimed_at) for r in await _rows(world)} == {("pending", None)}
    outbox.render = render  # type: ignore[method-assign]
    await outbox.stop()
    await outbox.start()
    for user in users:
        await world.telegram.next_message(user)
    await outbox.idle()
    assert [r.status for r in await _rows(world)] == ["sent"] * 3
    for user in users:
        assert await _sends(world, user) == [200]


async def test_a_kill_after_handing_over_leaves_the_outcome_unknown(world: World) -> None:
    """A notice whose request left but whose answer never came is marked unknown, not
    resent."""
    outbox = _outbox(world)
    user = world.user()
    handed = asyncio.Event()
    send = outbox.senders["telegram"]

    async def hang(chat_id: str, reply: Reply, *, issue: Issue) -> None:
        await issue()
        handed.set()
        await asyncio.Event().wait()

    outbox.senders["telegram"] = hang
    await _queue(world, user, "plan_changed:sub_1:evt_1")
    await asyncio.wait_for(handed.wait(), 5)
    assert outbox._task is not None
    outbox._task.cancel()
    await asyncio.gather(outbox._task, return_exceptions=True)
    outbox.senders["telegram"] = send
    await outbox.stop()
    await outbox.start(recover_all=True)
    await outbox.idle()
    [row] = await _rows(world)
    assert row.status == "unknown" and await _sends(world, user) == []


async def test_a_stop_during_a_flush_records_its_outcomes(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A graceful stop arriving while the outcomes of sends are being written lets that
    write finish: the notice Telegram took is `sent`, not left `sending` in doubt."""
    flushing = asyncio.Event()

    async def slow_settle(session: Any, outcomes: Any) -> None:
        if outcomes:
            flushing.set()
            await asyncio.sleep(0.3)  # the database is slow to record them
        await settle(session, outcomes)

    monkeypatch.setattr("bot.outbox.settle", slow_settle)
    user = world.user()
    await _queue(world, user, "plan_changed:sub_1:evt_stop")
    await world.telegram.next_message(user)
    await asyncio.wait_for(flushing.wait(), 5)
    await _outbox(world).stop()
    [row] = await _rows(world)
    assert row.status == "sent"


async def test_recovers_sends_abandoned_by_a_dead_sender(world: World) -> None:
    """A notice left `sending` past the lease is marked unknown, a payment problem is sent
    again (pending); a send begun within the lease is left alone."""
    await _outbox(world).stop()
    billing = world.service.runtime.billing
    async with billing.db.session() as session:
        for n, (kind, age) in enumerate((("plan_changed", timedelta(hours=1)),
                                         ("payment_failed", timedelta(hours=1)),
                                         ("action_required", timedelta(hours=1)),
                                         ("plan_changed", timedelta(seconds=1)))):
            session.add(Notice(dedupe_key=f"k{n}", channel="telegram", user_id="1",
                               chat_id="1", kind=kind, params=PARAMS,
                               status="sending", claimed_at=utcnow() - age))
    assert await _outbox(world).recover() == 3
    assert [r.status for r in await _rows(world)] == ["unknown", "pending", "pending",
                                                      "sending"]
    assert _outbox(world).outcomes["unknown"] == 1


def test_pace_spaces_messages_globally() -> None:
    """Global slots are 1/rate apart on a fixed schedule, late sends catching up briefly."""
    pace = Pace(100)
    assert pace.slot(10.0) == 0.0
    assert pace.slot(10.0) == pytest.approx(0.01)
    assert pace.slot(10.0) == pytest.approx(0.02)
    assert pace.slot(10.5) == 0.0  # idle for a while: no burst credit beyond catch_up
    pace.pause(20.0)
    assert pace.slot(11.0) == pytest.approx(9.0)


def test_pace_limits_chats_and_groups() -> None:
    """Each channel's limits: Telegram one message a second per chat and 20 a minute per
    group; a Slack channel one a second, without Telegram's group limit."""
    pace = Pace(1000)
    pace.pacing["telegram"] = TelegramChannel.pacing
    pace.sent("telegram", "7", 0.0)
    assert not pace.ready("telegram", "7", 0.5) and pace.ready("telegram", "7", 1.0)
    assert pace.busy(0.5) == {"7"}
    assert pace.ready("console", "7", 0.5)  # another channel's chat of the same id
    for n in range(20):
        assert pace.ready("telegram", "-100", n * 1.0)
        pace.sent("telegram", "-100", n * 1.0)
    assert not pace.ready("telegram", "-100", 30.0) and "-100" in pace.busy(30.0)
    assert pace.ready("telegram", "-100", 60.0)
    pace.pacing["slack"] = Pacing(per_chat=1.0)  # no group limit of Telegram's kind
    for n in range(30):
        assert pace.ready("slack", "C1", n * 1.0)
        pace.sent("slack", "C1", n * 1.0)
