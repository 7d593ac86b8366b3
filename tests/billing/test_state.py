"""Pending conversation state: what a chat user's next message answers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from billing.db import Database
from billing.models import PendingState, utcnow
from billing.state import Pending, clear, expect, take


async def _take(db: Database, user_id: str = "7") -> Pending | None:
    async with db.session() as session:
        return await take(session, channel="telegram", user_id=user_id)


async def test_take_returns_and_removes_the_question(db: Database) -> None:
    """It hands the pending question back once."""
    async with db.session() as session:
        await expect(session, channel="telegram", user_id="7", kind="cancel_comment",
                     data={"reason": "too_expensive"})
    assert await _take(db) == Pending(kind="cancel_comment", data={"reason": "too_expensive"})
    assert await _take(db) is None


async def test_a_new_question_replaces_the_old(db: Database) -> None:
    """It keeps only the latest question of a chat user."""
    async with db.session() as session:
        await expect(session, channel="telegram", user_id="7", kind="seats")
    async with db.session() as session:
        await expect(session, channel="telegram", user_id="7", kind="timezone")
    assert await _take(db) == Pending(kind="timezone", data={})


async def test_an_expired_question_is_dropped(db: Database) -> None:
    """It forgets a question once its time is up."""
    async with db.session() as session:
        await expect(session, channel="telegram", user_id="7", kind="seats",
                     ttl=timedelta(minutes=5))
        await expect(session, channel="telegram", user_id="8", kind="seats")
    async with db.session() as session:
        await session.execute(update(PendingState).where(PendingState.user_id == "7")
                              .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await _take(db, "7") is None
    async with db.session() as session:
        assert await session.get(PendingState, ("telegram", "7")) is None
    assert await _take(db, "8") == Pending(kind="seats", data={})


async def test_clear_forgets_the_question(db: Database) -> None:
    """It clears one chat user's question and leaves the others."""
    async with db.session() as session:
        await expect(session, channel="telegram", user_id="7", kind="seats")
        await expect(session, channel="slack", user_id="7", kind="seats")
    async with db.session() as session:
        await clear(session, channel="telegram", user_id="7")
    assert await _take(db) is None
    async with db.session() as session:
        assert await take(session, channel="slack", user_id="7") is not None
