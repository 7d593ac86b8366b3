"""The outbox of notices: one per dedupe key, due in order, delivery outcomes recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from billing.db import Database
from billing.models import Notice, utcnow
from billing.notices import due, enqueue, mark


async def _enqueue(db: Database, key: str, **extra: object) -> bool:
    async with db.session() as session:
        return await enqueue(session, dedupe_key=key, channel="telegram", user_id="7",
                             chat_id="7", kind="payment_failed", params={"amount": 900},
                             **extra)  # type: ignore[arg-type]


async def _all(db: Database) -> list[Notice]:
    async with db.session() as session:
        return list(await session.scalars(select(Notice).order_by(Notice.id)))


async def test_enqueue_dedupes_on_the_key(db: Database) -> None:
    """It adds a notice once per dedupe key."""
    assert await _enqueue(db, "failed:in_1:1") is True
    assert await _enqueue(db, "failed:in_1:1") is False
    assert await _enqueue(db, "failed:in_1:2") is True
    notices = await _all(db)
    assert [n.dedupe_key for n in notices] == ["failed:in_1:1", "failed:in_1:2"]
    assert (notices[0].status, notices[0].attempts, notices[0].params) == (
        "pending", 0, {"amount": 900})


async def test_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    """It writes the notice in the caller's transaction, so a rollback takes it away."""
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await enqueue(session, dedupe_key="welcome:cs_1", channel="telegram", user_id="7",
                          chat_id="7", kind="welcome", params={})
            raise RuntimeError("the state change failed")
    assert await _all(db) == []
    assert await _enqueue(db, "welcome:cs_1") is True


async def test_racing_writers_add_one_notice(db: Database) -> None:
    """It adds one notice when two transactions enqueue the same key at once."""
    async with db.session() as first:
        assert await enqueue(first, dedupe_key="k", channel="telegram", user_id="7",
                             chat_id="7", kind="welcome", params={})
        second = asyncio.create_task(_enqueue(db, "k"))
        await asyncio.sleep(0.2)
    assert await asyncio.wait_for(second, 10) is False
    assert len(await _all(db)) == 1


async def test_due_returns_pending_notices_oldest_first(db: Database) -> None:
    """It returns pending notices whose time has come, in the order they were enqueued."""
    now = utcnow()
    await _enqueue(db, "a")
    await _enqueue(db, "later", send_after=now + timedelta(hours=1))
    await _enqueue(db, "b", send_after=now - timedelta(hours=1))
    await _enqueue(db, "c")
    async with db.session() as session:
        assert [n.dedupe_key for n in await due(session)] == ["a", "b", "c"]
        assert [n.dedupe_key for n in await due(session, limit=2)] == ["a", "b"]
        sent = (await due(session))[0]
        await mark(session, sent.id, status="sent")
    async with db.session() as session:
        assert [n.dedupe_key for n in await due(session)] == ["b", "c"]


async def test_mark_records_the_outcome(db: Database) -> None:
    """It records sent and failed deliveries with attempts, time and error."""
    await _enqueue(db, "a")
    await _enqueue(db, "b")
    a, b = await _all(db)
    async with db.session() as session:
        await mark(session, a.id, status="sent")
        await mark(session, b.id, status="pending", error="429 retry_after=3")
        await mark(session, b.id, status="failed", error="403 blocked")
        await mark(session, 99999, status="sent")  # a notice deleted meanwhile: nothing to do
    a, b = await _all(db)
    assert (a.status, a.attempts, a.last_error) == ("sent", 1, None)
    assert a.sent_at is not None and a.sent_at.tzinfo is not None
    assert (b.status, b.attempts, b.last_error, b.sent_at) == ("failed", 2, "403 blocked", None)
