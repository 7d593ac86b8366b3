"""Cancel with a reason, one save offer per subscription, resume and unpause."""

from __future__ import annotations

import dataclasses

import pytest

from billing import cancellation
from billing.cancellation import OfferNotMade
from billing.errors import InvalidRequest, NotYours
from billing.subscriptions import live_overview
from bot.demo import add_save_coupon
from tests.billing.conftest import Shop

DAY = 86400


@pytest.fixture
def offers(shop: Shop) -> Shop:
    """The shop with a save coupon (STAY25) and pauses of 30 or 60 days."""
    add_save_coupon(shop.sandbox)
    shop.billing.catalog = dataclasses.replace(shop.billing.catalog, save_coupon="STAY25",
                                               pause_days=(30, 60))
    return shop


async def test_too_expensive_offers_the_coupon_once(offers: Shop) -> None:
    """The coupon is offered once; the offer is remembered in Stripe's metadata."""
    customer = offers.customer()
    offer = await cancellation.make_offer(offers.billing, customer_id=customer,
                                          reason="too_expensive")
    assert (offer.kind, offer.coupon_id, offer.percent_off) == ("coupon", "STAY25", 25)
    assert offers.subscription(customer)["metadata"]["portier_offer"] == "coupon"
    again = await cancellation.make_offer(offers.billing, customer_id=customer,
                                          reason="too_expensive")
    assert again.kind == "none"


async def test_accepting_the_coupon_discounts_the_subscription(offers: Shop) -> None:
    """Accepting applies the coupon as a discount that the overview names."""
    customer = offers.customer()
    await cancellation.make_offer(offers.billing, customer_id=customer, reason="too_expensive")
    await cancellation.accept_coupon(offers.billing, customer_id=customer)
    sub = offers.subscription(customer)
    assert len(sub["discounts"]) == 1
    overview = await live_overview(offers.billing, customer_id=customer)
    assert overview is not None and overview.discount_coupon == "STAY25"
    assert overview.discount_name == "25% off for 3 months"
    assert overview.next_amount == 2175


async def test_offers_need_to_have_been_made(offers: Shop) -> None:
    """A coupon or pause that was never offered is refused and changes nothing."""
    customer = offers.customer()
    with pytest.raises(OfferNotMade):
        await cancellation.accept_coupon(offers.billing, customer_id=customer)
    await cancellation.make_offer(offers.billing, customer_id=customer, reason="unused")
    with pytest.raises(OfferNotMade):
        await cancellation.accept_pause(offers.billing, customer_id=customer, days=365)
    sub = offers.subscription(customer)
    assert sub["discounts"] == [] and sub["pause_collection"] is None


async def test_without_coupon_a_cheaper_plan(offers: Shop) -> None:
    """Without a save coupon, too expensive offers the next plan down at the same interval."""
    offers.billing.catalog = dataclasses.replace(offers.billing.catalog, save_coupon=None)
    customer = offers.customer(plan="pro_yearly")
    offer = await cancellation.make_offer(offers.billing, customer_id=customer,
                                          reason="too_expensive")
    assert offer.kind == "plan" and offer.plan_key == "basic"
    assert offer.price is not None and offer.price.lookup_key == "basic_yearly"


async def test_pause_and_resume_early(offers: Shop) -> None:
    """Unused → pause for a chosen length (void invoices meanwhile); unpause ends it."""
    customer = offers.customer()
    offer = await cancellation.make_offer(offers.billing, customer_id=customer, reason="unused")
    assert offer.kind == "pause" and offer.pause_days == (30, 60)
    outcome = await cancellation.accept_pause(offers.billing, customer_id=customer, days=60)
    pause = offers.subscription(customer)["pause_collection"]
    assert pause["behavior"] == "void" and outcome.until is not None
    assert pause["resumes_at"] == int(outcome.until.timestamp())
    sub_id = offers.subscription(customer)["id"]
    await cancellation.unpause(offers.billing, customer_id=customer, subscription_id=sub_id)
    assert offers.subscription(customer)["pause_collection"] is None


async def test_other_reasons_get_no_offer(offers: Shop) -> None:
    """Reasons other than too expensive and unused go straight to the confirm."""
    customer = offers.customer()
    for reason in ("switched_service", "missing_features", "other"):
        offer = await cancellation.make_offer(offers.billing, customer_id=customer,
                                              reason=reason)
        assert offer.kind == "none"
    assert "portier_offer" not in offers.subscription(customer)["metadata"]
    with pytest.raises(InvalidRequest):
        await cancellation.make_offer(offers.billing, customer_id=customer, reason="hate_it")


async def test_cancel_records_feedback_and_resume_undoes(offers: Shop) -> None:
    """Cancel at period end records feedback and comment; resume undoes; a new intent re-cancels."""
    customer = offers.customer()
    outcome = await cancellation.cancel_at_period_end(
        offers.billing, customer_id=customer, reason="missing_features",
        comment="No dark mode", intent="a")
    sub = offers.subscription(customer)
    assert sub["cancel_at_period_end"] is True
    assert sub["cancellation_details"]["feedback"] == "missing_features"
    assert sub["cancellation_details"]["comment"] == "No dark mode"
    assert outcome.until is not None
    assert int(outcome.until.timestamp()) == sub["items"]["data"][0]["current_period_end"]
    await cancellation.resume(offers.billing, customer_id=customer, subscription_id=sub["id"])
    assert offers.subscription(customer)["cancel_at_period_end"] is False
    await cancellation.cancel_at_period_end(offers.billing, customer_id=customer,
                                            reason="missing_features", comment="No dark mode",
                                            intent="b")
    assert offers.subscription(customer)["cancel_at_period_end"] is True


async def test_resume_refuses_someone_elses_subscription(offers: Shop) -> None:
    """Resume naming another customer's subscription raises NotYours."""
    owner = offers.customer()
    await cancellation.cancel_at_period_end(offers.billing, customer_id=owner, reason="unused",
                                            comment=None, intent="x")
    other = offers.customer(email="bob@example.com")
    with pytest.raises(NotYours):
        await cancellation.resume(offers.billing, customer_id=other,
                                  subscription_id=offers.subscription(owner)["id"])
    assert offers.subscription(owner)["cancel_at_period_end"] is True


async def test_cancel_releases_a_scheduled_change(offers: Shop) -> None:
    """Cancelling drops a change queued by a schedule (Stripe refuses cancels it manages)."""
    from billing import changes

    customer = offers.customer()
    preview = await changes.preview(offers.billing, customer_id=customer, plan_key="basic",
                                    interval="month")
    await changes.confirm(offers.billing, customer_id=customer, plan_key="basic",
                          interval="month", proration_date=preview.proration_date,
                          amount_today=0, next_amount=preview.next_amount)
    assert offers.subscription(customer)["schedule"]
    await cancellation.cancel_at_period_end(offers.billing, customer_id=customer,
                                            reason="other", comment=None, intent="s")
    sub = offers.subscription(customer)
    assert sub["schedule"] is None and sub["cancel_at_period_end"] is True
