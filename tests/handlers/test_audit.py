"""Audit lines of seat changes read naturally in English and German, money by Babel."""

from __future__ import annotations

from typing import Any, cast

import pytest

from billing.team_intents import SEAT_AUDIT
from handlers.context import Actor, Ctx
from handlers.notices import RENDERERS


def _line(locale: str, **params: Any) -> str:
    ctx = Ctx(actor=Actor("slack", "T1:C1", "T1:C1", True), billing=cast(Any, None),
              locale=locale)
    return RENDERERS[SEAT_AUDIT](ctx, params).text


@pytest.mark.parametrize(("locale", "added", "removed", "assigned"), [
    ("en", "ann added 2 seats (5 → 7) — next invoice +€20.00.",
     "ann removed a seat (7 → 6) — next invoice −€8.00.", "ann assigned a seat to bob."),
    ("de", "ann hat 2 Plätze hinzugefügt (5 → 7) — nächste Rechnung +20,00\xa0€.",
     "ann hat einen Platz entfernt (7 → 6) — nächste Rechnung −8,00\xa0€.",
     "ann hat bob einen Platz gegeben."),
])
def test_audit_lines_in_english_and_german(locale: str, added: str, removed: str,
                                           assigned: str) -> None:
    """Seats added or removed say the change and what the next invoice gets (a credit is
    negative); an assignment names the member."""
    assert _line(locale, change="seats", by="ann", before=5, after=7, amount=2000,
                 currency="eur") == added
    assert _line(locale, change="seats", by="ann", before=7, after=6, amount=-800,
                 currency="eur") == removed
    assert _line(locale, change="assigned", by="ann", member="bob") == assigned


def test_an_approval_that_bought_a_seat_says_both() -> None:
    """Approving with every seat taken tells the approval and the seat added."""
    assert _line("en", change="approved", by="ann", member="bob", before=1, after=2,
                 amount=400, currency="eur") == (
        "ann approved the seat request of bob. ann added a seat (1 → 2) — next invoice +€4.00.")
