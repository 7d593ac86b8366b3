"""Signed links to Portier's `GET /card/<token>`, which opens Stripe's card page at the tap.

A billing-portal session is a short-lived login to one customer (docs.stripe.com: make one at
the moment the customer taps, never store one), so an "Update card" button cannot carry one:
it carries a token that names the customer, the chat it was given to and its language, and
the tap turns it into a fresh portal session (SPEC §6.6).

Unlike account-link tokens (billing.links: random, single use, stored as a hash), this token
is stateless: it is the fields themselves, signed with HMAC-SHA256 under a key derived from
`PORTIER_LINK_SECRET`, and it expires (24 hours by default). Reuse is harmless, as every tap
makes a new portal session for the same customer; what stops an old token is its expiry and
the check, at the tap, that the chat is still linked to that customer (`/forget` or linking
another customer kills it). The format is our own, a few lines of stdlib, because it must be
short (it rides in a Telegram URL button) and carry exactly these fields:

    base64url("1" US customer US channel US user US chat US locale US expires) "." base64url(mac)

with US the unit separator (no field may contain it) and the MAC cut to 128 bits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import NotLinked, TokenInvalid
from billing.links import find_link
from billing.models import utcnow
from billing.services import Billing
from billing.subscriptions import card_update_url

DEFAULT_TTL = timedelta(hours=24)
VERSION = "1"
SEPARATOR = "\x1f"
MAC_BYTES = 16
MAX_TOKEN = 600  # characters; a token Portier mints is ~110 (Telegram allows URLs far longer)
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,560}\.[A-Za-z0-9_-]{22}")  # used with fullmatch


@dataclass(frozen=True)
class CardTicket:
    """What a card link names: one customer, one chat user, a language and an expiry."""

    customer_id: str
    channel: str
    user_id: str
    chat_id: str
    locale: str
    expires_at: datetime


class TicketExpired(TokenInvalid):
    """The card link verified but its time is up; `ticket` says whose it was."""

    def __init__(self, ticket: CardTicket) -> None:
        super().__init__("expired")
        self.ticket = ticket


def _key(secret: str) -> bytes:
    # A key of its own, so that no card-link MAC is ever a valid value elsewhere (billing.links
    # hashes account-link tokens under the same secret).
    return hmac.new(secret.encode(), b"portier card link", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()[:MAC_BYTES])


def mint(secret: str, *, customer_id: str, channel: str, user_id: str, chat_id: str,
         locale: str, now: datetime | None = None, ttl: timedelta = DEFAULT_TTL) -> str:
    """Return a signed card-link token for a chat user linked to a customer."""
    if not secret:
        raise ValueError("a card link needs PORTIER_LINK_SECRET")
    expires = int(((now or utcnow()) + ttl).timestamp())
    fields = (VERSION, customer_id, channel, user_id, chat_id, locale, str(expires))
    if any(SEPARATOR in field for field in fields):
        raise ValueError("a card-link field contains the separator")
    body = _b64(SEPARATOR.join(fields).encode())
    return f"{body}.{_mac(secret, body)}"


def read(secret: str, token: str, *, now: datetime | None = None) -> CardTicket:
    """Return what a card-link token names; TokenInvalid if malformed or forged, TicketExpired
    (with the ticket) once its time is up."""
    if not secret or len(token) > MAX_TOKEN or not TOKEN.fullmatch(token):
        raise TokenInvalid("malformed")
    body, mac = token.split(".")
    # Constant-time comparison before the body is decoded: nothing unsigned is parsed.
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise TokenInvalid("forged")
    try:
        fields = _unb64(body).decode().split(SEPARATOR)
    except (binascii.Error, UnicodeDecodeError):
        raise TokenInvalid("malformed") from None
    if len(fields) != 7 or fields[0] != VERSION or not fields[6].isdigit():
        raise TokenInvalid("malformed")
    _, customer, channel, user, chat, locale, expires = fields
    ticket = CardTicket(customer_id=customer, channel=channel, user_id=user, chat_id=chat,
                        locale=locale, expires_at=datetime.fromtimestamp(int(expires), UTC))
    if ticket.expires_at <= (now or utcnow()):
        raise TicketExpired(ticket)
    return ticket


def card_link(billing: Billing, *, customer_id: str, channel: str, user_id: str, chat_id: str,
              locale: str, now: datetime | None = None) -> str:
    """Return the URL of Portier's `GET /card/<token>` for this chat user and customer."""
    token = mint(billing.link_secret, customer_id=customer_id, channel=channel,
                 user_id=user_id, chat_id=chat_id, locale=locale, now=now)
    return f"{billing.public_url.rstrip('/')}/card/{token}"


async def still_linked(session: AsyncSession, ticket: CardTicket) -> bool:
    """Return whether the ticket's chat user is still linked to its customer, in that chat."""
    link = await find_link(session, channel=ticket.channel, user_id=ticket.user_id)
    return (link is not None and link.customer_id == ticket.customer_id
            and link.chat_id == ticket.chat_id)


async def open_card_update(billing: Billing, ticket: CardTicket) -> str:
    """Make the billing-portal session a verified card link opens, and return its URL.

    Raises NotLinked when the chat no longer links that customer (nothing is asked of Stripe
    then), StripeProblem or NotFound when Stripe cannot make the session (nothing changed).
    """
    async with billing.db.read() as session:
        linked = await still_linked(session, ticket)
    if not linked:
        raise NotLinked("the card link's chat is no longer linked to its customer")
    return await card_update_url(billing, customer_id=ticket.customer_id, locale=ticket.locale)
