"""Time-driven work: renewals, payment retries, trial ends, upcoming-invoice notices."""

from __future__ import annotations

import time

from sandbox.clock import DAY
from sandbox.pending import expire_due, expiry_times
from sandbox.phases import phase_times, run_phases
from sandbox.resources.events import emit
from sandbox.resources.invoices import attempt, build_invoice, issue, set_status
from sandbox.resources.payments import cancel_payment
from sandbox.resources.previews import create_preview
from sandbox.resources.subscriptions import cycle_lines, end_subscription, next_period_end
from sandbox.store import Obj, Store, snapshot

UPCOMING_NOTICE = 3 * DAY  # invoice.upcoming / trial_will_end this long before the boundary
BILLABLE = ("active", "past_due", "trialing", "unpaid")


def _period_end(sub: Obj) -> int:
    return int(sub["items"]["data"][0]["current_period_end"])


def _due_times(store: Store) -> list[int]:
    times: list[int] = phase_times(store) + expiry_times(store)
    for sub in store.all("subscription", lambda s: s["status"] in BILLABLE):
        end = _period_end(sub)
        times.append(end)
        if sub.get("cancel_at"):
            times.append(int(sub["cancel_at"]))
        if not sub["cancel_at_period_end"] and f"upcoming:{sub['id']}:{end}" not in store.marks:
            times.append(end - UPCOMING_NOTICE)
        trial = sub["trial_end"]
        if (
            sub["status"] == "trialing"
            and trial
            and f"trial:{sub['id']}:{trial}" not in store.marks
        ):
            times.append(int(sub["trial_end"]) - UPCOMING_NOTICE)
        pause = sub.get("pause_collection") or {}
        if pause.get("resumes_at"):
            times.append(int(pause["resumes_at"]))
    for invoice in store.all("invoice", lambda i: i["status"] == "open"):
        if invoice["next_payment_attempt"]:
            times.append(int(invoice["next_payment_attempt"]))
    return times


def advance_to(store: Store, target: int) -> None:
    """Move the clock to `target`, stopping at every due moment to do its work."""
    while True:
        due = [t for t in _due_times(store) if t <= target]
        step = min(due) if due else target
        store.offset = max(store.offset, step - int(time.time()))
        run_due(store)
        if not due:
            return


def run_due(store: Store) -> None:
    """Do every renewal, retry and notice whose time has come."""
    now = store.now()
    expire_due(store, now)
    run_phases(store, now)
    for sub in store.all("subscription", lambda s: s["status"] in BILLABLE):
        _trial_notice(store, sub, now)
        _notices(store, sub, now)
        pause = sub.get("pause_collection") or {}
        if pause.get("resumes_at") and pause["resumes_at"] <= now:
            before = snapshot(sub)
            sub["pause_collection"] = None
            emit(store, "customer.subscription.updated", sub, before)
        if sub.get("cancel_at") and sub["cancel_at"] <= now:
            end_subscription(store, sub)
            continue
        if _period_end(sub) <= now:
            _renew(store, sub)
    for invoice in store.all("invoice", lambda i: i["status"] == "open"):
        if invoice["next_payment_attempt"] and invoice["next_payment_attempt"] <= now:
            attempt(store, invoice, automatic=True)


def _trial_notice(store: Store, sub: Obj, now: int) -> None:
    """Send customer.subscription.trial_will_end three days before the trial ends."""
    end = sub["trial_end"]
    mark = f"trial:{sub['id']}:{end}"
    if sub["status"] != "trialing" or not end or mark in store.marks:
        return
    if end - UPCOMING_NOTICE <= now < end:
        store.marks.add(mark)
        emit(store, "customer.subscription.trial_will_end", sub)


def _notices(store: Store, sub: Obj, now: int) -> None:
    end = _period_end(sub)
    mark = f"upcoming:{sub['id']}:{end}"
    if (
        mark in store.marks
        or sub["cancel_at_period_end"]
        or end - UPCOMING_NOTICE > now
        or end <= now
    ):
        return
    store.marks.add(mark)
    preview = create_preview(store, {"subscription": sub["id"]})
    preview.pop("id", None)
    emit(store, "invoice.upcoming", preview)


def _renew(store: Store, sub: Obj) -> None:
    """Start the next period and bill it (billing_reason subscription_cycle)."""
    start = _period_end(sub)
    before = snapshot(sub)
    end = next_period_end(sub["items"]["data"][0]["price"], start, sub["billing_cycle_anchor"])
    for item in sub["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = start, end
    if sub["status"] == "trialing":
        sub["status"] = "active"
    emit(store, "customer.subscription.updated", sub, before)
    lines = store.pending_items.pop(sub["id"], []) + cycle_lines(store, sub)
    customer = store.objects[sub["customer"]]
    invoice = build_invoice(
        store,
        customer,
        sub,
        lines,
        billing_reason="subscription_cycle",
        period=(before["items"]["data"][0]["current_period_start"], start),
    )
    pause = (sub.get("pause_collection") or {}).get("behavior")
    issue(store, invoice, sub, auto_finalize=pause != "keep_as_draft")
    if pause:
        _paused(store, invoice, pause)
        return
    if sub["status"] == "unpaid":
        return  # Stripe keeps creating invoices for unpaid subscriptions but does not charge them
    err = attempt(store, invoice, automatic=True)
    if err is not None and sub["status"] == "active":
        set_status(store, sub, "past_due")


def _paused(store: Store, invoice: Obj, behavior: str) -> None:
    """Handle a renewal invoice while collection is paused, per pause_collection[behavior]."""
    now = store.now()
    if behavior == "keep_as_draft":
        invoice["auto_advance"] = False
    elif behavior == "void":
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = now
        cancel_payment(store, invoice)
        emit(store, "invoice.voided", invoice)
    else:
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = now
        emit(store, "invoice.marked_uncollectible", invoice)
