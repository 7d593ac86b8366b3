"""Save offers of the cancel flow, as the revenue figures count them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from billing.db import Database
from billing.models import utcnow
from billing.revenue import offer_accepted, offer_made
from billing.revenue_models import SaveOffer


async def _offers(db: Database) -> list[tuple[str, str, bool]]:
    async with db.read() as session:
        rows = await session.scalars(select(SaveOffer).order_by(SaveOffer.subscription_id))
        return [(r.subscription_id, r.kind, r.accepted_at is not None) for r in rows]


async def test_an_offer_is_recorded_once(db: Database) -> None:
    """Made twice, even at once (a double tap), an offer is one row and no error."""
    await asyncio.gather(*(offer_made(db, subscription_id="sub_1", kind="coupon")
                           for _ in range(3)))
    await offer_made(db, subscription_id="sub_1", kind="pause")
    assert await _offers(db) == [("sub_1", "coupon", False)]


async def test_only_an_offer_made_can_be_taken(db: Database) -> None:
    """Taking counts only where an offer was made; a plan change only for a plan offer of
    the last day."""
    await offer_accepted(db, subscription_id="sub_none")
    await offer_made(db, subscription_id="sub_coupon", kind="coupon")
    await offer_made(db, subscription_id="sub_plan", kind="plan")
    await offer_made(db, subscription_id="sub_old", kind="plan")
    async with db.session() as session:
        await session.execute(update(SaveOffer).where(SaveOffer.subscription_id == "sub_old")
                              .values(offered_at=utcnow() - timedelta(days=3)))
    for subscription_id in ("sub_coupon", "sub_plan", "sub_old"):
        await offer_accepted(db, subscription_id=subscription_id, kind="plan")
    assert await _offers(db) == [("sub_coupon", "coupon", False), ("sub_old", "plan", False),
                                 ("sub_plan", "plan", True)]
    await offer_accepted(db, subscription_id="sub_coupon")
    assert ("sub_coupon", "coupon", True) in await _offers(db)
