"""Notices waiting to be pushed into chats (the outbox), each under a unique dedupe key.

A notice is written in the transaction of the state change that causes it, once per
recipient (every chat linked to the customer), under `<kind>:<object>:<period or event>`
plus the recipient; a linked team's becomes its billing admins' copies just after that
transaction (`expand_team_notices`; billing.team_notices says why not within it). Quiet
hours (`[notices] quiet_hours`, in the recipient's time zone) defer everything but payment
problems by setting `send_after`. Delivery states live in `billing.deliveries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.catalog import parse_quiet_hours
from billing.db import Database
from billing.models import ChatLink, Notice, Preference, UnreachableChat, utcnow
from billing.prefs import remember_locale, remember_zone
from billing.team_notices import (
    EXPANDED,
    QUIET,
    TO_EXPAND,
    TeamAdmin,
    TeamRoster,
    admin_chat,
    admins_of,
    copy_for,
    for_teams,
    team_of,
)

# Payment problems need the customer now: quiet hours never hold them back.
URGENT = frozenset({"payment_failed", "action_required", "team_payment_failed",
                    "team_action_required"})
KEY_CHUNK = 500  # dedupe keys looked up per query
EXPAND_BATCH = 200  # waiting team notices expanded per pass


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
                  send_after: datetime | None = None, status: str | None = None) -> bool:
    """Add a notice in the caller's transaction; return False if its key was already used.
    (`status` is only ever TO_EXPAND: a team's notice waiting for its admins' copies.)"""
    exists = await session.scalar(select(Notice.id).where(Notice.dedupe_key == dedupe_key))
    if exists is not None:
        return False
    # A chat that blocked the bot keeps its notices, but as unreachable: nothing is sent.
    if status != TO_EXPAND:
        status = ("unreachable" if await is_unreachable(session, channel, chat_id)
                  else "pending")
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
                 now: datetime | None = None, only_reminded: bool = False) -> int:
    """Queue a notice for every chat linked to the customer; return how many were new.

    `key` is `<kind>:<object>:<period or event>`; `only_reminded` leaves out the chats
    that turned renewal reminders off. A linked team gets one waiting row (counted as one),
    which `expand_team_notices` turns into one copy per billing admin after the caller's
    transaction (billing.team_notices): nothing here asks a chat app.
    """
    at = now or utcnow()
    rows = [{"dedupe_key": recipient_key(key, to.channel, to.user_id), "channel": to.channel,
             "user_id": to.user_id, "chat_id": to.chat_id, "kind": kind, "params": params,
             "send_after": send_time(kind, quiet_hours, to.timezone, at)}
            for to in await recipients(session, customer_id)
            if to.reminders or not only_reminded]
    added = 0
    for one in for_teams(rows, quiet_hours=quiet_hours, now=at):
        added += await enqueue(session, **one)
    return added


async def expand_team_notices(db: Database, rosters: Mapping[str, TeamRoster] | None, *,
                              batch: int = EXPAND_BATCH) -> int:
    """Give each waiting team notice its billing admins' copies (step 2 of a team's notice,
    billing.team_notices), `batch` rows at a time; return how many copies were new.

    Call it with no transaction open: for each batch it reads the waiting rows (a read
    snapshot, closed again), asks each team's roster once with no transaction open, and only
    then writes, in one short transaction: the rows claimed (a conditional UPDATE, so that
    two expanders at once expand each row once), the admins' languages and zones, their
    copies (ON CONFLICT DO NOTHING on their dedupe keys). A crash anywhere leaves the rows
    waiting, for the next pass to expand.
    """
    added = 0
    while True:
        async with db.read() as session:
            waiting = [dict(row._mapping) for row in await session.execute(
                select(Notice.id, Notice.dedupe_key, Notice.channel, Notice.user_id,
                       Notice.chat_id, Notice.kind, Notice.params, Notice.send_after)
                .where(Notice.status == TO_EXPAND).order_by(Notice.id).limit(batch))]
        if waiting:
            added += await _expand(db, rosters, waiting)
        if len(waiting) < batch:  # every row read was claimed, here or by another expander
            return added


async def _expand(db: Database, rosters: Mapping[str, TeamRoster] | None,
                  waiting: list[dict[str, Any]]) -> int:
    admins: dict[tuple[str, str], list[TeamAdmin]] = {}
    for row in waiting:  # the chat app is asked here, between the two transactions
        team = team_of(str(row["user_id"])) or ""
        if (row["channel"], team) not in admins:
            admins[row["channel"], team] = await admins_of(rosters, row["channel"], team,
                                                           row["chat_id"])
    copies: dict[str, dict[str, Any]] = {}
    remembered: set[tuple[str, str]] = set()
    async with db.session() as session:
        claimed = set(await session.scalars(
            update(Notice).where(Notice.id.in_([row["id"] for row in waiting]),
                                 Notice.status == TO_EXPAND)
            .values(status=EXPANDED).returning(Notice.id)))
        for row in waiting:
            if row["id"] not in claimed:
                continue  # expanded meanwhile by another pass
            channel, team = row["channel"], team_of(str(row["user_id"])) or ""
            for admin in admins[channel, team]:
                user = admin_chat(team, admin.member_id)
                if (channel, user) not in remembered:
                    remembered.add((channel, user))
                    await _remember(session, channel, user, admin)
                one = copy_for(row, admin, send_time(
                    row["kind"], row["params"].get(QUIET), admin.zone, row["send_after"]))
                copies[one["dedupe_key"]] = one
        return await add_many(session, list(copies.values()))


async def _remember(session: AsyncSession, channel: str, user: str, admin: TeamAdmin) -> None:
    """Remember an admin's language and time zone, so that their copy is rendered in theirs."""
    if admin.locale:
        await remember_locale(session, channel=channel, user_id=user, locale=admin.locale)
    if admin.zone:
        await remember_zone(session, channel=channel, user_id=user, zone=admin.zone)


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
    nothing to unreachable chats; return how many were new. A row may say `status`
    TO_EXPAND (a team's waiting notice, billing.team_notices); the others are pending."""
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
                   status=TO_EXPAND if row.get("status") == TO_EXPAND
                   else "unreachable" if (row["channel"], row["chat_id"]) in blocked
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
