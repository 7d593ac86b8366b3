"""In-memory state of the sandbox: objects by id, ids, the clock, idempotency, request log."""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import invalid, missing

_ALPHABET = string.ascii_letters + string.digits

Obj = dict[str, Any]
# (HTTP method, path template such as "/v1/customers/{id}", handler(store, params, **path)).
RouteSpec = tuple[str, str, Callable[..., Obj]]


def new_id(prefix: str, length: int = 24) -> str:
    """Return a Stripe-looking id such as `cus_NffrFeUfNV2Hib`."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class IdempotentResult:
    """A stored answer replayed for a repeated Idempotency-Key."""

    fingerprint: tuple[str, str, str]
    status: int
    body: Obj


@dataclass
class Store:
    """Every object the sandbox knows, guarded by one re-entrant lock."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    objects: dict[str, Obj] = field(default_factory=dict)
    offset: int = 0
    idempotency: dict[tuple[str, str], IdempotentResult] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Ids of magic test tokens ("pm_card_visa") resolve to the card behaviour they stand for.
    card_kind: dict[str, str] = field(default_factory=dict)
    # Per-request context (request id, idempotency key) stamped on events.
    request_context: dict[str, str | None] = field(
        default_factory=lambda: {"id": None, "idempotency_key": None}
    )
    # Proration items waiting for a subscription's next invoice, by subscription id.
    pending_items: dict[str, list[Obj]] = field(default_factory=dict)
    # When each subscription's item quantities were last updated (Stripe allows 200 an hour).
    quantity_updates: dict[str, list[int]] = field(default_factory=dict)
    # Updates waiting for their invoice to be paid (pending_if_incomplete), by invoice id.
    pending_updates: dict[str, tuple[str, Any]] = field(default_factory=dict)
    # InvoicePayment ids of each invoice, oldest first (the invoice's includable `payments`).
    invoice_payments: dict[str, list[str]] = field(default_factory=dict)
    # A subscription's status once smart retries are exhausted: canceled, unpaid or past_due.
    after_final_retry: str = "canceled"
    # What each Checkout Session sells, kept out of the session object itself.
    checkout_plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    # One-off markers, e.g. "upcoming:sub_…:1700000000" once invoice.upcoming was sent.
    marks: set[str] = field(default_factory=set)
    # Base URL of the hosted pages (set by the server when it starts).
    public_url: str = "http://127.0.0.1"
    # Signing secrets of webhook endpoints, by endpoint id (Stripe shows them only once).
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    on_event: Callable[[Obj], None] | None = None

    def now(self) -> int:
        """Return the sandbox clock: wall time plus the advanced offset."""
        return int(time.time()) + self.offset

    def put(self, obj: Obj) -> Obj:
        """Store an object under its id and return it."""
        self.objects[obj["id"]] = obj
        return obj

    def get(self, object_id: str, kind: str, label: str | None = None, param: str = "id") -> Obj:
        """Return the stored object of this `object` type, or raise resource_missing."""
        obj = self.objects.get(object_id) if isinstance(object_id, str) else None
        if obj is None or obj.get("object") != kind or obj.get("deleted"):
            raise missing(label or kind, str(object_id), param)
        return obj

    def find(self, object_id: str, kind: str) -> Obj | None:
        """Return the stored object of this type, or None."""
        obj = self.objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            return None
        return obj

    def all(self, kind: str, where: Callable[[Obj], bool] | None = None) -> list[Obj]:
        """Return every live object of a type, newest first."""
        found = [
            o
            for o in self.objects.values()
            if o.get("object") == kind and not o.get("deleted") and (where is None or where(o))
        ]
        found.reverse()
        return found


def snapshot(obj: Obj) -> Obj:
    """Return a deep copy, so answers never alias stored state."""
    return copy.deepcopy(obj)


def page(items: list[Obj], params: dict[str, Any], url: str) -> Obj:
    """Cut a newest-first list into a Stripe list object honouring limit and cursors."""
    limit_raw = params.get("limit")
    try:
        limit = 10 if limit_raw in (None, "") else int(limit_raw)
    except ValueError:
        raise invalid(f"Invalid integer: {limit_raw}", param="limit") from None
    if not 1 <= limit <= 100:
        raise invalid("Limit must be between 1 and 100.", param="limit")
    ids = [o["id"] for o in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise missing("object", after, "starting_after")
        items = items[ids.index(after) + 1 :]
        chosen, has_more = items[:limit], len(items) > limit
    elif before:
        if before not in ids:
            raise missing("object", before, "ending_before")
        items = items[: ids.index(before)]
        chosen, has_more = items[-limit:], len(items) > limit
    else:
        chosen, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": chosen, "has_more": has_more, "url": url}
