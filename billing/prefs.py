"""A chat user's preferences."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Preference, utcnow

FIELDS = frozenset({"locale", "timezone", "offers", "reminders"})


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
