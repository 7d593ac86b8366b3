"""Delivery states of notices: claim, settle, release, recover, and unreachable chats.

    pending → sending → sent | failed | unreachable      (a retry goes back to pending)
    sending, left by a sender that died → unknown           (never silently re-sent or lost)

A claim moves due notices to `sending`: in one statement with `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so two senders never claim the same row; on SQLite by an UPDATE guarded by
`status = 'pending'` (SQLite's single writer serialises claims).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Notice, Preference, UnreachableChat, utcnow

_notices = cast(Table, Notice.__table__)


@dataclass(frozen=True)
class Claimed:
    """A notice claimed for sending now."""

    id: int
    channel: str
    user_id: str
    chat_id: str
    kind: str
    params: dict[str, Any]
    attempts: int
    send_after: datetime
    locale: str | None = None  # the recipient's preferences, read with the claim
    timezone: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one send: the new status, and for a retry when to try again."""

    id: int
    status: str  # sent | pending (retry) | failed | unreachable
    error: str | None = None
    retry_at: datetime | None = None


async def claim(session: AsyncSession, *, limit: int, skip_chats: Collection[str] = (),
                now: datetime | None = None) -> list[Claimed]:
    """Move up to `limit` due pending notices to `sending` and return them, oldest first;
    chats in `skip_chats` (busy with an earlier notice) are left for a later claim."""
    now = now or utcnow()
    due = (select(Notice.id)
           .where(Notice.status == "pending", Notice.send_after <= now)
           .order_by(Notice.send_after, Notice.id).limit(limit))
    if skip_chats:
        due = due.where(Notice.chat_id.not_in(list(skip_chats)))
    if session.get_bind().dialect.name == "postgresql":
        chosen: Any = due.with_for_update(skip_locked=True).scalar_subquery()
    else:
        # Read first: SQLite takes its one write lock only when there is something to claim.
        chosen = list(await session.scalars(due))
        if not chosen:
            return []
    rows = await session.execute(
        update(Notice).where(Notice.id.in_(chosen), Notice.status == "pending")
        .values(status="sending", claimed_at=now)
        .returning(Notice.id, Notice.channel, Notice.user_id, Notice.chat_id, Notice.kind,
                   Notice.params, Notice.attempts, Notice.send_after)
        .execution_options(synchronize_session=False))
    found = list(rows)
    if not found:
        return []
    # The recipients' language and time zone in one query, not one per notice.
    prefs = {(channel, user): (locale, zone) for channel, user, locale, zone in (
        await session.execute(select(Preference.channel, Preference.user_id, Preference.locale,
                                     Preference.timezone)
                              .where(Preference.user_id.in_({r.user_id for r in found}))))}
    claimed = []
    for row in found:
        locale, zone = prefs.get((row.channel, row.user_id), (None, None))
        claimed.append(Claimed(id=row.id, channel=row.channel, user_id=row.user_id,
                               chat_id=row.chat_id, kind=row.kind, params=row.params,
                               attempts=row.attempts, send_after=row.send_after,
                               locale=locale, timezone=zone))
    return sorted(claimed, key=lambda c: (c.send_after, c.id))


async def settle(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Record the outcomes of sends; a notice no longer `sending` (recovered meanwhile as
    unknown, or forgotten) is left as it is."""
    if not outcomes:
        return
    now = utcnow()
    statement = (
        update(_notices)
        .where(_notices.c.id == bindparam("nid"), _notices.c.status == "sending")
        .values(status=bindparam("new_status"), attempts=_notices.c.attempts + 1,
                last_error=bindparam("error"), sent_at=bindparam("sent"),
                send_after=func.coalesce(bindparam("retry", type_=_notices.c.send_after.type),
                                         _notices.c.send_after)))
    connection = await session.connection()
    await connection.execute(statement, [
        {"nid": o.id, "new_status": o.status, "error": o.error,
         "sent": now if o.status == "sent" else None, "retry": o.retry_at}
        for o in outcomes])


async def release(session: AsyncSession, ids: Collection[int]) -> None:
    """Put claimed notices that were never handed to the channel back to pending."""
    if ids:
        await session.execute(
            update(Notice).where(Notice.id.in_(list(ids)), Notice.status == "sending")
            .values(status="pending", claimed_at=None)
            .execution_options(synchronize_session=False))


async def recover(session: AsyncSession, *, claimed_before: datetime) -> int:
    """Mark notices left in `sending` by a dead sender as `unknown`; return how many."""
    left = await session.scalar(select(Notice.id).where(
        Notice.status == "sending", Notice.claimed_at <= claimed_before).limit(1))
    if left is None:
        return 0  # no write (and no write lock on SQLite) when there is nothing to do
    result = await session.execute(
        update(Notice).where(Notice.status == "sending", Notice.claimed_at <= claimed_before)
        .values(status="unknown", last_error="the sender stopped while sending: it may or "
                "may not have arrived")
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_unreachable(session: AsyncSession, *, channel: str, chat_id: str,
                           reason: str) -> int:
    """Remember that a chat refused our messages and stop its pending notices; return how
    many pending notices were stopped."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(UnreachableChat).values(
        channel=channel, chat_id=chat_id, reason=reason[:500], marked_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["channel", "chat_id"]))
    result = await session.execute(
        update(Notice).where(Notice.channel == channel, Notice.chat_id == chat_id,
                             Notice.status == "pending")
        .values(status="unreachable", last_error=reason[:500])
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_reachable(session: AsyncSession, *, channel: str, chat_id: str) -> None:
    """Forget that a chat was unreachable (the user talks to the bot again)."""
    row = await session.get(UnreachableChat, (channel, chat_id))
    if row is not None:
        await session.delete(row)


async def counts(session: AsyncSession) -> dict[str, int]:
    """Return how many notices are in each state."""
    rows = await session.execute(select(Notice.status, func.count()).group_by(Notice.status))
    return {status: int(n) for status, n in rows}
