"""Links between chat users and Stripe customers, and the single-use tokens that make them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import TokenInvalid
from billing.gateway import StripeGateway
from billing.models import ChatLink, LinkToken, Notice, PendingState, Preference, utcnow

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class MintedToken:
    """A fresh link token; the plain token exists only in this object."""

    token: str
    customer_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Link:
    """A chat user's link to a customer."""

    channel: str
    user_id: str
    chat_id: str
    customer_id: str


def hash_token(token: str, secret: str) -> str:
    """Return the keyed hash under which a token is stored."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


async def mint_token(session: AsyncSession, *, gateway: StripeGateway, secret: str,
                     customer_id: str, ttl: timedelta = DEFAULT_TTL) -> MintedToken:
    """Mint a single-use link token for a customer Stripe knows (NotFound otherwise)."""
    await gateway.customer(customer_id)
    token = secrets.token_urlsafe(24)  # 32 characters of A-Za-z0-9_-
    expires_at = utcnow() + ttl
    session.add(LinkToken(token_hash=hash_token(token, secret), customer_id=customer_id,
                          expires_at=expires_at))
    return MintedToken(token=token, customer_id=customer_id, expires_at=expires_at)


async def redeem_token(session: AsyncSession, *, secret: str, token: str, channel: str,
                       user_id: str, chat_id: str) -> Link:
    """Use a link token to link the chat user to its customer, once."""
    if not TOKEN_PATTERN.fullmatch(token):  # `$` alone would let a trailing newline in
        raise TokenInvalid("malformed")
    token_hash = hash_token(token, secret)
    row = await session.scalar(select(LinkToken).where(LinkToken.token_hash == token_hash))
    if row is None:
        raise TokenInvalid("unknown")
    if row.used_at is not None:
        raise TokenInvalid("used")
    now = utcnow()
    if row.expires_at <= now:
        raise TokenInvalid("expired")
    # Claim it with a guarded UPDATE so two concurrent redemptions cannot both succeed.
    claimed = await session.execute(
        update(LinkToken).where(LinkToken.id == row.id, LinkToken.used_at.is_(None))
        .values(used_at=now))
    if getattr(claimed, "rowcount", 0) != 1:
        raise TokenInvalid("used")
    return await link_customer(session, channel=channel, user_id=user_id, chat_id=chat_id,
                               customer_id=row.customer_id)


async def link_customer(session: AsyncSession, *, channel: str, user_id: str, chat_id: str,
                        customer_id: str) -> Link:
    """Link (or re-link) a chat user to a customer."""
    row = await session.scalar(select(ChatLink).where(
        ChatLink.channel == channel, ChatLink.user_id == user_id))
    if row is None:
        session.add(ChatLink(channel=channel, user_id=user_id, chat_id=chat_id,
                             customer_id=customer_id))
    else:
        row.chat_id, row.customer_id = chat_id, customer_id
    await session.flush()
    return Link(channel=channel, user_id=user_id, chat_id=chat_id, customer_id=customer_id)


async def find_link(session: AsyncSession, *, channel: str, user_id: str) -> Link | None:
    """Return the chat user's link, if any."""
    row = await session.scalar(select(ChatLink).where(
        ChatLink.channel == channel, ChatLink.user_id == user_id))
    if row is None:
        return None
    return Link(channel=row.channel, user_id=row.user_id, chat_id=row.chat_id,
                customer_id=row.customer_id)


async def forget(session: AsyncSession, *, channel: str, user_id: str) -> None:
    """Delete the chat user's link, preferences, pending state and undelivered notices."""
    for model in (ChatLink, Preference, PendingState):
        await session.execute(delete(model).where(
            model.channel == channel, model.user_id == user_id))
    await session.execute(delete(Notice).where(
        Notice.channel == channel, Notice.user_id == user_id,
        Notice.status.in_(("pending", "failed"))))
