"""A team's side of Portier's database: event ids seen, seats assigned, seat requests, billing
admins and the billing channel, and the copies of a message sent to several chats.

The Stripe side of a team (its per-seat subscription) lives in `billing.seats`; a team is
linked to its Stripe customer as a `ChatLink` whose user is the team itself (`team_key`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import utcnow
from billing.slack_models import (
    BillingAdmin,
    ChatEvent,
    MessageCopy,
    SeatRequest,
    TeamSeat,
    TeamSettings,
)


def _insert(session: AsyncSession, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(cast(Table, model.__table__))


def team_key(team_id: str) -> str:
    """Return the `ChatLink.user_id` under which a team (not one member) is linked."""
    return f"team:{team_id}"


async def first_delivery(session: AsyncSession, *, channel: str, event_id: str,
                         team_id: str) -> bool:
    """Record an event id; return False when it was seen before (a retry, a duplicate)."""
    # INSERT … ON CONFLICT DO NOTHING decides atomically, so two deliveries racing each
    # other (the original and Slack's retry) cannot both be first.
    result = await session.execute(_insert(session, ChatEvent).values(
        channel=channel, event_id=event_id[:64], team_id=team_id[:64], received_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["channel", "event_id"]))
    return bool(getattr(result, "rowcount", 0))


async def hold_team(session: AsyncSession, *, channel: str, team_id: str) -> None:
    """Hold the team until the transaction ends, so that two admins assigning its last free
    seat at once take turns: the upsert locks the team's settings row (PostgreSQL's ON
    CONFLICT DO UPDATE waits for a concurrent one; SQLite writes one transaction at a time)."""
    now = utcnow()
    await session.execute(_insert(session, TeamSettings).values(
        channel=channel, team_id=team_id, billing_channel=None, updated_at=now,
    ).on_conflict_do_update(index_elements=["channel", "team_id"], set_={"updated_at": now}))


async def assigned_seats(session: AsyncSession, *, channel: str, team_id: str) -> list[str]:
    """Return the members holding a seat of the team, in the order they got it."""
    return list(await session.scalars(
        select(TeamSeat.user_id).where(TeamSeat.channel == channel, TeamSeat.team_id == team_id)
        .order_by(TeamSeat.assigned_at, TeamSeat.user_id)))


async def seat_count(session: AsyncSession, *, channel: str, team_id: str) -> int:
    """Return how many seats of the team are assigned."""
    return int(await session.scalar(select(func.count()).select_from(TeamSeat).where(
        TeamSeat.channel == channel, TeamSeat.team_id == team_id)) or 0)


async def holds_seat(session: AsyncSession, *, channel: str, team_id: str,
                     user_id: str) -> bool:
    """Tell whether a member holds one of the team's seats."""
    return await session.get(TeamSeat, (channel, team_id, user_id)) is not None


