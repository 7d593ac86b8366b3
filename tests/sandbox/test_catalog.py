"""Catalog reads, list pagination and error mapping, through the real Stripe SDK."""

from __future__ import annotations

import pytest
import stripe

from sandbox import Sandbox


async def test_lists_prices_by_lookup_keys_with_products(client: stripe.StripeClient) -> None:
    """It finds prices by lookup key and expands their products."""
    prices = await client.v1.prices.list_async(
        {"lookup_keys": ["basic_monthly", "pro_yearly"], "expand": ["data.product"]}
    )
    found = {
        p.lookup_key: (p.unit_amount, p.currency, p.recurring.interval, p.product.name)
        for p in prices.data
    }
    assert found == {
        "basic_monthly": (900, "eur", "month", "Basic"),
        "pro_yearly": (29000, "eur", "year", "Pro"),
    }
    assert prices.object == "list" and prices.has_more is False


async def test_demo_catalog_has_team_seats(client: stripe.StripeClient) -> None:
    """It seeds a per-seat team price next to Basic and Pro."""
    prices = await client.v1.prices.list_async({"lookup_keys": ["team_seat_monthly"]})
    assert [p.unit_amount for p in prices.data] == [800]
    products = await client.v1.products.list_async({"active": True})
    assert sorted(p.name for p in products.data) == ["Basic", "Pro", "Team"]


async def test_paginates_newest_first(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """It pages with limit and starting_after and says when there is more."""
    for n in range(5):
        await client.v1.customers.create_async({"email": f"c{n}@example.com"})
    first = await client.v1.customers.list_async({"limit": 2})
    assert [c.email for c in first.data] == ["c4@example.com", "c3@example.com"]
    assert first.has_more is True
    second = await client.v1.customers.list_async({"limit": 2, "starting_after": first.data[-1].id})
    assert [c.email for c in second.data] == ["c2@example.com", "c1@example.com"]
    third = await client.v1.customers.list_async({"limit": 2, "starting_after": second.data[-1].id})
    assert [c.email for c in third.data] == ["c0@example.com"] and third.has_more is False
    every = [c.email async for c in first.auto_paging_iter()]
    assert len(every) == 5


async def test_unknown_id_is_invalid_request(client: stripe.StripeClient) -> None:
    """It answers 404 resource_missing, which the SDK raises as InvalidRequestError."""
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.customers.retrieve_async("cus_nope")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


async def test_bad_key_is_authentication_error(sandbox: Sandbox) -> None:
    """It refuses a wrong secret key with 401."""
    http = stripe.HTTPXClient()
    other = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": sandbox.public_url}, http_client=http
    )
    with pytest.raises(stripe.AuthenticationError):
        await other.v1.prices.list_async()
    await http.close_async()


async def test_injected_failures_map_to_sdk_errors(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """It can answer the next request with a 429 or a 500 on demand."""
    sandbox.fail_next(429, "invalid_request_error", "Too many requests", code="rate_limit")
    with pytest.raises(stripe.RateLimitError):
        await client.v1.prices.list_async()
    sandbox.fail_next(500, "api_error", "Boom", path_prefix="/v1/customers")
    await client.v1.prices.list_async()
    with pytest.raises(stripe.APIError):
        await client.v1.customers.list_async()


async def test_price_lookup_keys_are_unique(client: stripe.StripeClient) -> None:
    """It refuses a second price with a taken lookup key unless asked to transfer it."""
    product = await client.v1.products.create_async({"name": "Extra"})
    params = {
        "product": product.id,
        "unit_amount": 100,
        "currency": "eur",
        "recurring": {"interval": "month"},
        "lookup_key": "basic_monthly",
    }
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.prices.create_async(params)
    moved = await client.v1.prices.create_async({**params, "transfer_lookup_key": True})
    prices = await client.v1.prices.list_async({"lookup_keys": ["basic_monthly"]})
    assert [p.id for p in prices.data] == [moved.id]
