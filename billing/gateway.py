"""The Stripe gateway: the one place that calls Stripe's API.

Every call uses the SDK's async methods on a shared HTTPX client, the API version the SDK
ships with, and (for writes) an idempotency key derived from the user's intent. Stripe's
errors become `billing.errors` so handlers can answer in plain words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import stripe

from billing.errors import (
    CardDeclined,
    InvalidRequest,
    NotFound,
    RateLimited,
    StripeAuthFailed,
    StripeUnavailable,
)

API_VERSION = stripe.api_version
# An invoice's payments with their PaymentIntents expanded (`payments` itself is includable).
PAYMENT_INTENTS = "payments.data.payment.payment_intent"
T = TypeVar("T")


def idempotency_key(*parts: object) -> str:
    """Derive a stable idempotency key from the parts of a user's intent."""
    raw = "\x1f".join(str(p) for p in parts)
    return "portier-" + hashlib.sha256(raw.encode()).hexdigest()[:48]


def _translate(error: stripe.StripeError) -> Exception:
    if isinstance(error, stripe.CardError):
        reason = getattr(error, "code", None) or "card_declined"
        decline = (error.error.decline_code if error.error else None) or reason
        return CardDeclined(decline, error.user_message or "")
    if isinstance(error, stripe.RateLimitError):
        return RateLimited("Stripe rate limit reached")
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return StripeAuthFailed("Stripe rejected the API key")
    if isinstance(error, stripe.InvalidRequestError):
        if error.code == "resource_missing":
            return NotFound(error.param or "object")
        return InvalidRequest(error.code or "invalid_request")
    if isinstance(error, stripe.IdempotencyError):
        return InvalidRequest("idempotency_conflict")
    return StripeUnavailable(type(error).__name__)


def _price_id(price: Any) -> str:
    return price if isinstance(price, str) else str(price.id)


