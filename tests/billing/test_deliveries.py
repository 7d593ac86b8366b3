"""Delivery states: a claim holds, `begin` marks sending, the hold's token guards each step."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from billing.db import Database
from billing.deliveries import HOLD, Outcome, begin, claim, recover, release, settle
from billing.models import Notice, utcnow
from billing.notices import enqueue


async def _enqueue(db: Database, key: str, kind: str = "plan_changed") -> None:
    async with db.session() as session:
        await enqueue(session, dedupe_key=key, channel="telegram", user_id="7", chat_id="7",
                      kind=kind, params={"amount": 900})


async def _all(db: Database) -> list[Notice]:
    async with db.session() as session:
        return list(await session.scalars(select(Notice).order_by(Notice.id)))


async def test_a_claim_holds_notices_as_pending(db: Database) -> None:
    """A claimed notice stays pending, held: no other claim takes it until the hold lapses."""
    await _enqueue(db, "k1")
    async with db.session() as session:
        [held] = await claim(session, limit=10)
    [row] = await _all(db)
    assert (row.status, row.claimed_at) == ("pending", held.claimed_at)
    async with db.session() as session:
        assert await claim(session, limit=10) == []
        [again] = await claim(session, limit=10, now=utcnow() + HOLD + timedelta(seconds=1))
    assert again.id == held.id and again.claimed_at > held.claimed_at


async def test_a_lapsed_hold_sends_nothing(db: Database) -> None:
    """A sender whose hold was taken over can neither begin, settle nor release the notice;
    the new holder can."""
    await _enqueue(db, "k1")
    async with db.session() as session:
        [stale] = await claim(session, limit=10)
        [fresh] = await claim(session, limit=10, now=utcnow() + HOLD + timedelta(seconds=1))
    async with db.session() as session:
        await release(session, [(stale.id, stale.claimed_at)])
        assert (await begin(session, [(stale.id, stale.claimed_at)]))[1] == set()
        await settle(session, [Outcome(stale.id, stale.claimed_at, "failed", "stale")])
    [row] = await _all(db)
    assert (row.status, row.claimed_at) == ("pending", fresh.claimed_at)
    async with db.session() as session:
        left, ours = await begin(session, [(fresh.id, fresh.claimed_at)])
    assert ours == {fresh.id}
    [row] = await _all(db)
    assert (row.status, row.claimed_at) == ("sending", left)
    async with db.session() as session:
        await settle(session, [Outcome(fresh.id, left, "sent")])
    [row] = await _all(db)
    assert (row.status, row.attempts, row.sent_at is not None) == ("sent", 1, True)


async def test_a_retry_is_pending_and_free_at_once(db: Database) -> None:
    """A send answered 429 goes back to pending, unheld, due after its retry_after."""
    await _enqueue(db, "k1")
    async with db.session() as session:
        [held] = await claim(session, limit=10)
        left, _ = await begin(session, [(held.id, held.claimed_at)])
    retry_at = utcnow() + timedelta(seconds=3)
    async with db.session() as session:
        await settle(session, [Outcome(held.id, left, "pending", "429", retry_at=retry_at)])
    [row] = await _all(db)
    assert (row.status, row.claimed_at, row.attempts, row.send_after) == (
        "pending", None, 1, retry_at)
    async with db.session() as session:
        assert await claim(session, limit=10) == []  # not yet due
        [again] = await claim(session, limit=10, now=retry_at)
    assert again.id == held.id


async def test_recovery_sends_payment_problems_again(db: Database) -> None:
    """Notices left `sending` past the cutoff: payment problems go back to pending, others
    become unknown; a request that left after the cutoff is left alone."""
    for key, kind in (("a", "payment_failed"), ("b", "action_required"), ("c", "welcome")):
        await _enqueue(db, key, kind)
    async with db.session() as session:
        held = await claim(session, limit=10)
        await begin(session, [(n.id, n.claimed_at) for n in held])
    async with db.session() as session:
        assert (await recover(session, claimed_before=utcnow() - timedelta(minutes=1))
                ).total == 0
        found = await recover(session, claimed_before=utcnow())
    assert (found.resent, found.unknown) == (2, 1)
    assert [(r.kind, r.status, r.claimed_at is None) for r in await _all(db)] == [
        ("payment_failed", "pending", True), ("action_required", "pending", True),
        ("welcome", "unknown", False)]
