"""Stripe events: verified on the raw body, stored under their unique id, processed after.

Like dj-stripe: the endpoint only verifies and records; processing is idempotent on the event
id and dispatched through a registry of handlers per event type, and handlers re-read the
object from Stripe instead of trusting the payload (events arrive late and out of order).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import StripeProblem, WebhookRejected
from billing.models import StripeEvent, utcnow
from billing.services import Billing

log = logging.getLogger(__name__)
MAX_BODY = 512 * 1024

EventHandler = Callable[[Billing, AsyncSession, dict[str, Any]], Awaitable[None]]
_registry: dict[str, list[EventHandler]] = {}


def on(event_type: str) -> Callable[[EventHandler], EventHandler]:
    """Register a handler for one Stripe event type (several may share a type; they run in
    registration order, in one transaction)."""
    def register(handler: EventHandler) -> EventHandler:
        _registry.setdefault(event_type, []).append(handler)
        return handler
    return register


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """Check Stripe's signature on the raw body and return the event as a dict."""
    if len(payload) > MAX_BODY:
        raise WebhookRejected("body too large")
    if not signature:
        raise WebhookRejected("missing Stripe-Signature")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret,
                                              stripe.Webhook.DEFAULT_TOLERANCE)
        data: Any = json.loads(payload)
    except (ValueError, stripe.SignatureVerificationError):
        raise WebhookRejected("signature does not verify") from None
    # Signed is not well-formed: an array or null must not crash the endpoint.
    if (not isinstance(data, dict) or not isinstance(data.get("id"), str)
            or not isinstance(data.get("type"), str)):
        raise WebhookRejected("not an event")
    return data


async def record(session: AsyncSession, event: dict[str, Any]) -> bool:
    """Store an event once under its id; return False for a duplicate."""
    if await session.get(StripeEvent, event["id"]) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(StripeEvent(id=event["id"], type=event["type"],
                                    created=int(event.get("created") or 0), payload=event))
    except IntegrityError:  # the same event delivered twice at the same moment
        return False
    return True


async def process_pending(billing: Billing, *, limit: int = 50) -> int:
    """Process stored events in arrival order; return how many were handled."""
    async with billing.db.session() as session:
        ids = list(await session.scalars(
            select(StripeEvent.id).where(StripeEvent.status == "pending")
            .order_by(StripeEvent.received_at, StripeEvent.created).limit(limit)))
    for event_id in ids:
        await process_one(billing, event_id)
    return len(ids)


async def process_one(billing: Billing, event_id: str) -> None:
    """Process one stored event in its own transaction; record a failure for a retry."""
    try:
        async with billing.db.session() as session:
            row = await session.get(StripeEvent, event_id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            for handler in _registry.get(row.type, ()):
                await handler(billing, session, row.payload)
            row.status, row.processed_at = "processed", utcnow()
            row.attempts += 1
    except StripeProblem as error:
        log.warning("event %s failed: %s", event_id, type(error).__name__)
        await _failed(billing, event_id, type(error).__name__)
    except Exception:
        log.exception("event %s failed", event_id)
        await _failed(billing, event_id, "unexpected error")


async def _failed(billing: Billing, event_id: str, error: str) -> None:
    async with billing.db.session() as session:
        row = await session.get(StripeEvent, event_id)
        if row is not None:
            row.attempts += 1
            row.last_error = error
            if row.attempts >= 5:
                row.status = "failed"
