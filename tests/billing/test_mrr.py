"""Revenue figures as pure functions over rows, checked against sums done by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest

from billing.movements import month_figures, mrr_series, with_live
from billing.mrr import (
    Month,
    State,
    churn_rate,
    mrr_by_currency,
    mrr_micro,
    offers_of,
    recovery,
    rounded,
    states_now,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def sub(unit_amount: int, interval: str = "month", *, status: str = "active",
        quantity: int = 1, count: int = 1, currency: str = "eur", percent: float | None = None,
        amount: int | None = None, duration: str | None = None,
        end: datetime | None = None) -> Any:
    """A mirror row with only what MRR reads."""
    return SimpleNamespace(
        status=status, unit_amount=unit_amount, quantity=quantity, interval=interval,
        interval_count=count, currency=currency, discount_percent_off=percent,
        discount_amount_off=amount, discount_currency=currency if amount else None,
        discount_duration=duration, discount_end=end)


def test_a_month_from_every_interval() -> None:
    """It normalises a year ÷ 12, a week × 52 ÷ 12, a day × 365 ÷ 12, over interval_count."""
    assert mrr_micro(sub(2900), NOW) == 2_900_000_000
    assert mrr_micro(sub(29000, "year"), NOW) == 2_416_666_667
    assert mrr_micro(sub(500, "week", count=2), NOW) == 1_083_333_333
    assert mrr_micro(sub(100, "day"), NOW) == 3_041_666_667
    assert mrr_micro(sub(9000, "month", count=3), NOW) == 3_000_000_000


def test_only_active_and_past_due_count() -> None:
    """Trials, unpaid, canceled and incomplete subscriptions add nothing."""
    assert mrr_micro(sub(900, status="past_due"), NOW) == 900_000_000
    for status in ("trialing", "unpaid", "canceled", "incomplete", "paused"):
        assert mrr_micro(sub(900, status=status), NOW) == 0


def test_discounts_while_they_apply() -> None:
    """Percent and amount off are taken off while the discount lasts, times the quantity."""
    later = datetime(2027, 1, 1, tzinfo=UTC)
    repeating = sub(2900, percent=25, duration="repeating", end=later)
    assert mrr_micro(repeating, NOW) == 2_175_000_000
    assert mrr_micro(repeating, later) == 2_900_000_000  # ended: full price again
    assert mrr_micro(sub(800, quantity=3, percent=12.5, duration="forever"), NOW) == (
        2_100_000_000)
    assert mrr_micro(sub(1000, amount=300, duration="once"), NOW) == 700_000_000
    assert mrr_micro(sub(12000, "year", amount=1200, duration="forever"), NOW) == 900_000_000
    assert mrr_micro(sub(500, amount=900, duration="forever"), NOW) == 0  # never below zero


def test_mrr_per_currency_never_summed_across() -> None:
    """A small shop in two currencies: each total is rounded once, at the end."""
    rows = [
        sub(2900), sub(29000, "year"), sub(800, quantity=3),
        sub(2900, percent=25, duration="repeating", end=datetime(2027, 2, 1, tzinfo=UTC)),
        sub(2900, status="trialing"), sub(900, status="past_due"),
        sub(1000, currency="usd", amount=300, duration="forever"),
        sub(500, "week", count=2, currency="usd"), sub(100, "day", currency="usd"),
    ]
    # EUR 2900 + 2416.67 + 2400 + 2175 + 0 + 900; USD 700 + 1083.33 + 3041.67
    assert mrr_by_currency(rows, NOW) == {"eur": 10792, "usd": 4825}


def test_rounding_is_half_up() -> None:
    """Half a minor unit rounds up, for negative amounts away from zero."""
    assert (rounded(2_500_000), rounded(2_499_999), rounded(-2_500_000)) == (3, 2, -3)


def _s(sub_id: str, customer: str, day: date, mrr: int, status: str = "active",
       currency: str = "eur", price: str = "price") -> State:
    return State(sub_id, customer, day, status, currency, price, mrr)


HISTORY = sorted([
    # upgraded: expansion 2000
    _s("sub1", "cus1", date(2026, 10, 1), 2_900_000_000),
    _s("sub1", "cus1", date(2026, 11, 10), 4_900_000_000),
    _s("sub1", "cus1", date(2026, 12, 1), 0, "canceled"),  # after the month: ignored
    # canceled: churned 900
    _s("sub2", "cus2", date(2026, 10, 5), 900_000_000),
    _s("sub2", "cus2", date(2026, 11, 20), 0, "canceled"),
    # a trial that converted: new 2900
    _s("sub3", "cus3", date(2026, 11, 3), 0, "trialing"),
    _s("sub3", "cus3", date(2026, 11, 17), 2_900_000_000),
    # paid before, churned, back with a new subscription: reactivation 2900
    _s("sub4", "cus4", date(2026, 9, 1), 2_900_000_000),
    _s("sub4", "cus4", date(2026, 10, 1), 0, "canceled"),
    _s("sub5", "cus4", date(2026, 11, 8), 2_900_000_000),
    # yearly Pro down to yearly Basic: contraction 2416.67 − 750
    _s("sub6", "cus5", date(2026, 10, 1), 2_416_666_667),
    _s("sub6", "cus5", date(2026, 11, 15), 750_000_000),
    # a trial that ended without paying
    _s("sub7", "cus6", date(2026, 11, 2), 0, "trialing"),
    _s("sub7", "cus6", date(2026, 11, 16), 0, "canceled"),
    # new and churned in the same month
    _s("sub8", "cus7", date(2026, 11, 4), 900_000_000),
    _s("sub8", "cus7", date(2026, 11, 25), 0, "canceled"),
    # past due still counts: no movement
    _s("sub10", "cus9", date(2026, 10, 1), 900_000_000),
    _s("sub10", "cus9", date(2026, 11, 12), 900_000_000, "past_due"),
    # the other currency, unchanged
    _s("sub9", "cus8", date(2026, 10, 1), 1_000_000_000, currency="usd"),
], key=lambda s: (s.subscription_id, s.day))


def test_a_month_of_movements() -> None:
    """Each subscriber's steps through the month give the movements, adding up to the change."""
    eur = month_figures(HISTORY, Month(2026, 11))["eur"]
    assert (eur.mrr_at_start, eur.mrr) == (7117, 12350)
    assert (eur.new_mrr, eur.reactivation_mrr, eur.expansion_mrr, eur.contraction_mrr,
            eur.churned_mrr) == (3800, 2900, 2000, 1667, 1800)
    assert (eur.active_at_start, eur.active_subscribers, eur.new_subscribers,
            eur.reactivated_subscribers, eur.churned_subscribers) == (4, 5, 2, 1, 2)
    assert eur.churn_rate == Fraction(2, 4 + 2 + 1)
    assert eur.arpu == 2470
    start = 2_900_000_000 + 900_000_000 + 2_416_666_667 + 900_000_000
    lost = 1_800_000_000 + 1_666_666_667
    assert eur.gross_mrr_churn == Fraction(lost, start)
    assert eur.net_mrr_churn == Fraction(lost - 2_000_000_000, start)
    assert (eur.trials_ended, eur.trials_converted, eur.trial_conversion) == (2, 1, Fraction(1, 2))