async def assign_seat(session: AsyncSession, *, channel: str, team_id: str,
                      user_id: str) -> bool:
    """Assign a seat to a member; return False when they already held one."""
    result = await session.execute(_insert(session, TeamSeat).values(
        channel=channel, team_id=team_id, user_id=user_id, assigned_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["channel", "team_id", "user_id"]))
    await session.execute(delete(SeatRequest).where(
        SeatRequest.channel == channel, SeatRequest.team_id == team_id,
        SeatRequest.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def unassign_seat(session: AsyncSession, *, channel: str, team_id: str,
                        user_id: str) -> bool:
    """Take a member's seat back; return False when they held none."""
    result = await session.execute(delete(TeamSeat).where(
        TeamSeat.channel == channel, TeamSeat.team_id == team_id, TeamSeat.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def _members(session: AsyncSession, table: type[SeatRequest] | type[BillingAdmin],
                   since: Any, *, channel: str, team_id: str) -> list[str]:
    """Return the members a team's rows of `table` name, in the order of `since`."""
    return list(await session.scalars(
        select(table.user_id).where(table.channel == channel, table.team_id == team_id)
        .order_by(since, table.user_id)))


async def request_seat(session: AsyncSession, *, channel: str, team_id: str,
                       user_id: str) -> bool:
    """Record a member's request for a seat; return False when one was already waiting."""
    result = await session.execute(_insert(session, SeatRequest).values(
        channel=channel, team_id=team_id, user_id=user_id, requested_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["channel", "team_id", "user_id"]))
    return bool(getattr(result, "rowcount", 0))


async def seat_requests(session: AsyncSession, *, channel: str, team_id: str) -> list[str]:
    """Return the members waiting for a seat, oldest request first."""
    return await _members(session, SeatRequest, SeatRequest.requested_at, channel=channel,
                          team_id=team_id)


async def drop_request(session: AsyncSession, *, channel: str, team_id: str,
                       user_id: str) -> bool:
    """Forget a member's seat request (declined); return False when none was waiting."""
    result = await session.execute(delete(SeatRequest).where(
        SeatRequest.channel == channel, SeatRequest.team_id == team_id,
        SeatRequest.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def billing_admins(session: AsyncSession, *, channel: str, team_id: str) -> list[str]:
    """Return the members made billing admins of the team, in the order they were added."""
    return await _members(session, BillingAdmin, BillingAdmin.added_at, channel=channel,
                          team_id=team_id)


async def is_billing_admin(session: AsyncSession, *, channel: str, team_id: str,
                           user_id: str) -> bool:
    """Tell whether an admin made the member a billing admin of the team."""
    return await session.get(BillingAdmin, (channel, team_id, user_id)) is not None


async def add_billing_admin(session: AsyncSession, *, channel: str, team_id: str,
                            user_id: str, added_by: str) -> bool:
    """Make a member a billing admin; return False when they already were one."""
    result = await session.execute(_insert(session, BillingAdmin).values(
        channel=channel, team_id=team_id, user_id=user_id, added_by=added_by,
        added_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["channel", "team_id", "user_id"]))
    return bool(getattr(result, "rowcount", 0))


async def remove_billing_admin(session: AsyncSession, *, channel: str, team_id: str,
                               user_id: str) -> bool:
    """Stop a member being a billing admin; return False when they were none."""
    result = await session.execute(delete(BillingAdmin).where(
        BillingAdmin.channel == channel, BillingAdmin.team_id == team_id,
        BillingAdmin.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def billing_channel(session: AsyncSession, *, channel: str, team_id: str) -> str | None:
    """Return the team's billing channel (where audit lines go), if one is set."""
    found = await session.get(TeamSettings, (channel, team_id))
    return found.billing_channel if found is not None else None


async def set_billing_channel(session: AsyncSession, *, channel: str, team_id: str,
                              conversation: str | None) -> None:
    """Set (or, with None, clear) the team's billing channel."""
    now = utcnow()
    await session.execute(_insert(session, TeamSettings).values(
        channel=channel, team_id=team_id, billing_channel=conversation, updated_at=now,
    ).on_conflict_do_update(index_elements=["channel", "team_id"],
                            set_={"billing_channel": conversation, "updated_at": now}))


async def remember_copy(session: AsyncSession, *, channel: str, ref: str, chat_id: str,
                        message_id: str, locale: str | None = None) -> None:
    """Record where one copy of the message named `ref` was sent, and in which language."""
    await session.execute(_insert(session, MessageCopy).values(
        channel=channel, ref=ref[:128], chat_id=chat_id[:64], message_id=message_id[:64],
        sent_at=utcnow(), locale=locale[:8] if locale else None,
    ).on_conflict_do_nothing(index_elements=["channel", "ref", "chat_id", "message_id"]))


async def take_copies(session: AsyncSession, *, channel: str,
                      ref: str) -> list[tuple[str, str, str | None]]:
    """Return (chat, message id, language) of every copy of the message named `ref`,
    forgetting them: they are replaced once."""
    rows = (await session.execute(
        delete(MessageCopy).where(MessageCopy.channel == channel, MessageCopy.ref == ref[:128])
        .returning(MessageCopy.chat_id, MessageCopy.message_id, MessageCopy.locale))).all()
    return [(str(chat), str(message), locale) for chat, message, locale in rows]


# Slack retries an event not acked in 3 seconds three times: at once, after a minute and after
# five (https://api.slack.com/apis/events-api#retries); a day of event ids outlasts them all.
EVENT_IDS_KEPT = timedelta(days=1)
# A message's copies are taken when a reply replaces them (a seat request decided). One left
# undecided this long keeps working (its buttons decide it) but its copies are not updated.
COPIES_KEPT = timedelta(days=30)


async def forget_old(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete delivered event ids and message copies past their use; return how many."""
    now = now or utcnow()
    events = await session.execute(delete(ChatEvent).where(
        ChatEvent.received_at < now - EVENT_IDS_KEPT))
    copies = await session.execute(delete(MessageCopy).where(
        MessageCopy.sent_at < now - COPIES_KEPT))
    return int(getattr(events, "rowcount", 0) or 0) + int(getattr(copies, "rowcount", 0) or 0)
