"""A team's side of Portier's database: event ids seen, seats assigned, seat requests.

The Stripe side of a team (its per-seat subscription) lives in `billing.seats`; a team is
linked to its Stripe customer as a `ChatLink` whose user is the team itself (`team_key`).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import utcnow
from billing.slack_models import ChatEvent, SeatRequest, TeamSeat


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


async def request_seat(session: AsyncSession, *, channel: str, team_id: str,
                       user_id: str) -> bool:
    """Record a member's request for a seat; return False when one was already waiting."""
    result = await session.execute(_insert(session, SeatRequest).values(
        channel=channel, team_id=team_id, user_id=user_id, requested_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["channel", "team_id", "user_id"]))
    return bool(getattr(result, "rowcount", 0))


async def seat_requests(session: AsyncSession, *, channel: str, team_id: str) -> list[str]:
    """Return the members waiting for a seat, oldest request first."""
    return list(await session.scalars(
        select(SeatRequest.user_id).where(SeatRequest.channel == channel,
                                          SeatRequest.team_id == team_id)
        .order_by(SeatRequest.requested_at, SeatRequest.user_id)))


async def drop_request(session: AsyncSession, *, channel: str, team_id: str,
                       user_id: str) -> bool:
    """Forget a member's seat request (declined); return False when none was waiting."""
    result = await session.execute(delete(SeatRequest).where(
        SeatRequest.channel == channel, SeatRequest.team_id == team_id,
        SeatRequest.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))
