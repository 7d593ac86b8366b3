"""The Stripe gateway: pinned version, idempotency keys, and Stripe's errors in billing words."""

from __future__ import annotations

import socket

import pytest
import stripe

from billing.errors import (
    CardDeclined,
    InvalidRequest,
    NotFound,
    RateLimited,
    StripeAuthFailed,
    StripeUnavailable,
)
from billing.gateway import API_VERSION, StripeGateway, idempotency_key
from tests.billing.conftest import API_KEY, Shop


async def _checkout(shop: Shop, key: str, user: str = "42") -> stripe.checkout.Session:
    return await shop.billing.gateway.create_checkout(
        price_id=shop.billing.prices.by_key["basic_monthly"].id, customer_id=None,
        client_reference_id=f"tg-{user}", metadata={"portier_user": user},
        success_url="https://portier.example/return", cancel_url="https://portier.example/return",
        locale="en", key=key)


def _sessions(shop: Shop) -> list[dict[str, object]]:
    return shop.sandbox.store.all("checkout.session")


async def test_pins_the_sdk_api_version(shop: Shop) -> None:
    """It sends the API version the SDK ships with on every request."""
    assert API_VERSION == stripe.api_version
    await shop.billing.gateway.customer(shop.customer(plan=None))
    api_calls = [h for h in shop.sandbox.log.seen if "authorization" in h]
    assert api_calls
    assert all(h.get("stripe-version") == API_VERSION for h in api_calls)


def test_idempotency_keys_follow_the_intent() -> None:
    """It derives the same key for the same intent and different keys otherwise."""
    key = idempotency_key("checkout", "tg", "42", "price_1", 7)
    assert key == idempotency_key("checkout", "tg", "42", "price_1", 7)
    assert key != idempotency_key("checkout", "tg", "43", "price_1", 7)
    assert key != idempotency_key("checkout", "tg", "42", "price_1", 8)
    assert key != idempotency_key("card", "tg", "42", "price_1", 7)
    assert key.startswith("portier-") and len(key) <= 255


async def test_same_key_creates_one_checkout_session(shop: Shop) -> None:
    """It creates one Checkout Session when the same intent is sent twice."""
    first = await _checkout(shop, "intent-1")
    second = await _checkout(shop, "intent-1")
    assert first["id"] == second["id"]
    assert len(_sessions(shop)) == 1
    other = await _checkout(shop, "intent-2")
    assert other["id"] != first["id"]
    assert len(_sessions(shop)) == 2


async def test_reused_key_with_other_params_is_invalid(shop: Shop) -> None:
    """It reports a key reused for a different request as an invalid request."""
    await _checkout(shop, "intent-3", user="1")
    with pytest.raises(InvalidRequest, match="idempotency_conflict"):
        await _checkout(shop, "intent-3", user="2")
    assert len(_sessions(shop)) == 1


async def test_card_decline_carries_the_decline_reason(shop: Shop) -> None:
    """It turns a declined charge into CardDeclined with Stripe's decline code."""
    customer = shop.customer()
    invoice = await shop.fail_renewal(customer)
    with pytest.raises(CardDeclined) as caught:
        await shop.billing.gateway.pay_invoice(invoice, key="pay-declined")
    assert caught.value.reason == "generic_decline"
    assert caught.value.code == "card_declined"


async def test_insufficient_funds_is_named(shop: Shop) -> None:
    """It keeps the specific decline code of an insufficient-funds card."""
    customer = shop.customer()
    invoice = await shop.fail_renewal(customer)
    await shop.switch_card(customer, "pm_card_chargeDeclinedInsufficientFunds")
    with pytest.raises(CardDeclined) as caught:
        await shop.billing.gateway.pay_invoice(invoice, key="pay-insufficient")
    assert caught.value.reason == "insufficient_funds"


async def test_rate_limit(shop: Shop) -> None:
    """It turns Stripe's 429 into RateLimited."""
    customer = shop.customer(plan=None)
    shop.sandbox.fail_next(429, "rate_limit_error", "Too many requests", code="rate_limit",
                           path_prefix="/v1/customers", times=3)
    with pytest.raises(RateLimited):
        await shop.billing.gateway.customer(customer)


