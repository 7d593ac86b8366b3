"""The Stripe gateway: the one place that calls Stripe's API.

Every call uses the SDK's async methods on a shared HTTPX client, the API version the SDK
ships with, and (for writes) an idempotency key derived from the user's intent. Stripe's
errors become `billing.errors` so handlers can answer in plain words.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import stripe

from billing.cards import SavedCard
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


SUBSCRIPTION_EXPAND = ["default_payment_method", "schedule", "discounts",
                       "discounts.source.coupon"]
CUSTOMER_EXPAND = ["invoice_settings.default_payment_method"]


def _data(paths: list[str]) -> list[str]:
    return [f"data.{path}" for path in paths]


def plain(obj: Any) -> dict[str, Any]:
    """Return a Stripe object as plain nested dicts (decimals back to Stripe's strings)."""
    to_dict = getattr(obj, "to_dict", None)
    return dict(to_dict(for_json=True)) if callable(to_dict) else dict(obj)


def ref_id(value: Any) -> str | None:
    """Return the id of a reference, expanded (an object) or not (an id)."""
    if isinstance(value, str):
        return value
    return str(value["id"]) if isinstance(value, Mapping) and value.get("id") else None


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
        self.errors: Counter[str] = Counter()  # failed requests by the error they became

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
            translated = _translate(error)
            self.errors[type(translated).__name__] += 1
            raise translated from error

    async def write(self, fn: Callable[..., Awaitable[T]], *args: Any, key: str,
                    **kwargs: Any) -> T:
        """Call a writing SDK method with an idempotency key."""
        return await self.call(fn, *args, options={"idempotency_key": key}, **kwargs)

    # -- reads -----------------------------------------------------------------------------
    # Reads return plain nested dicts (Stripe's JSON), expanded with what the mirror keeps:
    # no other module names Stripe's parameters, expand paths or SDK services.

    async def prices_by_lookup_keys(self, keys: list[str]) -> list[stripe.Price]:
        """Return the active prices with these lookup keys, their products expanded."""
        found: list[stripe.Price] = []
        for start in range(0, len(keys), 10):  # Stripe accepts at most 10 lookup keys a call
            page = await self.call(self.v1.prices.list_async, {
                "lookup_keys": keys[start:start + 10], "active": True,
                "expand": ["data.product"], "limit": 100})
            found.extend(page.data)
        return found

    async def customer(self, customer_id: str) -> dict[str, Any]:
        """Return a customer, default card expanded (NotFound for an unknown or deleted one)."""
        customer = plain(await self.call(self.v1.customers.retrieve_async, customer_id,
                                         {"expand": CUSTOMER_EXPAND}))
        if customer.get("deleted"):
            raise NotFound("customer")
        return customer

    async def customer_or_deleted(self, customer_id: str) -> dict[str, Any]:
        """Return a customer as the mirror keeps it: deleted ones as `{"deleted": True}`."""
        return plain(await self.call(self.v1.customers.retrieve_async, customer_id,
                                     {"expand": CUSTOMER_EXPAND}))

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        """Return one subscription with its card, schedule and discounts expanded."""
        return plain(await self.call(self.v1.subscriptions.retrieve_async, subscription_id,
                                     {"expand": SUBSCRIPTION_EXPAND}))

    async def customer_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        """Return every subscription of a customer (any status), expanded as `subscription`."""
        return [s async for page in self._pages(self.v1.subscriptions.list_async, {
            "customer": customer_id, "status": "all", "expand": _data(SUBSCRIPTION_EXPAND)})
            for s in page]

    async def customer_invoices(self, customer_id: str) -> list[dict[str, Any]]:
        """Return every invoice of a customer, newest first."""
        return [i async for page in self._pages(self.v1.invoices.list_async,
                                                {"customer": customer_id}) for i in page]

    def every(self, kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield every subscription, invoice or customer of the account, a page at a time."""
        lists: dict[str, tuple[Any, dict[str, Any]]] = {
            "subscriptions": (self.v1.subscriptions.list_async,
                              {"status": "all", "expand": _data(SUBSCRIPTION_EXPAND)}),
            "invoices": (self.v1.invoices.list_async, {}),
            "customers": (self.v1.customers.list_async, {"expand": _data(CUSTOMER_EXPAND)}),
        }
        method, params = lists[kind]
        return self._pages(method, params)

    def events_since(self, since: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the events created at or after `since`, newest first, a page at a time."""
        return self._pages(self.v1.events.list_async, {"created": {"gte": since}})

    async def _pages(self, method: Any, params: dict[str, Any]
                     ) -> AsyncIterator[list[dict[str, Any]]]:
        params = dict(params, limit=100)
        while True:
            page = await self.call(method, params)
            items = [plain(item) for item in page.data]
            if items:
                yield items
            if not page.has_more or not items:
                return
            params["starting_after"] = items[-1]["id"]

    async def schedule(self, schedule_id: str) -> dict[str, Any]:
        """Return one subscription schedule (NotFound for an unknown one)."""
        return plain(await self.call(self.v1.subscription_schedules.retrieve_async, schedule_id))

    async def coupon(self, coupon_id: str) -> dict[str, Any]:
        """Return a coupon (NotFound for an unknown one)."""
        return plain(await self.call(self.v1.coupons.retrieve_async, coupon_id))

    async def preview_change(self, subscription_id: str, *, items: list[dict[str, Any]],
                             proration_behavior: str,
                             proration_date: int | None) -> dict[str, Any]:
        """Return Stripe's preview of the invoice an items change would make."""
        details: dict[str, Any] = {"items": items, "proration_behavior": proration_behavior}
        if proration_date is not None:
            details["proration_date"] = proration_date
        return plain(await self.call(self.v1.invoices.create_preview_async, {
            "subscription": subscription_id, "subscription_details": details}))

    async def next_invoice_amount(self, customer_id: str, subscription_id: str) -> int | None:
        """Return what the subscription's next invoice will ask, None when none is coming."""
        try:
            invoice = await self.call(self.v1.invoices.create_preview_async, {
                "customer": customer_id, "subscription": subscription_id})
        except (InvalidRequest, NotFound):
            return None
        return int(invoice.amount_due)

    async def invoice_page(self, customer_id: str, *, limit: int,
                           starting_after: str | None = None
                           ) -> tuple[list[dict[str, Any]], bool]:
        """Return one page of the customer's invoices, newest first, and whether more follow."""
        params: dict[str, Any] = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = await self.call(self.v1.invoices.list_async, params)
        return [plain(i) for i in page.data], bool(page.has_more)

    async def invoice(self, invoice_id: str, *, payments: bool = False) -> dict[str, Any]:
        """Return one invoice; with `payments`, also its payments and their PaymentIntents.

        `payments` is an includable field (not returned unless expanded); expanding the
        PaymentIntents below it brings each one's `last_payment_error`, which says why the
        last charge failed (`decline_code`, e.g. insufficient_funds).
        """
        params = {"expand": [PAYMENT_INTENTS]} if payments else None
        return plain(await self.call(self.v1.invoices.retrieve_async, invoice_id, params))

    async def payment_method_card(self, payment_method_id: str) -> dict[str, Any]:
        """Return a payment method (its `card`: brand, last4, exp_month, exp_year)."""
        return plain(await self.call(self.v1.payment_methods.retrieve_async, payment_method_id))

    async def checkout_session(self, session_id: str) -> dict[str, Any]:
        """Return a Checkout Session."""
        return plain(await self.call(self.v1.checkout.sessions.retrieve_async, session_id))

    async def payment_method(self, payment_method_id: str) -> SavedCard:
        """Return a payment method's card details and the customer it is attached to."""
        method = plain(await self.call(self.v1.payment_methods.retrieve_async,
                                       payment_method_id))
        card = method.get("card") or {}
        return SavedCard(id=str(method["id"]), customer_id=ref_id(method.get("customer")),
                         brand=str(card.get("brand") or method.get("type") or ""),
                         last4=str(card.get("last4") or ""),
                         exp_month=int(card.get("exp_month") or 0),
                         exp_year=int(card.get("exp_year") or 0))

    # -- writes ----------------------------------------------------------------------------
    # Every subscription write answers with the subscription expanded as `subscription`
    # returns it, so the mirror is written from the write's own response.

    async def create_checkout(self, *, price_id: str, customer_id: str | None,
                              client_reference_id: str, metadata: dict[str, str],
                              success_url: str, cancel_url: str, locale: str,
                              key: str, quantity: int = 1) -> dict[str, Any]:
        """Create a subscription-mode Checkout Session for one price (`quantity` seats)."""
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": quantity}],
            "client_reference_id": client_reference_id,
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
            "locale": locale,
        }
        if customer_id:
            params["customer"] = customer_id
        return plain(await self.write(self.v1.checkout.sessions.create_async, params, key=key))

    async def create_card_update(self, *, customer_id: str, return_url: str, locale: str,
                                 key: str) -> dict[str, Any]:
        """Create a billing-portal session that goes straight to updating the card."""
        return plain(await self.write(self.v1.billing_portal.sessions.create_async, {
            "customer": customer_id, "return_url": return_url, "locale": locale,
            "flow_data": {"type": "payment_method_update"}}, key=key))

    async def pay_invoice(self, invoice_id: str, *, key: str) -> dict[str, Any]:
        """Attempt to pay an open invoice with the card that pays it."""
        return plain(await self.write(self.v1.invoices.pay_async, invoice_id, key=key))

    async def _update(self, subscription_id: str, params: dict[str, Any], *, key: str,
                      expand: list[str] = SUBSCRIPTION_EXPAND) -> dict[str, Any]:
        return plain(await self.write(self.v1.subscriptions.update_async, subscription_id,
                                      dict(params, expand=expand), key=key))

    async def change_items(self, subscription_id: str, *, item_id: str, price_id: str,
                           quantity: int, proration_behavior: str, proration_date: int,
                           key: str) -> dict[str, Any]:
        """Switch the subscription's item to a price, applied only if its invoice is paid.

        `pending_if_incomplete`: an upgrade whose invoice is not paid leaves the plan as it
        was, as a pending update; the answer carries `latest_invoice` expanded.
        """
        return await self._update(subscription_id, {
            "items": [{"id": item_id, "price": price_id, "quantity": quantity}],
            "proration_behavior": proration_behavior, "proration_date": proration_date,
            "payment_behavior": "pending_if_incomplete",
        }, key=key, expand=[*SUBSCRIPTION_EXPAND, "latest_invoice"])

    async def remember(self, subscription_id: str, metadata: dict[str, str], *,
                       key: str) -> dict[str, Any]:
        """Store Portier's own marks in the subscription's metadata."""
        return await self._update(subscription_id, {"metadata": metadata}, key=key)

    async def apply_coupon(self, subscription_id: str, coupon_id: str, *,
                           metadata: dict[str, str], key: str) -> dict[str, Any]:
        """Put a coupon on the subscription (replacing its discounts)."""
        return await self._update(subscription_id, {
            "discounts": [{"coupon": coupon_id}], "metadata": metadata}, key=key)

    async def pause(self, subscription_id: str, *, resumes_at: int,
                    metadata: dict[str, str], key: str) -> dict[str, Any]:
        """Pause collection (invoices voided) until `resumes_at`."""
        return await self._update(subscription_id, {
            "pause_collection": {"behavior": "void", "resumes_at": resumes_at},
            "metadata": metadata}, key=key)

    async def unpause(self, subscription_id: str, *, key: str) -> dict[str, Any]:
        """Resume collection now."""
        return await self._update(subscription_id, {"pause_collection": ""}, key=key)

    async def cancel_at_period_end(self, subscription_id: str, *, feedback: str,
                                   comment: str, key: str) -> dict[str, Any]:
        """Cancel at the period end, with Stripe's feedback value and the comment."""
        return await self._update(subscription_id, {
            "cancel_at_period_end": True,
            "cancellation_details": {"feedback": feedback, "comment": comment}}, key=key)

    async def keep(self, subscription_id: str, *, cancel_at: bool, key: str) -> dict[str, Any]:
        """Undo a pending cancel: at the period end, or (`cancel_at`) at a set date."""
        params: dict[str, Any] = {"cancel_at": ""} if cancel_at else {
            "cancel_at_period_end": False}
        return await self._update(subscription_id, params, key=key)

    async def schedule_price(self, subscription_id: str, *, price_id: str, quantity: int,
                             key: str) -> dict[str, Any]:
        """Switch the subscription to a price at its period end through a schedule."""
        schedule = plain(await self.write(
            self.v1.subscription_schedules.create_async,
            {"from_subscription": subscription_id}, key=key + "-create"))
        current = schedule["phases"][0]
        phases = [
            {"items": [{"price": ref_id(i["price"]), "quantity": i.get("quantity") or 1}
                       for i in current["items"]],
             "start_date": current["start_date"], "end_date": current["end_date"]},
            {"items": [{"price": price_id, "quantity": quantity}]},
        ]
        return plain(await self.write(
            self.v1.subscription_schedules.update_async, schedule["id"],
            {"end_behavior": "release", "phases": phases}, key=key + "-phases"))

    async def release_schedule(self, schedule_id: str, *, key: str) -> None:
        """Release a schedule: the subscription carries on as it is now."""
        await self.write(self.v1.subscription_schedules.release_async, schedule_id, key=key)

    async def preview_quantity(self, subscription_id: str, *, item_id: str, quantity: int,
                               proration_date: int | None) -> dict[str, Any]:
        """Return the next invoice if the item had `quantity` (prorations on that invoice)."""
        details: dict[str, Any] = {"items": [{"id": item_id, "quantity": quantity}],
                                   "proration_behavior": "create_prorations"}
        if proration_date is not None:
            details["proration_date"] = proration_date
        return plain(await self.call(self.v1.invoices.create_preview_async, {
            "subscription": subscription_id, "subscription_details": details}))

    async def change_quantity(self, subscription_id: str, *, item_id: str, quantity: int,
                              proration_date: int, key: str) -> dict[str, Any]:
        """Set the item's quantity; the prorations wait for the next invoice.

        `create_prorations` makes no invoice per change: Stripe allows a subscription 20 new
        invoices a day but 200 quantity updates an hour (docs.stripe.com/rate-limits).
        """
        return await self._update(subscription_id, {
            "items": [{"id": item_id, "quantity": quantity}],
            "proration_behavior": "create_prorations", "proration_date": proration_date,
        }, key=key)

    async def close(self) -> None:
        """Release the HTTP client's connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]
