"""A chat marked unreachable (it refused a message) is reachable again once it writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.models import Notice, UnreachableChat
from billing.notices import enqueue
from handlers.context import Actor
from tests.fakes.telegram_objects import FakeUser
from tests.world import World, make_world

PARAMS = {"plan": "Pro", "amount": 2900, "currency": "eur", "interval": "month"}


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A running Portier whose outbox sends 100 messages a second."""
    async with make_world(database_url, tmp_path, send_rate=100) as w:
        yield w


async def _notify(world: World, user: FakeUser, key: str) -> None:
    billing = world.service.runtime.billing
    async with billing.db.session() as session:
        await enqueue(session, dedupe_key=key, channel="telegram", user_id=str(user.id),
                      chat_id=str(user.id), kind="plan_changed", params=PARAMS)
    assert world.service.outbox is not None
    world.service.outbox.kick()
    await world.service.outbox.idle()


async def _marked(world: World, user: FakeUser) -> bool:
    async with world.service.runtime.billing.db.session() as session:
        return await session.get(UnreachableChat, ("telegram", str(user.id))) is not None


async def test_writing_again_makes_a_blocked_chat_reachable(world: World) -> None:
    """Blocked: notices stop. The user unblocks and writes: notices arrive again."""
    user, _ = await world.linked_user()
    world.telegram.fail_next("sendMessage", 403, chat_id=user)
    await _notify(world, user, "plan_changed:sub_x:evt_1")
    assert await _marked(world, user)
    await _notify(world, user, "plan_changed:sub_x:evt_2")  # still blocked as far as we know

    reply = await world.say(user, "/plan")
    assert "Pro" in (reply.text or "")
    assert not await _marked(world, user)
    await _notify(world, user, "plan_changed:sub_x:evt_3")
    notice = await world.telegram.next_message(user)
    assert "Pro" in (notice.text or "")
    async with world.service.runtime.billing.db.session() as session:
        statuses = list(await session.scalars(select(Notice.status).order_by(Notice.id)))
    assert statuses == ["unreachable", "unreachable", "sent"]


async def test_a_notice_rendered_for_a_blocked_chat_does_not_unblock_it(world: World) -> None:
    """Only the user's own message counts: rendering a pushed notice changes nothing."""
    user, _ = await world.linked_user()
    world.telegram.fail_next("sendMessage", 403, chat_id=user)
    await _notify(world, user, "plan_changed:sub_y:evt_1")
    portal = world.service.runtime.portal
    actor = Actor(channel="telegram", user_id=str(user.id), chat_id=str(user.id), private=True)
    await portal.notice(actor=actor, kind="plan_changed", params=PARAMS)
    assert await _marked(world, user)