async def test_server_errors_are_retried_then_unavailable(shop: Shop) -> None:
    """It retries a 500 and reports StripeUnavailable when Stripe keeps failing."""
    customer = shop.customer(plan=None)
    shop.sandbox.fail_next(500, path_prefix="/v1/customers", times=1)
    assert (await shop.billing.gateway.customer(customer))["id"] == customer
    shop.sandbox.fail_next(500, path_prefix="/v1/customers", times=3)
    with pytest.raises(StripeUnavailable):
        await shop.billing.gateway.customer(customer)


async def test_unreachable_stripe_is_unavailable() -> None:
    """It reports StripeUnavailable when nothing listens at the API base."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{port}", max_retries=0)
    try:
        with pytest.raises(StripeUnavailable):
            await gateway.customer("cus_nobody")
    finally:
        await gateway.close()


async def test_unknown_object_is_not_found(shop: Shop) -> None:
    """It turns resource_missing into NotFound."""
    with pytest.raises(NotFound):
        await shop.billing.gateway.customer("cus_doesnotexist")
    with pytest.raises(NotFound):
        await shop.billing.gateway.invoice("in_doesnotexist")


async def test_deleted_customer_is_not_found(shop: Shop) -> None:
    """It treats a deleted customer as not found."""
    customer = shop.customer(plan=None)
    gateway = shop.billing.gateway
    await gateway.call(gateway.v1.customers.delete_async, customer)
    with pytest.raises(NotFound):
        await gateway.customer(customer)


async def test_bad_params_are_invalid_requests(shop: Shop) -> None:
    """It turns a refused parameter into InvalidRequest."""
    customer = shop.customer(plan=None)
    with pytest.raises(InvalidRequest):
        await shop.billing.gateway.invoice_page(customer, limit=1000)


async def test_wrong_key_is_auth_failure(sandbox_server: tuple[object, str]) -> None:
    """It turns a rejected API key into StripeAuthFailed."""
    gateway = StripeGateway("sk_test_wrong", api_base=sandbox_server[1])
    try:
        with pytest.raises(StripeAuthFailed):
            await gateway.customer("cus_any")
    finally:
        await gateway.close()


async def test_requests_are_counted(shop: Shop) -> None:
    """It counts every call it makes, successful or not."""
    gateway = shop.billing.gateway
    customer = shop.customer(plan=None)
    before, served = gateway.requests, len(shop.sandbox.requests)
    await gateway.customer(customer)
    await gateway.customer_subscriptions(customer)
    with pytest.raises(NotFound):
        await gateway.invoice("in_missing")
    assert gateway.requests == before + 3
    assert len(shop.sandbox.requests) == served + 3


async def test_prices_resolve_in_chunks_of_ten(shop: Shop) -> None:
    """It looks up more than ten lookup keys in several calls, as Stripe allows ten a call."""
    keys = [f"extra_{n}" for n in range(12)]
    for n, key in enumerate(keys):
        shop.sandbox.add_price("Extra", key, 100 + n)
    found = await shop.billing.gateway.prices_by_lookup_keys(keys)
    assert sorted(p.lookup_key for p in found) == sorted(keys)
    assert all(p.product.name == "Extra" for p in found)


async def test_a_payment_method_reads_as_a_saved_card(shop: Shop) -> None:
    """payment_method() gives brand, last four, expiry and the customer as plain values."""
    customer = shop.customer()
    method = shop.sandbox.get(customer)["invoice_settings"]["default_payment_method"]
    card = await shop.billing.gateway.payment_method(method)
    assert (card.id, card.customer_id, card.brand, card.last4, card.exp_month) == (
        method, customer, "visa", "4242", 12)
    assert card.exp_year > 2025
    with pytest.raises(NotFound):
        await shop.billing.gateway.payment_method("pm_missing")
