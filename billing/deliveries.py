"""Delivery states of notices: claim, begin, settle, release, recover, and unreachable chats.

    pending ─claim→ pending, held (claimed_at) ─begin→ sending → sent | failed | unreachable
    a 429, 5xx or network error after begin → pending again, due after its retry_after
    sending, left by a sender that died → unknown, or pending for a payment problem

A notice is `sending` only while its request is in the air: a claim only holds it (status
still `pending`, `claimed_at` set, for `HOLD` at most), and the sender moves it to
`sending` in `begin`, right before the request leaves, after every wait for its turn. So a
sender killed while notices wait for their turn (pacing, a 429's retry_after, the rate
limiter) leaves them pending: the next claim after the hold takes them. Only the few in the
air can be left in doubt; a payment-failed or action-required notice in doubt is sent again
(a duplicate costs less than a missed dunning message), any other becomes `unknown`.

`claimed_at` is also the hold's token: `begin`, `settle` and `release` act only on a row
still held under the token its claim set, so a sender whose hold was taken over (it stalled
past `HOLD`, another replica claimed the row) never sends it too. `begin` sets it to the
moment the request left: a notice `sending` for longer than any request can take was left
by a sender that died.

A claim takes due notices in one statement with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
two senders never claim the same row; on SQLite by an UPDATE guarded by the same conditions
(SQLite's single writer serialises claims).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Notice, Preference, UnreachableChat, utcnow
from billing.notices import URGENT

_notices = cast(Table, Notice.__table__)
# How long a claim holds a notice for its sender: far beyond the half second a claimed notice
# waits for its turn, so that only a sender that stopped (or stalled) loses it.
HOLD = timedelta(seconds=30)
# Notices sent in bulk (billing.broadcasts): a claim takes them after every other due one.
BULK = frozenset({"broadcast"})
IN_DOUBT = "the sender stopped while sending: it may or may not have arrived"


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
    claimed_at: datetime  # the hold's token
    locale: str | None = None  # the recipient's preferences, read with the claim
    timezone: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one send: the new status, and for a retry when to try again."""

    id: int
    claimed_at: datetime  # its token: when it was claimed, or when its request left
    status: str  # sent | pending (retry) | failed | unreachable
    error: str | None = None
    retry_at: datetime | None = None


def _held(token: Any) -> Any:
    return (_notices.c.status == "pending") & (_notices.c.claimed_at == token)


async def claim(session: AsyncSession, *, limit: int, skip_chats: Collection[str] = (),
                now: datetime | None = None, hold: timedelta = HOLD) -> list[Claimed]:
    """Hold up to `limit` due pending notices for this sender and return them, oldest
    first; chats in `skip_chats` (busy with an earlier notice) are left for a later claim.
    The notices stay `pending`: `begin` moves each to `sending` when its request leaves."""
    now = now or utcnow()
    free = or_(Notice.claimed_at.is_(None), Notice.claimed_at <= now - hold)
    # Every other due notice (payment problems above all) before broadcast messages.
    bulk = case((Notice.kind.in_(BULK), 1), else_=0)
    due = (select(Notice.id)
           .where(Notice.status == "pending", Notice.send_after <= now, free)
           .order_by(bulk, Notice.send_after, Notice.id).limit(limit))
    if skip_chats:
        due = due.where(Notice.chat_id.not_in(list(skip_chats)))
    if session.get_bind().dialect.name == "postgresql":
        # A CTE, not `IN (subquery)`: PostgreSQL may run a locking subquery once per row it
        # updates, and the claim then takes far more than `limit` (a CTE that locks rows is
        # run once).
        locked = due.with_for_update(skip_locked=True).cte("chosen")
        chosen: Any = select(locked.c.id).scalar_subquery()
    else:
        # Read first: SQLite takes its one write lock only when there is something to claim.
        chosen = list(await session.scalars(due))
        if not chosen:
            return []
    rows = await session.execute(
        update(Notice).where(Notice.id.in_(chosen), Notice.status == "pending", free)
        .values(claimed_at=now)
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
                               claimed_at=now, locale=locale, timezone=zone))
    return sorted(claimed, key=lambda c: (c.kind in BULK, c.send_after, c.id))