class StripeGateway:
    """Async access to the Stripe endpoints Portier uses."""

    def __init__(self, api_key: str, *, api_base: str = "https://api.stripe.com",
                 max_retries: int = 2) -> None:
        self._http = stripe.HTTPXClient(timeout=30)
        self._client = stripe.StripeClient(
            api_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=self._http,
            max_network_retries=max_retries,
        )
        self.requests = 0

    @property
    def v1(self) -> Any:
        """Give read access to the SDK's v1 services (for the billing modules only)."""
        return self._client.v1

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Call one SDK coroutine function, counting it and translating Stripe's errors."""
        self.requests += 1
        try:
            return await fn(*args, **kwargs)
        except stripe.StripeError as error:
            raise _translate(error) from error

    async def write(self, fn: Callable[..., Awaitable[T]], *args: Any, key: str,
                    **kwargs: Any) -> T:
        """Call a writing SDK method with an idempotency key."""
        return await self.call(fn, *args, options={"idempotency_key": key}, **kwargs)

    # -- reads -----------------------------------------------------------------------------

    async def prices_by_lookup_keys(self, keys: list[str]) -> list[stripe.Price]:
        """Return the active prices with these lookup keys, their products expanded."""
        found: list[stripe.Price] = []
        for start in range(0, len(keys), 10):  # Stripe accepts at most 10 lookup keys a call
            page = await self.call(self.v1.prices.list_async, {
                "lookup_keys": keys[start:start + 10], "active": True,
                "expand": ["data.product"], "limit": 100})
            found.extend(page.data)
        return found

    async def customer(self, customer_id: str) -> stripe.Customer:
        """Return a customer (NotFound for an unknown or deleted one)."""
        customer: stripe.Customer = await self.call(
            self.v1.customers.retrieve_async, customer_id,
            {"expand": ["invoice_settings.default_payment_method"]})
        if getattr(customer, "deleted", False):
            raise NotFound("customer")
        return customer

    async def subscriptions(self, customer_id: str) -> list[stripe.Subscription]:
        """Return the customer's subscriptions, newest first, with their cards expanded."""
        # The customer's default card comes along, saving a second request for it.
        page = await self.call(self.v1.subscriptions.list_async, {
            "customer": customer_id, "status": "all", "limit": 10,
            "expand": ["data.default_payment_method",
                       "data.customer.invoice_settings.default_payment_method",
                       "data.schedule", "data.discounts", "data.discounts.source.coupon"]})
        return list(page.data)

    async def subscription(self, subscription_id: str) -> stripe.Subscription:
        """Return one subscription (NotFound for an unknown one)."""
        subscription: stripe.Subscription = await self.call(
            self.v1.subscriptions.retrieve_async, subscription_id)
        return subscription

    async def schedule(self, schedule_id: str) -> stripe.SubscriptionSchedule:
        """Return one subscription schedule (NotFound for an unknown one)."""
        schedule: stripe.SubscriptionSchedule = await self.call(
            self.v1.subscription_schedules.retrieve_async, schedule_id)
        return schedule

    async def coupon(self, coupon_id: str) -> stripe.Coupon:
        """Return a coupon (NotFound for an unknown one)."""
        coupon: stripe.Coupon = await self.call(self.v1.coupons.retrieve_async, coupon_id)
        return coupon

    async def preview_change(self, subscription_id: str, *, items: list[dict[str, Any]],
                             proration_behavior: str,
                             proration_date: int | None) -> stripe.Invoice:
        """Return Stripe's preview of the invoice an items change would make."""
        details: dict[str, Any] = {"items": items, "proration_behavior": proration_behavior}
        if proration_date is not None:
            details["proration_date"] = proration_date
        invoice: stripe.Invoice = await self.call(self.v1.invoices.create_preview_async, {
            "subscription": subscription_id, "subscription_details": details})
        return invoice

    async def upcoming_invoice(self, customer_id: str, subscription_id: str) -> stripe.Invoice:
        """Return Stripe's preview of the subscription's next invoice."""
        invoice: stripe.Invoice = await self.call(self.v1.invoices.create_preview_async, {
            "customer": customer_id, "subscription": subscription_id})
        return invoice

    async def invoices(self, customer_id: str, *, limit: int,
                       starting_after: str | None = None) -> stripe.ListObject[stripe.Invoice]:
        """Return one page of the customer's invoices, newest first."""
        params: dict[str, Any] = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page: stripe.ListObject[stripe.Invoice] = await self.call(
            self.v1.invoices.list_async, params)
        return page

    async def invoice(self, invoice_id: str, *, payments: bool = False) -> stripe.Invoice:
        """Return one invoice; with `payments`, also its payments and their PaymentIntents.

        `payments` is an includable field (not returned unless expanded); expanding the
        PaymentIntents below it brings each one's `last_payment_error`, which says why the
        last charge failed (`decline_code`, e.g. insufficient_funds).
        """
        params = {"expand": [PAYMENT_INTENTS]} if payments else None
        invoice: stripe.Invoice = await self.call(
            self.v1.invoices.retrieve_async, invoice_id, params)
        return invoice

    async def checkout_session(self, session_id: str) -> stripe.checkout.Session:
        """Return a Checkout Session."""
        session: stripe.checkout.Session = await self.call(
            self.v1.checkout.sessions.retrieve_async, session_id)
        return session

    # -- writes ----------------------------------------------------------------------------

    async def create_checkout(self, *, price_id: str, customer_id: str | None,
                              client_reference_id: str, metadata: dict[str, str],
                              success_url: str, cancel_url: str, locale: str,
                              key: str) -> stripe.checkout.Session:
        """Create a subscription-mode Checkout Session for one price."""
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": 1}],
            "client_reference_id": client_reference_id,
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
            "locale": locale,
        }
        if customer_id:
            params["customer"] = customer_id
        session: stripe.checkout.Session = await self.write(
            self.v1.checkout.sessions.create_async, params, key=key)
        return session

    async def create_card_update(self, *, customer_id: str, return_url: str, locale: str,
                                 key: str) -> stripe.billing_portal.Session:
        """Create a billing-portal session that goes straight to updating the card."""
        session: stripe.billing_portal.Session = await self.write(
            self.v1.billing_portal.sessions.create_async, {
                "customer": customer_id, "return_url": return_url, "locale": locale,
                "flow_data": {"type": "payment_method_update"}}, key=key)
        return session

    async def pay_invoice(self, invoice_id: str, *, key: str) -> stripe.Invoice:
        """Attempt to pay an open invoice with the customer's default card."""
        invoice: stripe.Invoice = await self.write(self.v1.invoices.pay_async, invoice_id, key=key)
        return invoice

    async def update_subscription(self, subscription_id: str, params: dict[str, Any], *,
                                  key: str) -> stripe.Subscription:
        """Update a subscription (items, cancel, pause, discounts, metadata) once per key."""
        subscription: stripe.Subscription = await self.write(
            self.v1.subscriptions.update_async, subscription_id, params, key=key)
        return subscription

    async def schedule_price(self, subscription_id: str, *, price_id: str, quantity: int,
                             key: str) -> stripe.SubscriptionSchedule:
        """Switch the subscription to a price at its period end through a schedule."""
        schedule: stripe.SubscriptionSchedule = await self.write(
            self.v1.subscription_schedules.create_async,
            {"from_subscription": subscription_id}, key=key + "-create")
        current = schedule.phases[0]
        phases = [
            {"items": [{"price": _price_id(i.price), "quantity": i.quantity or 1}
                       for i in current["items"]],
             "start_date": current.start_date, "end_date": current.end_date},
            {"items": [{"price": price_id, "quantity": quantity}]},
        ]
        updated: stripe.SubscriptionSchedule = await self.write(
            self.v1.subscription_schedules.update_async, schedule.id,
            {"end_behavior": "release", "phases": phases}, key=key + "-phases")
        return updated

    async def release_schedule(self, schedule_id: str, *, key: str) -> None:
        """Release a schedule: the subscription carries on as it is now."""
        await self.write(self.v1.subscription_schedules.release_async, schedule_id, key=key)

    async def close(self) -> None:
        """Release the HTTP client's connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]
