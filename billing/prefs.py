"""A chat user's preferences."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from billing.db import Rows
from billing.links import Link
from billing.models import ChatLink, Preference, UnreachableChat, utcnow

FIELDS = frozenset({"locale", "timezone", "offers", "reminders"})


@dataclass(frozen=True)
class Profile:
    """What every update needs to know of its chat user: language, zone, link, and whether
    the chat it came from was marked unreachable (it refused a message earlier)."""

    locale: str | None
    timezone: str | None
    link: Link | None
    unreachable: bool = False


_me = select(bindparam("channel", type_=String).label("channel"),
             bindparam("user_id", type_=String).label("user_id"),
             bindparam("chat_id", type_=String).label("chat_id")).subquery("me")
# One statement, built once (so SQLAlchemy keeps its compiled form): every update runs it.
# Labelled, so that a statement built on it (`mirror.read_context`) keeps the names.
PROFILE = (
    select(Preference.locale.label("locale"), Preference.timezone.label("timezone"),
           ChatLink.chat_id.label("chat_id"), ChatLink.customer_id.label("customer_id"),
           UnreachableChat.marked_at.label("marked_at"))
    .select_from(_me)
    .outerjoin(Preference, and_(Preference.channel == _me.c.channel,
                                Preference.user_id == _me.c.user_id))
    .outerjoin(ChatLink, and_(ChatLink.channel == _me.c.channel,
                              ChatLink.user_id == _me.c.user_id))
    .outerjoin(UnreachableChat, and_(UnreachableChat.channel == _me.c.channel,
                                     UnreachableChat.chat_id == _me.c.chat_id)))


async def get_profile(connection: Rows | AsyncSession, *, channel: str,
                      user_id: str, chat_id: str) -> Profile:
    """Return the chat user's language, time zone and link (each None when not stored), and
    whether the chat is marked unreachable."""
    row = (await connection.execute(PROFILE, {"channel": channel, "user_id": user_id,
                                              "chat_id": chat_id})).one()
    return profile_of(row._mapping, channel=channel, user_id=user_id)


def profile_of(row: RowMapping, *, channel: str, user_id: str) -> Profile:
    """Return the profile a row of `PROFILE` (or of a statement built on it) holds."""
    link = (Link(channel=channel, user_id=user_id, chat_id=row["chat_id"],
                 customer_id=row["customer_id"]) if row["customer_id"] is not None else None)
    return Profile(locale=row["locale"], timezone=row["timezone"], link=link,
                   unreachable=row["marked_at"] is not None)


async def get_prefs(session: AsyncSession, *, channel: str, user_id: str) -> Preference | None:
    """Return the chat user's stored preferences, if any."""
    return await session.get(Preference, (channel, user_id))


async def save_prefs(session: AsyncSession, *, channel: str, user_id: str,
                     **values: object) -> Preference:
    """Create or update the chat user's preferences with the given values."""
    unknown = sorted(set(values) - FIELDS)
    if unknown:  # only preference columns: never the key or the bookkeeping
        raise AttributeError(", ".join(unknown))
    row = await session.get(Preference, (channel, user_id))
    if row is None:
        row = Preference(channel=channel, user_id=user_id, offers=False, reminders=True)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    return row


async def remember_locale(session: AsyncSession, *, channel: str, user_id: str,
                          locale: str) -> None:
    """Store the language a chat app reports for the user, unless they have one already."""
    # One upsert, no read first: on SQLite a transaction that reads and then writes fails at
    # once ("database is locked") when another writer committed in between, whereas a first
    # statement that writes waits for the lock like any writer.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Preference).values(
        channel=channel, user_id=user_id, locale=locale, offers=False, reminders=True,
        updated_at=utcnow())
    await session.execute(statement.on_conflict_do_update(
        index_elements=["channel", "user_id"], set_={"locale": locale},
        where=Preference.locale.is_(None)))


async def remember_zone(session: AsyncSession, *, channel: str, user_id: str,
                        zone: str) -> None:
    """Store the time zone a chat app reports for the user, unless they have one already."""
    dialect = session.get_bind().dialect.name  # one upsert, as remember_locale
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Preference).values(
        channel=channel, user_id=user_id, timezone=zone[:64], offers=False, reminders=True,
        updated_at=utcnow())
    await session.execute(statement.on_conflict_do_update(
        index_elements=["channel", "user_id"], set_={"timezone": zone[:64]},
        where=Preference.timezone.is_(None)))