def test_the_other_currency_apart() -> None:
    """A currency's figures never mix with another's."""
    usd = month_figures(HISTORY, Month(2026, 11))["usd"]
    assert (usd.mrr_at_start, usd.mrr, usd.active_subscribers, usd.new_mrr) == (1000, 1000, 1, 0)
    assert usd.churn_rate == 0


def test_the_movements_add_up() -> None:
    """MRR at the end = at the start + new + reactivation + expansion − contraction − churned."""
    for month in (Month(2026, 10), Month(2026, 11), Month(2026, 12)):
        for f in month_figures(HISTORY, month).values():
            change = (f.new_mrr + f.reactivation_mrr + f.expansion_mrr - f.contraction_mrr
                      - f.churned_mrr)
            assert abs(f.mrr_at_start + change - f.mrr) <= 1, (month, f)


def test_churn_formula() -> None:
    """Churn rate = churned in the period ÷ (active at its start + new in it)."""
    assert churn_rate(5, 90, 10) == Fraction(5, 100)
    assert churn_rate(0, 0, 0) is None


def test_a_switch_of_subscriptions_is_no_churn() -> None:
    """A customer moving from one subscription to another the same day is contraction only."""
    rows = [_s("a", "cus", date(2026, 10, 1), 2_900_000_000),
            _s("a", "cus", date(2026, 11, 5), 0, "canceled"),
            _s("b", "cus", date(2026, 11, 5), 900_000_000)]
    f = month_figures(rows, Month(2026, 11))["eur"]
    assert (f.churned_mrr, f.contraction_mrr, f.churned_subscribers) == (0, 2000, 0)