async def begin(session: AsyncSession, held: Collection[tuple[int, datetime]], *,
                now: datetime | None = None) -> tuple[datetime, set[int]]:
    """Move held notices to `sending` (their requests leave now); return the time, which is
    their token from here on (and when the request left, for `recover`), and the ids still
    held under their tokens: the only ones that may be sent."""
    now = now or utcnow()
    tokens: dict[datetime, list[int]] = {}
    for notice_id, token in held:
        tokens.setdefault(token, []).append(notice_id)
    ours: set[int] = set()
    for token, ids in tokens.items():  # one claim, one token: usually a single statement
        rows = await session.execute(
            update(_notices).where(_notices.c.id.in_(ids), _held(token))
            .values(status="sending", claimed_at=now).returning(_notices.c.id))
        ours.update(rows.scalars())
    return now, ours


async def settle(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Record the outcomes of sends (and of notices that failed before their send began); a
    notice no longer under the same hold (recovered meanwhile, forgotten, claimed again) is
    left as it is."""
    if not outcomes:
        return
    now = utcnow()
    token = bindparam("token", type_=_notices.c.claimed_at.type)
    statement = (
        update(_notices)
        .where(_notices.c.id == bindparam("nid"),
               # not IN (…): executemany takes no expanding parameters
               (_notices.c.status == "sending") | (_notices.c.status == "pending"),
               _notices.c.claimed_at == token)
        .values(status=bindparam("new_status"), attempts=_notices.c.attempts + 1,
                last_error=bindparam("error"), sent_at=bindparam("sent"),
                claimed_at=bindparam("held", type_=_notices.c.claimed_at.type),
                send_after=func.coalesce(bindparam("retry", type_=_notices.c.send_after.type),
                                         _notices.c.send_after)))
    connection = await session.connection()
    await connection.execute(statement, [
        {"nid": o.id, "token": o.claimed_at, "new_status": o.status, "error": o.error,
         "sent": now if o.status == "sent" else None, "retry": o.retry_at,
         "held": None if o.status == "pending" else o.claimed_at}  # a retry is free again
        for o in outcomes])


async def release(session: AsyncSession, held: Collection[tuple[int, datetime]]) -> None:
    """Give held notices that were never sent back, for the next claim to take at once."""
    if not held:
        return
    connection = await session.connection()
    await connection.execute(
        update(_notices).where(_notices.c.id == bindparam("nid"),
                               _held(bindparam("token", type_=_notices.c.claimed_at.type)))
        .values(claimed_at=None),
        [{"nid": notice_id, "token": token} for notice_id, token in held])


async def release_all(session: AsyncSession) -> None:
    """Free every hold (a new sender starts: whoever held them stopped or is stopping; one
    still running finds its hold gone and does not send)."""
    await session.execute(
        update(Notice).where(Notice.status == "pending", Notice.claimed_at.is_not(None))
        .values(claimed_at=None).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Recovered:
    """Notices a dead sender left in the air: how many go again, how many are unknown."""

    resent: int = 0
    unknown: int = 0

    @property
    def total(self) -> int:
        """Return how many notices were left in the air."""
        return self.resent + self.unknown


async def recover(session: AsyncSession, *, claimed_before: datetime) -> Recovered:
    """Settle notices left `sending` by a dead sender: a payment problem goes back to pending
    (sent again), anything else becomes `unknown`."""
    left = (Notice.status == "sending", Notice.claimed_at <= claimed_before)
    if await session.scalar(select(Notice.id).where(*left).limit(1)) is None:
        return Recovered()  # no write (and no write lock on SQLite) when there is nothing
    again = await session.execute(
        update(Notice).where(*left, Notice.kind.in_(URGENT))
        .values(status="pending", claimed_at=None, attempts=Notice.attempts + 1,
                last_error=IN_DOUBT + "; sent again")
        .execution_options(synchronize_session=False))
    doubt = await session.execute(
        update(Notice).where(*left)
        .values(status="unknown", last_error=IN_DOUBT)
        .execution_options(synchronize_session=False))
    return Recovered(resent=int(getattr(again, "rowcount", 0) or 0),
                     unknown=int(getattr(doubt, "rowcount", 0) or 0))


async def in_doubt(session: AsyncSession, *, limit: int = 1000) -> list[Notice]:
    """Return the notices whose delivery is unknown, oldest first."""
    return list(await session.scalars(
        select(Notice).where(Notice.status == "unknown")
        .order_by(Notice.created_at, Notice.id).limit(limit)))


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
