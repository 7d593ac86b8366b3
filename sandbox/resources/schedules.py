"""Subscription schedules made from a subscription: phases, release, cancel, phase changes."""

from __future__ import annotations

from typing import Any

from sandbox.clock import add_interval
from sandbox.errors import invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_int, as_list
from sandbox.resources.events import emit
from sandbox.resources.subscriptions import LIVE, end_subscription, next_period_end
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

END_BEHAVIORS = ("release", "cancel")


def _phase(store: Store, sub: Obj, pairs: list[tuple[Obj, int]], span: tuple[int, int]) -> Obj:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": sub["currency"],
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": span[1],
        "invoice_settings": None,
        "items": [
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": {},
                "plan": price["id"],
                "price": price["id"],
                "quantity": qty,
                "tax_rates": [],
            }
            for price, qty in pairs
        ],
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": span[0],
        "transfer_data": None,
        "trial_end": None,
    }


def _current(schedule: Obj, now: int) -> Obj | None:
    found: list[Obj] = [p for p in schedule["phases"] if p["start_date"] <= now < p["end_date"]]
    return found[0] if found else None


def _set_current(schedule: Obj, now: int) -> None:
    phase = _current(schedule, now)
    schedule["current_phase"] = (
        {"start_date": phase["start_date"], "end_date": phase["end_date"]} if phase else None
    )


