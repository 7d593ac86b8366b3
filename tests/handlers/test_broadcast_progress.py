"""The broadcast's progress message as the admin reads it, in their language and zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from billing.broadcasts import Progress
from billing.services import Billing
from handlers.context import Actor, Ctx
from handlers.notices import render_notice

ACTOR = Actor(channel="telegram", user_id="1", chat_id="1", private=True)


def _ctx(locale: str, zone: str) -> Ctx:
    return Ctx(actor=ACTOR, billing=cast(Billing, None), locale=locale, zone=zone)


def _params(**counts: Any) -> dict[str, Any]:
    base = {"id": 7, "status": "sending", "recipients": 1200, "pending": 1200, "delivered": 0,
            "blocked": 0, "failed": 0, "skipped": 0,
            "send_at": datetime(2026, 12, 24, 8, 0, tzinfo=UTC)}
    return Progress(**{**base, **counts}).params()


def test_a_running_broadcast_shows_its_counts_and_buttons() -> None:
    """While it runs: the counts with thousands separators, Refresh and Cancel."""
    reply = render_notice(_ctx("en", "UTC"), "broadcast_progress",
                          _params(pending=80, delivered=1100, blocked=20))
    assert reply.title == "Broadcast 7: sending"
    assert reply.text.splitlines() == ["1,120 of 1,200 settled.",
                                       "Delivered 1,100 · blocked 20 · failed 0 · skipped 0"]
    assert [b.action for row in reply.buttons for b in row] == ["bc:p:7", "bc:x:7"]


def test_the_report_and_a_scheduled_one_in_german() -> None:
    """In German: a scheduled one names its day and time in the admin's zone; the report has
    no buttons."""
    ctx = _ctx("de", "Europe/Berlin")
    scheduled = render_notice(ctx, "broadcast_progress", _params(status="scheduled"))
    assert scheduled.title == "Rundsendung 7: geplant für Do., 24. Dez. 2026 um 09:00"
    report = render_notice(ctx, "broadcast_progress", _params(
        status="done", pending=0, delivered=1000, blocked=150, failed=30, skipped=20))
    assert report.buttons == ()
    assert report.text.splitlines()[0] == "1.200 von 1.200 erledigt."
