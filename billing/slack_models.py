"""Tables of the team (Slack) side: delivered event ids, seats assigned to members, seat
requests, billing admins and channel, copies of a message sent to many chats, the team
intents (a seat change or an approval, recorded before Stripe is asked), and the Slack
installations (OAuth)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
)
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



class TeamSettings(Base):
    """A team's billing settings: the channel that gets the billing audit lines."""

    __tablename__ = "team_settings"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    billing_channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BillingAdmin(Base):
    """A member an admin made a billing admin (a team admin besides the workspace's own)."""

    __tablename__ = "billing_admins"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MessageCopy(Base):
    """One copy of a message sent to several chats under one name (a seat request to each
    billing admin), so that a later reply can replace every copy."""

    __tablename__ = "message_copies"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    ref: Mapped[str] = mapped_column(String(128), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)  # the copy's language

class TeamIntent(Base):
    """Work on a team's plan that must survive a crash once asked for (billing.team_intents):
    a seat change ("seats") or an approved seat request ("approve"), recorded before Stripe is
    called; `pending` until its last transaction marks it `done` (or `failed`)."""

    __tablename__ = "team_intents"
    __table_args__ = (Index("ix_team_intents_status_updated", "status", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A double tap on one Confirm names the same intent (None: no such name).
    ref: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# slack_sdk's installation and OAuth-state stores (AsyncSQLAlchemyInstallationStore,
# AsyncSQLAlchemyOAuthStateStore) use these tables; they are defined here, column for column
# as slack_sdk builds them (slack_sdk/oauth/*/sqlalchemy/__init__.py), so that Alembic
# creates them like every other table. Tokens are Text: they are stored encrypted, longer
# than slack_sdk's String(200).
def _installation_columns(*, user: bool) -> list[Column[Any]]:
    columns: list[Column[Any]] = [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
    ]
    if user:
        columns.append(Column("enterprise_url", String(200)))
    columns += [
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", Text),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", Text),
        Column("bot_token_expires_at", DateTime),
    ]
    if user:
        columns += [
            Column("user_id", String(32), nullable=False),
            Column("user_token", Text),
            Column("user_scopes", String(1000)),
            Column("user_refresh_token", Text),
            Column("user_token_expires_at", DateTime),
            Column("incoming_webhook_url", String(200)),
            Column("incoming_webhook_channel", String(200)),
            Column("incoming_webhook_channel_id", String(200)),
            Column("incoming_webhook_configuration_url", String(200)),
        ]
    columns.append(Column("is_enterprise_install", Boolean, default=False, nullable=False))
    if user:
        columns.append(Column("token_type", String(32)))
    columns.append(Column("installed_at", DateTime, nullable=False, default=func.now()))
    return columns


slack_installations = Table(
    "slack_installations", Base.metadata, *_installation_columns(user=True),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id",
          "installed_at"))
slack_bots = Table(
    "slack_bots", Base.metadata, *_installation_columns(user=False),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"))
slack_oauth_states = Table(
    "slack_oauth_states", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False))