def test_live_states_replace_today() -> None:
    """Today's live state replaces a row of today and is added only where it differs."""
    today = date(2026, 11, 20)
    rows = [_s("a", "c1", date(2026, 10, 1), 10), _s("a", "c1", today, 20),
            _s("b", "c2", date(2026, 10, 1), 30)]
    live = {s.subscription_id: s for s in (
        _s("a", "c1", today, 40), _s("b", "c2", today, 30), _s("c", "c3", today, 50))}
    merged = with_live(rows, live)
    assert [(r.subscription_id, r.day, r.mrr_micro) for r in merged] == [
        ("a", date(2026, 10, 1), 10), ("a", today, 40), ("b", date(2026, 10, 1), 30),
        ("c", today, 50)]


def test_live_states_count_in_the_month() -> None:
    """The mirror's state now is the month's last change: a cancel seen live is churn."""
    live = {"sub1": _s("sub1", "cus1", date(2026, 11, 28), 0, "canceled")}
    eur = month_figures(HISTORY, Month(2026, 11), live)["eur"]
    assert (eur.mrr, eur.churned_mrr, eur.expansion_mrr) == (12350 - 4900, 1800 + 4900, 2000)
    assert mrr_series(HISTORY, [Month(2026, 11)], live)["eur"] == [12350 - 4900]


def test_states_now_share_the_sums_of_equal_terms() -> None:
    """Each row gets the MRR its own terms give, however many rows share them."""
    ended = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [sub(2900), sub(2900), sub(2900, percent=25, duration="repeating", end=ended),
            sub(2900, percent=25, duration="repeating", end=datetime(2027, 1, 1, tzinfo=UTC)),
            sub(2900, status="trialing")]
    for n, row in enumerate(rows):
        row.id, row.customer_id, row.price_id = f"s{n}", f"c{n}", "price"
    found = states_now(rows, NOW)
    assert [found[f"s{n}"].mrr_micro for n in range(5)] == [
        mrr_micro(row, NOW) for row in rows] == [2_900_000_000] * 3 + [2_175_000_000, 0]


def test_mrr_at_each_month_end() -> None:
    """The chart's series is MRR at the end of each month, per currency."""
    months = [Month(2026, 9), Month(2026, 10), Month(2026, 11)]
    series = mrr_series(HISTORY, months)
    assert series["usd"] == [0, 1000, 1000]
    assert series["eur"] == [2900, 7117, 12350]


def test_recovery_from_failed_invoices() -> None:
    """The share of failed invoice amount paid later: retried and paid counts as recovered."""
    def invoice(status: str, amount: int, attempts: int, remaining: int = 0) -> Any:
        return SimpleNamespace(status=status, amount_due=amount, attempt_count=attempts,
                               amount_remaining=remaining, currency="eur")

    found = recovery([
        invoice("paid", 2900, 1),  # paid at once: no failure
        invoice("paid", 2900, 3),  # failed twice, then paid
        invoice("open", 900, 2, remaining=900),  # still failing
        invoice("uncollectible", 500, 4, remaining=500),
        invoice("draft", 700, 0, remaining=700),
    ])
    assert found == {"eur": (4300, 2900)}


def test_offer_acceptance() -> None:
    """Offers made and taken are counted from the cancel flow's records."""
    rows = [SimpleNamespace(accepted_at=None), SimpleNamespace(accepted_at=NOW),
            SimpleNamespace(accepted_at=None)]
    offers = offers_of(rows)
    assert (offers.made, offers.accepted, offers.acceptance) == (3, 1, Fraction(1, 3))


@pytest.mark.parametrize("text", ["2026-13", "26-01", "2026-1", "2026-01-01", "x", ""])
def test_months_are_read_strictly(text: str) -> None:
    """Only YYYY-MM is a month."""
    with pytest.raises(ValueError):
        Month.parse(text)


def test_month_bounds() -> None:
    """A month knows its days and its neighbours."""
    month = Month.parse("2028-02")
    assert (month.start, month.end, str(month.shift(-2)), str(month.shift(11))) == (
        date(2028, 2, 1), date(2028, 2, 29), "2027-12", "2029-01")
