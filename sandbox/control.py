"""The Python face of the sandbox: seed it, move its clock, complete hosted pages."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from sandbox.errors import StripeError
from sandbox.expand import render
from sandbox.renewals import advance_to, run_due
from sandbox.resources import catalog, checkout, customers, events, invoices, portal
from sandbox.resources.subscriptions import new_subscription
from sandbox.store import Obj, Store
from sandbox.webhooks import WebhookSender


@dataclass
class _Injected:
    error: StripeError
    path_prefix: str | None


class Sandbox:
    """A stateful stand-in for Stripe's API, driven over HTTP or from Python."""

    def __init__(
        self,
        api_key: str = "sk_test_sandbox",
        webhook_secret: str = "whsec_test",
        webhook_url: str | None = None,
        public_url: str | None = None,
        after_final_retry: str = "canceled",
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.store = Store()
        self.sender = WebhookSender()
        self.store.on_event = self._deliver
        self.after_final_retry = after_final_retry
        self.public_url_fixed = public_url is not None
        self.store.public_url = (public_url or "http://127.0.0.1").rstrip("/")
        self._injected: deque[_Injected] = deque()
        self._app: Starlette | None = None
        self._webhook_id: str | None = None
        # Set to a list to keep every successful API answer (tests check their shapes).
        self.responses: list[Obj] | None = None
        # Seconds each /v1 request waits before it is served: a far or slow Stripe, for
        # benchmarks (`--latency`, POST /_sandbox/latency). Other requests still run meanwhile.
        self.latency = 0.0
        if webhook_url:
            self.set_webhook(webhook_url, webhook_secret)

    @property
    def app(self) -> Starlette:
        """Return the ASGI app (built once)."""
        if self._app is None:
            from sandbox.app import build_app

            self._app = build_app(self)
        return self._app

    @property
    def public_url(self) -> str:
        """Return the base URL of hosted pages."""
        return self.store.public_url

    @public_url.setter
    def public_url(self, value: str) -> None:
        self.store.public_url = value.rstrip("/")

    @property
    def after_final_retry(self) -> str:
        """Return what a subscription becomes after its last failed retry."""
        return self.store.after_final_retry

    @after_final_retry.setter
    def after_final_retry(self, value: str) -> None:
        # Stripe's "subscription status after all retries fail": cancel, mark unpaid, or leave.
        if value not in ("canceled", "unpaid", "past_due"):
            raise ValueError("after_final_retry must be canceled, unpaid or past_due")
        self.store.after_final_retry = value

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """Hold the lock; afterwards send the events made meanwhile as one batch."""
        try:
            with self.store.lock:
                yield
        finally:
            self.sender.flush()

    def webhook_mode(
        self, duplicate: int = 0, shuffle: bool = False, seed: int | None = None
    ) -> None:
        """Deliver each future event `duplicate` extra times, shuffling each batch if asked.

        A batch is the events of one API request or one control call (e.g. advance_time).
        `webhook_mode()` restores plain in-order delivery.
        """
        if duplicate < 0:
            raise ValueError("duplicate must be >= 0")
        self.sender.flush()
        self.sender.duplicate, self.sender.shuffle = duplicate, shuffle
        self.sender.rng = random.Random(seed)  # noqa: S311 - test ordering, not secrets

    def redeliver(
        self,
        event_ids: Iterable[str] | None = None,
        times: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> list[str]:
        """Send stored events again (all, oldest first, by default), freshly signed.

        Each event goes `times` more times; `shuffle` mixes the order (reproducibly with
        `seed`). Returns the event ids in the order they are sent.
        """
        with self.store.lock:
            if event_ids is None:
                chosen = list(reversed(self.store.all("event")))
            else:
                chosen = [self.store.get(i, "event", "event") for i in event_ids]
            order = [event for event in chosen for _ in range(times)]
            if shuffle:
                random.Random(seed).shuffle(order)  # noqa: S311 - test ordering
            for event in order:
                for url, secret in events.endpoints_for(self.store, event["type"]):
                    self.sender.enqueue(render(self.store, event), url, secret, direct=True)
            return [event["id"] for event in order]

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Return the (method, path) of every Stripe API request served so far."""
        with self._batch():
            return list(self.store.requests)

    def now(self) -> int:
        """Return the sandbox clock (unix seconds)."""
        return self.store.now()

    def advance_time(self, seconds: int) -> int:
        """Move the clock forward, running renewals and retries on the way; return the new time."""
        with self._batch():
            advance_to(self.store, self.store.now() + int(seconds))
            return self.store.now()

    def set_webhook(self, url: str, secret: str | None = None) -> str:
        """Send every event, signed with `secret`, to `url` (replaces the previous one)."""
        with self._batch():
            if self._webhook_id is not None:
                events.delete_endpoint(self.store, {}, self._webhook_id)
            self.webhook_secret = secret or self.webhook_secret
            endpoint = events.create_endpoint(
                self.store, {"url": url, "enabled_events": ["*"]}, secret=self.webhook_secret
            )
            self._webhook_id = endpoint["id"]
            return str(endpoint["id"])

    def wait_webhooks_idle(self, timeout: float = 5.0) -> bool:
        """Block until queued webhook deliveries are done; False on timeout."""
        return self.sender.wait_idle(timeout)

    def add_price(
        self,
        product: str,
        lookup_key: str,
        unit_amount: int,
        interval: str | None = "month",
        currency: str = "eur",
        interval_count: int = 1,
    ) -> Obj:
        """Create a price (and its product, found or made by name); return the price."""
        with self._batch():
            found = self.store.all("product", lambda p: p["name"] == product)
            product_id = (
                found[0]["id"]
                if found
                else catalog.create_product(self.store, {"name": product})["id"]
            )
            params: dict[str, Any] = {
                "product": product_id,
                "unit_amount": str(unit_amount),
                "currency": currency,
                "lookup_key": lookup_key,
                "transfer_lookup_key": "true",
            }
            if interval:
                params["recurring"] = {"interval": interval, "interval_count": str(interval_count)}
            return catalog.create_price(self.store, params)

    def seed_catalog(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, Obj]:
        """Create prices from rows of product, lookup_key, unit_amount[, interval, currency]."""
        return {
            str(row["lookup_key"]): self.add_price(
                str(row["product"]),
                str(row["lookup_key"]),
                int(row["unit_amount"]),
                row.get("interval", "month"),
                str(row.get("currency", "eur")),
                int(row.get("interval_count", 1)),
            )
            for row in rows
        }

    def seed_demo_catalog(self) -> dict[str, Obj]:
        """Create the demo products Basic, Pro and Team seats with their prices."""
        from sandbox.demo import seed_demo_catalog

        return seed_demo_catalog(self)

    def create_customer(
        self, email: str | None = None, name: str | None = None, payment_method: str | None = None
    ) -> Obj:
        """Create a customer, optionally with a default card; return it."""
        with self._batch():
            customer = customers.new_customer(self.store, {"email": email, "name": name})
            if payment_method:
                customers.set_default_payment_method(self.store, customer, payment_method)
            return render(self.store, customer)

    def subscribe(
        self,
        customer_id: str,
        price_lookup_key: str,
        payment_method: str | None = "pm_card_visa",
        quantity: int = 1,
    ) -> Obj:
        """Subscribe a customer to a price by lookup key, paying the first invoice now."""
        with self._batch():
            run_due(self.store)
            customer = self.store.get(customer_id, "customer", param="customer")
            if payment_method:
                customers.set_default_payment_method(self.store, customer, payment_method)
            price = catalog.price_by_lookup_key(self.store, price_lookup_key)
            # As an API integration does: the customer's invoice default pays, the
            # subscription has no default_payment_method of its own.
            sub = new_subscription(
                self.store,
                customer,
                [(price, quantity)],
                payment_behavior="error_if_incomplete",
            )
            return render(self.store, sub)

    def complete_checkout(self, session_id: str, payment_method: str = "pm_card_visa") -> Obj:
        """Complete a Checkout Session as the hosted page does; raise StripeError on decline."""
        with self._batch():
            run_due(self.store)
            return render(self.store, checkout.complete(self.store, session_id, payment_method))

    def complete_portal(self, session_id: str, payment_method: str = "pm_card_visa") -> Obj:
        """Save a new default card through a portal session, as the hosted page does."""
        with self._batch():
            run_due(self.store)
            return render(self.store, portal.complete(self.store, session_id, payment_method))

    def pay_invoice(self, invoice_id: str, payment_method: str | None = None) -> Obj:
        """Pay an open invoice as its hosted page does; raise StripeError on decline."""
        with self._batch():
            run_due(self.store)
            invoice = self.store.get(invoice_id, "invoice")
            return render(self.store, invoices.pay(self.store, invoice, payment_method))

    def get(self, object_id: str) -> Obj:
        """Return a copy of any stored object by id."""
        with self._batch():
            return render(self.store, self.store.objects[object_id])

    def events(self, type_: str | None = None) -> list[Obj]:
        """Return recorded events, oldest first, optionally of one type."""
        with self._batch():
            found = self.store.all("event", lambda e: type_ is None or e["type"] == type_)
            return [render(self.store, e) for e in reversed(found)]

    def fail_next(
        self,
        status: int = 500,
        type_: str = "api_error",
        message: str = "An unknown error occurred",
        code: str | None = None,
        path_prefix: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next matching API request(s) with this error instead of serving them."""
        with self._batch():
            for _ in range(times):
                self._injected.append(
                    _Injected(StripeError(status, type_, message, code=code), path_prefix)
                )

    def take_injected_failure(self, path: str) -> StripeError | None:
        """Pop the first injected failure that applies to `path` (called by the app)."""
        for entry in list(self._injected):
            if entry.path_prefix is None or path.startswith(entry.path_prefix):
                self._injected.remove(entry)
                return entry.error
        return None

    def close(self) -> None:
        """Stop the webhook sender."""
        self.sender.stop()

    def _deliver(self, event: Obj) -> None:
        for url, secret in events.endpoints_for(self.store, event["type"]):
            self.sender.enqueue(event, url, secret)
