"""The customer's subscription as `/plan` shows it, and the hosted pages that change it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from billing.subscriptions import (
    Card,
    card_update_url,
    checkout_reference,
    get_overview,
    start_checkout,
)
from tests.billing.conftest import PUBLIC_URL, Shop


async def test_overview_of_an_active_subscription(shop: Shop) -> None:
    """It shows plan, amount, interval, status, renewal, card and next invoice."""
    customer = shop.customer(plan="pro_monthly")
    item = shop.subscription(customer)["items"]["data"][0]
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None
    assert overview.plan is not None and overview.plan.key == "pro"
    assert overview.plan_name == "Pro"
    assert (overview.amount, overview.currency) == (2900, "eur")
    assert (overview.interval, overview.interval_count, overview.quantity) == ("month", 1, 1)
    assert overview.status == "active"
    assert overview.current_period_end == datetime.fromtimestamp(
        item["current_period_end"], UTC)
    assert overview.card == Card(brand="visa", last4="4242", exp_month=12, exp_year=2034)
    assert (overview.next_amount, overview.next_currency) == (2900, "eur")
    assert not overview.cancel_at_period_end and overview.ends_at is None


async def test_overview_of_a_yearly_plan(shop: Shop) -> None:
    """It shows a yearly price with its interval."""
    customer = shop.customer(plan="basic_yearly", card="pm_card_mastercard")
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None and overview.plan is not None
    assert (overview.plan.key, overview.amount, overview.interval) == ("basic", 9000, "year")
    assert overview.card is not None and overview.card.brand == "mastercard"


async def test_no_subscription_gives_none(shop: Shop) -> None:
    """It returns None for a customer without a subscription."""
    assert await get_overview(shop.billing, customer_id=shop.customer(plan=None)) is None


async def test_a_canceled_subscription_is_not_current(shop: Shop) -> None:
    """It returns None when the only subscription has ended."""
    customer = shop.customer()
    gateway = shop.billing.gateway
    await gateway.call(gateway.v1.subscriptions.cancel_async, shop.subscription(customer)["id"])
    assert await get_overview(shop.billing, customer_id=customer) is None


async def test_past_due_after_a_failed_renewal(shop: Shop) -> None:
    """It shows past_due once a renewal was declined."""
    customer = shop.customer()
    await shop.fail_renewal(customer)
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None
    assert overview.status == "past_due"
    assert overview.card is not None and overview.card.last4 == "0341"


async def test_ending_subscription_shows_its_end(shop: Shop) -> None:
    """It shows when a subscription set to cancel at period end ends, and no next invoice."""
    customer = shop.customer()
    sub = shop.subscription(customer)
    gateway = shop.billing.gateway
    await gateway.call(gateway.v1.subscriptions.update_async, sub["id"],
                       {"cancel_at_period_end": True})
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None
    assert overview.cancel_at_period_end
    assert overview.ends_at == overview.current_period_end == datetime.fromtimestamp(
        sub["items"]["data"][0]["current_period_end"], UTC)
    assert overview.next_amount is None


async def test_card_from_the_customer_when_the_subscription_has_none(shop: Shop) -> None:
    """It falls back to the customer's default card."""
    customer = shop.customer()
    gateway = shop.billing.gateway
    await gateway.call(gateway.v1.subscriptions.update_async, shop.subscription(customer)["id"],
                       {"default_payment_method": ""})
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None and overview.card is not None
    assert overview.card.last4 == "4242"


async def test_checkout_returns_a_hosted_url(shop: Shop) -> None:
    """It creates a subscription Checkout Session tied to the chat user."""
    price = shop.billing.prices.by_key["basic_monthly"]
    url = await start_checkout(shop.billing, channel="telegram", user_id="7", chat_id="70",
                               price=price, customer_id=None, locale="de")
    assert url.startswith(f"{shop.base_url}/pay/checkout/cs_test_")
    session = shop.sandbox.get(url.rsplit("/", 1)[1])
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == checkout_reference("telegram", "7")
    assert session["metadata"] == {"portier_channel": "telegram", "portier_user": "7",
                                   "portier_chat": "70"}
    assert session["success_url"].startswith(f"{PUBLIC_URL}/return?session_id=")
    assert session["locale"] == "de"


async def test_checkout_for_a_known_customer(shop: Shop) -> None:
    """It names the known customer on the Checkout Session."""
    customer = shop.customer(plan=None)
    url = await start_checkout(shop.billing, channel="telegram", user_id="7", chat_id="7",
                               price=shop.billing.prices.by_key["pro_yearly"],
                               customer_id=customer, locale="en")
    assert shop.sandbox.get(url.rsplit("/", 1)[1])["customer"] == customer


async def test_a_double_tap_reuses_the_checkout_session(shop: Shop) -> None:
    """It reuses the session when the same intent is sent twice within the hour."""
    price = shop.billing.prices.by_key["basic_monthly"]
    for _ in range(2):  # retry once if the hour turned between the taps
        hour = int(time.time() // 3600)
        urls = [await start_checkout(shop.billing, channel="telegram", user_id="7", chat_id="7",
                                     price=price, customer_id=None, locale="en")
                for _ in range(2)]
        if int(time.time() // 3600) == hour:
            break
    assert urls[0] == urls[1]
    other = await start_checkout(shop.billing, channel="telegram", user_id="8", chat_id="8",
                                 price=price, customer_id=None, locale="en")
    assert other != urls[0]
    assert len(shop.sandbox.store.all("checkout.session")) == 2


async def test_card_update_opens_the_payment_method_flow(shop: Shop) -> None:
    """It creates a billing-portal session that goes straight to updating the card."""
    customer = shop.customer()
    url = await card_update_url(shop.billing, customer_id=customer, locale="en")
    assert url.startswith(f"{shop.base_url}/pay/portal/bps_")
    session = shop.sandbox.get(url.rsplit("/", 1)[1])
    assert session["customer"] == customer
    assert session["flow"]["type"] == "payment_method_update"
    assert session["return_url"] == f"{PUBLIC_URL}/return?lang=en"
