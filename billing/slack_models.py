"""Tables of the team (Slack) side: delivered event ids, and the seats assigned to members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import Base, UTCDateTime, utcnow


class ChatEvent(Base):
    """An event a chat app delivered (Slack's event_id): a retry of it is not handled again."""

    __tablename__ = "chat_events"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class TeamSeat(Base):
    """A seat of a team's plan assigned to one member."""

    __tablename__ = "team_seats"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SeatRequest(Base):
    """A member's request for a seat, waiting for a billing admin's decision."""

    __tablename__ = "seat_requests"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
