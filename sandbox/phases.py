"""Time-driven schedule work: move a subscription into its schedule's next phase, or end it."""

from __future__ import annotations

from sandbox.resources.events import emit
from sandbox.resources.schedules import release
from sandbox.resources.subscriptions import LIVE, end_subscription, make_item, plan_of
from sandbox.store import Obj, Store, snapshot


def _active(store: Store) -> list[Obj]:
    return list(reversed(store.all("subscription_schedule", lambda s: s["status"] == "active")))


def phase_times(store: Store) -> list[int]:
    """Return when the current phases of active schedules end."""
    return [int(s["current_phase"]["end_date"]) for s in _active(store) if s["current_phase"]]


def _next_phase(schedule: Obj) -> Obj | None:
    end = schedule["current_phase"]["end_date"]
    later = [p for p in schedule["phases"] if p["start_date"] >= end]
    return later[0] if later else None


def _pairs(store: Store, phase: Obj) -> list[tuple[Obj, int]]:
    return [(store.objects[i["price"]], int(i["quantity"])) for i in phase["items"]]


def upcoming_phase_pairs(store: Store, sub: Obj) -> list[tuple[Obj, int]] | None:
    """Return the items the next phase bills from the period end, if a schedule switches there."""
    schedule = store.find(sub.get("schedule") or "", "subscription_schedule")
    if schedule is None or schedule["status"] != "active" or not schedule["current_phase"]:
        return None
    phase = _next_phase(schedule)
    end = sub["items"]["data"][0]["current_period_end"]
    if phase is None or phase["start_date"] != end:
        return None
    return _pairs(store, phase)


def _enter(store: Store, schedule: Obj, sub: Obj, phase: Obj) -> None:
    before = snapshot(sub)
    items = sub["items"]["data"]
    aligned = phase["start_date"] == items[0]["current_period_end"]
    if aligned:
        # At the period boundary the renewal bills the new phase; nothing to prorate.
        period = (items[0]["current_period_start"], items[0]["current_period_end"])
        kept = []
        for index, (price, qty) in enumerate(_pairs(store, phase)):
            item = (
                items[index]
                if index < len(items)
                else make_item(store, sub["id"], price, qty, period)
            )
            item["price"], item["plan"], item["quantity"] = snapshot(price), plan_of(price), qty
            kept.append(item)
        sub["items"]["data"], sub["items"]["total_count"] = kept, len(kept)
    else:
        from sandbox.changes import apply_change

        raw = [{"id": item["id"], "deleted": "true"} for item in items[len(phase["items"]) :]] + [
            {"id": items[i]["id"], "price": p["id"], "quantity": q}
            if i < len(items)
            else {"price": p["id"], "quantity": q}
            for i, (p, q) in enumerate(_pairs(store, phase))
        ]
        apply_change(
            store,
            sub,
            {
                "items": raw,
                "proration_behavior": phase["proration_behavior"],
                "proration_date": phase["start_date"],
            },
        )
    before_schedule = snapshot(schedule)
    schedule["current_phase"] = {"start_date": phase["start_date"], "end_date": phase["end_date"]}
    if sub != before:
        emit(store, "customer.subscription.updated", sub, before)
    emit(store, "subscription_schedule.updated", schedule, before_schedule)


def run_phases(store: Store, now: int) -> None:
    """Enter every phase whose start has come; end schedules whose last phase is over."""
    for schedule in _active(store):
        while schedule["status"] == "active" and schedule["current_phase"]:
            if schedule["current_phase"]["end_date"] > now:
                break
            sub = store.objects[schedule["subscription"]]
            phase = _next_phase(schedule)
            if sub["status"] not in LIVE:
                schedule.update(status="canceled", canceled_at=now, current_phase=None)
                emit(store, "subscription_schedule.canceled", schedule)
            elif phase is not None:
                _enter(store, schedule, sub, phase)
            elif schedule["end_behavior"] == "cancel":
                schedule.update(status="completed", completed_at=now, current_phase=None)
                emit(store, "subscription_schedule.completed", schedule)
                end_subscription(store, sub)
            else:
                release(store, schedule)
