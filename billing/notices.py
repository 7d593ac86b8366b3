"""Notices waiting to be pushed into chats (the outbox), each under a unique dedupe key.

A notice is written in the transaction of the state change that causes it, once per
recipient (every chat linked to the customer), under `<kind>:<object>:<period or event>`
plus the recipient. Quiet hours (`[notices] quiet_hours`, in the recipient's time zone)
defer everything but payment problems by setting `send_after`. Delivery states live in
`billing.deliveries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.catalog import parse_quiet_hours
from billing.models import ChatLink, Notice, Preference, UnreachableChat, utcnow
from billing.team_notices import Fanout, TeamRoster

# Payment problems need the customer now: quiet hours never hold them back.
URGENT = frozenset({"payment_failed", "action_required", "team_payment_failed",
                    "team_action_required"})
KEY_CHUNK = 500  # dedupe keys looked up per query


@dataclass(frozen=True)
class Recipient:
    """A chat linked to a customer, with what deciding about its notices needs."""

    channel: str
    user_id: str
    chat_id: str
    timezone: str | None
    reminders: bool


@cache
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):  # an unknown or malformed zone name
        return ZoneInfo("UTC")


def quiet_until(quiet_hours: str | None, zone: str | None, now: datetime) -> datetime | None:
    """Return when the quiet window around `now` ends (UTC), or None outside quiet hours."""
    if not quiet_hours:
        return None
    start, end = parse_quiet_hours(quiet_hours)
    local = now.astimezone(_zone(zone))
    minute = local.hour * 60 + local.minute
    first, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    wraps = first > last  # e.g. 21:00-08:00 spans midnight
    quiet = (minute >= first or minute < last) if wraps else first <= minute < last
    if not quiet:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    # Rebuild in the zone so a DST change overnight gives the right wall-clock time.
    ends = datetime.combine(ends.date(), end, tzinfo=local.tzinfo)
    return ends.astimezone(now.tzinfo)


def send_time(kind: str, quiet_hours: str | None, zone: str | None, now: datetime) -> datetime:
    """Return when a notice of this kind may go out: now, or when quiet hours end."""
    if kind in URGENT:
        return now
    return quiet_until(quiet_hours, zone, now) or now


def recipient_key(key: str, channel: str, user_id: str) -> str:
    """Return the dedupe key of one recipient's copy of a notice."""
    return f"{key}@{channel}:{user_id}"


async def recipients(session: AsyncSession, customer_id: str) -> list[Recipient]:
    """Return every chat linked to the customer, with its time zone and reminder setting."""
    rows = await session.execute(
        select(ChatLink.channel, ChatLink.user_id, ChatLink.chat_id, Preference.timezone,
               Preference.reminders)
        .outerjoin(Preference, (Preference.channel == ChatLink.channel)
                   & (Preference.user_id == ChatLink.user_id))
        .where(ChatLink.customer_id == customer_id).order_by(ChatLink.id))
    return [Recipient(channel, user_id, chat_id, zone, reminders is not False)
            for channel, user_id, chat_id, zone, reminders in rows]


async def is_unreachable(session: AsyncSession, channel: str, chat_id: str) -> bool:
    """Return whether the chat refused our messages before."""
    return await session.get(UnreachableChat, (channel, chat_id)) is not None


async def enqueue(session: AsyncSession, *, dedupe_key: str, channel: str, user_id: str,
                  chat_id: str, kind: str, params: dict[str, Any],
                  send_after: datetime | None = None) -> bool:
    """Add a notice in the caller's transaction; return False if its key was already used."""
    exists = await session.scalar(select(Notice.id).where(Notice.dedupe_key == dedupe_key))
    if exists is not None:
        return False
    # A chat that blocked the bot keeps its notices, but as unreachable: nothing is sent.
    status = "unreachable" if await is_unreachable(session, channel, chat_id) else "pending"
    try:
        async with session.begin_nested():
            session.add(Notice(dedupe_key=dedupe_key, channel=channel, user_id=user_id,
                               chat_id=chat_id, kind=kind, params=params, status=status,
                               send_after=send_after or utcnow()))
    except IntegrityError:  # a concurrent writer took the key first
        return False
    return True


async def notify(session: AsyncSession, *, customer_id: str, kind: str, key: str,
                 params: dict[str, Any], quiet_hours: str | None,
                 now: datetime | None = None, only_reminded: bool = False,
                 rosters: Mapping[str, TeamRoster] | None = None) -> int:
    """Queue a notice for every chat linked to the customer; return how many were new.

    `key` is `<kind>:<object>:<period or event>`; `only_reminded` leaves out the chats
    that turned renewal reminders off. A linked team gets one copy per billing admin, as
    its `rosters` entry says (billing.team_notices).
    """
    at = now or utcnow()
    fanout = Fanout(session, rosters)
    added = 0
    for to in await recipients(session, customer_id):
        if only_reminded and not to.reminders:
            continue
        row = {"dedupe_key": recipient_key(key, to.channel, to.user_id), "channel": to.channel,
               "user_id": to.user_id, "chat_id": to.chat_id, "kind": kind, "params": params,
               "send_after": send_time(kind, quiet_hours, to.timezone, at)}
        for one in await fanout.rows([row], send_time=lambda k, zone: send_time(
                k, quiet_hours, zone, at)):
            added += await enqueue(session, **one)
    return added


async def existing_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Return which of these dedupe keys are taken already."""
    found: set[str] = set()
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start:start + KEY_CHUNK]
        found.update(await session.scalars(select(Notice.dedupe_key)
                                           .where(Notice.dedupe_key.in_(chunk))))
    return found


async def add_many(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> int:
    """Insert many notices (dicts of Notice columns) at once, skipping taken keys and sending
    nothing to unreachable chats; return how many were new."""
    wanted = {row["dedupe_key"]: row for row in rows}
    taken = await existing_keys(session, list(wanted))
    fresh = [row for key, row in wanted.items() if key not in taken]
    if not fresh:
        return 0
    blocked = {(channel, chat) for channel, chat in await session.execute(
        select(UnreachableChat.channel, UnreachableChat.chat_id))}
    now = utcnow()
    for row in fresh:
        row.setdefault("send_after", now)
        row.update(created_at=now, attempts=0,
                   status="unreachable" if (row["channel"], row["chat_id"]) in blocked
                   else "pending")
    # ON CONFLICT DO NOTHING: a concurrent scan that took a key meanwhile is no error.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(cast(Table, Notice.__table__)).on_conflict_do_nothing(
        index_elements=["dedupe_key"])
    connection = await session.connection()
    for start in range(0, len(fresh), 5000):
        await connection.execute(statement, fresh[start:start + 5000])
    return len(fresh)


async def due(session: AsyncSession, *, limit: int = 100) -> list[Notice]:
    """Return pending notices whose time has come, oldest first."""
    rows = await session.scalars(
        select(Notice).where(Notice.status == "pending", Notice.send_after <= utcnow())
        .order_by(Notice.id).limit(limit))
    return list(rows)


async def mark(session: AsyncSession, notice_id: int, *, status: str,
               error: str | None = None) -> None:
    """Record a delivery outcome for a notice."""
    notice = await session.get(Notice, notice_id)
    if notice is None:
        return
    notice.status = status
    notice.attempts += 1
    notice.last_error = error
    if status == "sent":
        notice.sent_at = utcnow()
