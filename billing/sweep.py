"""The sweep: store and process Stripe events that never reached the webhook.

Stripe retries a failed delivery for up to three days, but an endpoint that was down, moved
or misconfigured can still miss events; `/v1/events` keeps thirty days of them. The scheduler
calls `sweep_events` periodically: it lists the last `days` of events, stores each one not
stored yet (as the webhook would have, oldest first) and processes what is pending.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from billing.models import StripeEvent
from billing.services import Billing
from billing.webhooks import process_pending, record

DEFAULT_DAYS = 3


async def sweep_events(billing: Billing, *, days: int = DEFAULT_DAYS) -> int:
    """Store and process the events of the last `days` days never delivered; return how many."""
    since = int(time.time()) - days * 86400
    missing: list[dict[str, Any]] = []
    async for page in billing.gateway.events_since(since):
        ids = [event["id"] for event in page]
        async with billing.db.session() as session:
            stored = set(await session.scalars(select(StripeEvent.id).where(
                StripeEvent.id.in_(ids))))
        missing += [event for event in page if event["id"] not in stored]
    # Stripe lists newest first; store oldest first so arrival order follows Stripe's.
    missing.reverse()
    missing.sort(key=lambda event: int(event.get("created") or 0))
    added = 0
    async with billing.db.session() as session:
        for event in missing:
            added += await record(session, event)
    while await process_pending(billing):
        pass
    return added
