"""Pending updates (payment_behavior=pending_if_incomplete): a change that waits for its payment.

Stripe keeps the subscription as it was while the update's invoice is unpaid, shows the change
under `pending_update`, applies it when that invoice is paid, and discards it (voiding the
invoice) at `expires_at`: the period end or 23 hours after the update, whichever is sooner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.resources.events import emit
from sandbox.resources.invoices import attempt, issue
from sandbox.resources.payments import cancel_payment
from sandbox.resources.subscriptions import make_item
from sandbox.store import Obj, Store, snapshot

if TYPE_CHECKING:
    from sandbox.changes import Change

EXPIRY = 23 * 3600


def _preview_items(store: Store, sub: Obj, change: Change) -> list[Obj]:
    first = sub["items"]["data"][0]
    period = (first["current_period_start"], first["current_period_end"])
    shown = []
    for item, price, qty in change.items:
        view = make_item(store, sub["id"], price, qty, period)
        if item is not None:
            view["id"], view["created"] = item["id"], item["created"]
        shown.append(view)
    return shown


def start_pending(store: Store, sub: Obj, change: Change, invoice: Obj) -> None:
    """Invoice the change; apply it if paid, else record it under `pending_update`."""
    store.pending_updates[invoice["id"]] = (sub["id"], change)
    issue(store, invoice, sub)
    attempt(store, invoice, automatic=False)
    if invoice["status"] == "paid" or invoice["id"] not in store.pending_updates:
        return
    first = sub["items"]["data"][0]
    sub["pending_update"] = {
        "billing_cycle_anchor": change.when if change.reset else None,
        "expires_at": min(first["current_period_end"], store.now() + EXPIRY),
        "subscription_items": _preview_items(store, sub, change),
        "trial_end": None,
        "trial_from_plan": None,
    }


def is_pending_invoice(store: Store, invoice: Obj) -> bool:
    """Tell whether an invoice pays for a pending update (its failure leaves status alone)."""
    return invoice["id"] in store.pending_updates


def on_paid(store: Store, invoice: Obj) -> None:
    """Apply the pending update this invoice paid for, if any."""
    from sandbox.changes import set_items

    entry = store.pending_updates.pop(invoice["id"], None)
    if entry is None:
        return
    sub = store.objects[entry[0]]
    before = snapshot(sub)
    set_items(store, sub, entry[1], invoice["lines"]["data"])
    if before.get("pending_update") is None:
        return  # paid at once: the update request itself reports the change
    sub["pending_update"] = None
    emit(store, "customer.subscription.updated", sub, before)
    emit(store, "customer.subscription.pending_update_applied", sub, before)


def expiry_times(store: Store) -> list[int]:
    """Return when waiting pending updates expire."""
    times = []
    for sub_id, _ in store.pending_updates.values():
        pending = store.objects[sub_id].get("pending_update")
        if pending:
            times.append(int(pending["expires_at"]))
    return times


def expire_due(store: Store, now: int) -> None:
    """Discard pending updates past `expires_at`, voiding their invoices."""
    for invoice_id, (sub_id, _) in list(store.pending_updates.items()):
        sub = store.objects[sub_id]
        pending = sub.get("pending_update")
        if pending and pending["expires_at"] > now:
            continue
        del store.pending_updates[invoice_id]
        invoice = store.objects[invoice_id]
        if invoice["status"] == "open":
            invoice["status"] = "void"
            invoice["next_payment_attempt"] = None
            invoice["status_transitions"]["voided_at"] = now
            cancel_payment(store, invoice)
            emit(store, "invoice.voided", invoice)
        if pending:
            before = snapshot(sub)
            sub["pending_update"] = None
            emit(store, "customer.subscription.pending_update_expired", sub, before)