def create_schedule(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/subscription_schedules with from_subscription (its current period is phase 1)."""
    if not params.get("from_subscription"):
        raise invalid("Missing required param: from_subscription.", param="from_subscription")
    sub = store.get(str(params["from_subscription"]), "subscription", param="from_subscription")
    if sub["schedule"]:
        raise invalid(
            f"You cannot migrate a subscription that is already attached to a schedule: "
            f"`{sub['schedule']}`.",
            param="from_subscription",
        )
    if sub["status"] not in LIVE:
        raise invalid("The subscription is not active.", param="from_subscription")
    first = sub["items"]["data"][0]
    pairs = [(i["price"], i["quantity"]) for i in sub["items"]["data"]]
    span = (first["current_period_start"], first["current_period_end"])
    schedule: Obj = {
        "id": new_id("sub_sched_"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "canceled_at": None,
        "completed_at": None,
        "created": store.now(),
        "current_phase": None,
        "customer": sub["customer"],
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {
                "account_tax_ids": None,
                "days_until_due": None,
                "issuer": {"type": "self"},
            },
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "phases": [_phase(store, sub, pairs, span)],
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": sub["id"],
        "test_clock": None,
    }
    _set_current(schedule, store.now())
    store.put(schedule)
    before = snapshot(sub)
    sub["schedule"] = schedule["id"]
    emit(store, "subscription_schedule.created", schedule)
    emit(store, "customer.subscription.updated", sub, before)
    return render(store, schedule, params)


def _phases(store: Store, sub: Obj, raw: Any, start: int) -> list[Obj]:
    phases: list[Obj] = []
    for index, entry in enumerate(as_list(raw)):
        param = f"phases[{index}]"
        entry = entry if isinstance(entry, dict) else {}
        pairs = []
        for j, item in enumerate(as_list(entry.get("items"))):
            item = item if isinstance(item, dict) else {}
            price = store.get(str(item.get("price")), "price", param=f"{param}[items][{j}][price]")
            quantity = as_int(item.get("quantity"), f"{param}[items][{j}][quantity]")
            pairs.append((price, 1 if quantity is None else quantity))
        if not pairs:
            raise invalid("Missing required param: items.", param=f"{param}[items]")
        given = entry.get("start_date")
        begin = store.now() if given == "now" else as_int(given, f"{param}[start_date]")
        begin = begin if begin is not None else (phases[-1]["end_date"] if phases else start)
        end = as_int(entry.get("end_date"), f"{param}[end_date]")
        duration = entry.get("duration")
        if end is None and isinstance(duration, dict):
            count = as_int(duration.get("interval_count"), f"{param}[duration]") or 1
            end = add_interval(begin, str(duration.get("interval", "month")), count)
        if end is None:
            end = begin
            for _ in range(as_int(entry.get("iterations"), f"{param}[iterations]") or 1):
                end = next_period_end(pairs[0][0], end, begin)
        if end <= begin:
            raise invalid("A phase's end_date must be after its start_date.", param=param)
        phase = _phase(store, sub, pairs, (begin, end))
        phase["proration_behavior"] = entry.get("proration_behavior") or "create_prorations"
        set_metadata(phase, entry.get("metadata"))
        phases.append(phase)
    return phases


def update_schedule(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/subscription_schedules/{id}: phases, end_behavior, metadata."""
    schedule = store.get(id, "subscription_schedule")
    if schedule["status"] not in ("active", "not_started"):
        raise invalid(f"You cannot update a subscription schedule that is {schedule['status']}.")
    before = snapshot(schedule)
    if params.get("phases"):
        sub = store.objects[schedule["subscription"]]
        schedule["phases"] = _phases(
            store, sub, params["phases"], schedule["phases"][0]["start_date"]
        )
        _set_current(schedule, store.now())
    behavior = params.get("end_behavior")
    if behavior:
        if behavior not in END_BEHAVIORS:
            raise invalid(f"Invalid end_behavior: {behavior}", param="end_behavior")
        schedule["end_behavior"] = behavior
    set_metadata(schedule, params.get("metadata"))
    if schedule != before:
        emit(store, "subscription_schedule.updated", schedule, before)
    return render(store, schedule, params)


def release(store: Store, schedule: Obj) -> None:
    """Detach the subscription, which carries on as it is (subscription_schedule.released)."""
    sub = store.objects[schedule["subscription"]]
    before_sub, now = snapshot(sub), store.now()
    schedule.update(
        status="released",
        released_at=now,
        released_subscription=sub["id"],
        subscription=None,
        current_phase=None,
    )
    sub["schedule"] = None
    emit(store, "subscription_schedule.released", schedule)
    emit(store, "customer.subscription.updated", sub, before_sub)


def _live(store: Store, id: str) -> Obj:
    schedule = store.get(id, "subscription_schedule")
    if schedule["status"] not in ("active", "not_started"):
        raise invalid(
            f"You cannot release or cancel a subscription schedule that is {schedule['status']}."
        )
    return schedule


def release_schedule(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/subscription_schedules/{id}/release."""
    schedule = _live(store, id)
    release(store, schedule)
    return render(store, schedule, params)


def cancel_schedule(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/subscription_schedules/{id}/cancel: the subscription is canceled too."""
    schedule = _live(store, id)
    schedule.update(status="canceled", canceled_at=store.now(), current_phase=None)
    sub = store.objects[schedule["subscription"]]
    emit(store, "subscription_schedule.canceled", schedule)
    if sub["status"] in LIVE:
        end_subscription(store, sub)
    return render(store, schedule, params)


def retrieve_schedule(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/subscription_schedules/{id}."""
    return render(store, store.get(id, "subscription_schedule"), params)


def list_schedules(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/subscription_schedules with customer."""
    customer = params.get("customer")
    found = store.all("subscription_schedule", lambda s: not customer or s["customer"] == customer)
    return render_list(store, found, params, "/v1/subscription_schedules")


ROUTES: list[RouteSpec] = [
    ("POST", "/v1/subscription_schedules", create_schedule),
    ("GET", "/v1/subscription_schedules", list_schedules),
    ("GET", "/v1/subscription_schedules/{id}", retrieve_schedule),
    ("POST", "/v1/subscription_schedules/{id}", update_schedule),
    ("POST", "/v1/subscription_schedules/{id}/release", release_schedule),
    ("POST", "/v1/subscription_schedules/{id}/cancel", cancel_schedule),
]
