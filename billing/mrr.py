"""MRR as pure functions over rows: a subscription's month, per currency; recovery, offers.

`billing.movements` turns the history into a month's movements; `billing.revenue` loads the
rows (the mirror, its history) and stores the daily snapshot.

MRR follows Stripe Billing's definition (SPEC §6c): `active` and `past_due` subscriptions,
not trials; each price normalised to a month (a year ÷ 12, a week × 52 ÷ 12, a day × 365 ÷
12, over `interval_count`), times the quantity, less the discount while it applies, without
tax; never summed across currencies. Stripe lets an account choose whether finite coupons
(`once`, `repeating`) lower MRR
(https://support.stripe.com/questions/impact-of-discounts-and-coupons-on-monthly-recurring-revenue-mrr-in-billing);
Portier subtracts every discount while it lasts: `forever` always, `repeating` until the
discount's `end`, `once` while it is still on the subscription (Stripe removes it after the
invoice it applied to).

Amounts are integers: MRR is kept in millionths of a minor unit and rounded (half up) once,
when a figure is shown.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any, NamedTuple, Protocol

MRR_STATUSES = frozenset({"active", "past_due"})
MICRO = 1_000_000
# A month per interval, as a fraction (numerator, denominator) of one interval's amount.
_PER_MONTH = {"day": (365, 12), "week": (52, 12), "month": (1, 1), "year": (1, 12)}
_PERCENT_SCALE = 10_000  # percent_off in hundredths of a percent: Stripe allows two decimals
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class Priced(Protocol):
    """What MRR needs of a subscription: a mirror row has all of it."""

    status: str
    unit_amount: int
    quantity: int
    interval: str
    interval_count: int
    currency: str
    discount_percent_off: float | None
    discount_amount_off: int | None
    discount_currency: str | None
    discount_duration: str | None
    discount_end: datetime | None


class State(NamedTuple):
    """A subscription's revenue state from `day` on (a row of `revenue_states`)."""

    subscription_id: str
    customer_id: str
    day: date
    status: str
    currency: str
    price_id: str
    mrr_micro: int


class Terms(NamedTuple):
    """A mirrored subscription's terms, as `billing.revenue` reads them for MRR."""

    id: str
    customer_id: str
    status: str
    price_id: str
    unit_amount: int
    currency: str
    interval: str
    interval_count: int
    quantity: int
    discount_percent_off: float | None
    discount_amount_off: int | None
    discount_currency: str | None
    discount_duration: str | None
    discount_end: datetime | None


@dataclass(frozen=True)
class Month:
    """A calendar month, its first and last day."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Read `YYYY-MM`; raise ValueError for anything else."""
        found = _MONTH.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"not a month (YYYY-MM): {text[:20]!r}")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, day: date) -> Month:
        """Return the month a day is in."""
        return cls(day.year, day.month)

    @property
    def start(self) -> date:
        """Return the month's first day."""
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """Return the month's last day."""
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def shift(self, months: int) -> Month:
        """Return the month `months` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def rounded(micro: int) -> int:
    """Round millionths of a minor unit to minor units, half away from zero."""
    sign = -1 if micro < 0 else 1
    return sign * ((abs(micro) * 2 + MICRO) // (2 * MICRO))


def discount_applies(row: Priced, at: datetime) -> bool:
    """Tell whether the subscription's discount lowers what it pays at a moment."""
    if row.discount_duration is None:
        return False
    if row.discount_duration == "repeating":
        return row.discount_end is None or at < row.discount_end
    return row.discount_duration in ("forever", "once")


def mrr_micro(row: Priced, at: datetime, *, status: str | None = None) -> int:
    """Return a subscription's MRR at a moment, in millionths of a minor unit (with another
    status than its own when given)."""
    if (status or row.status) not in MRR_STATUSES or row.interval not in _PER_MONTH:
        return 0
    per, months = _PER_MONTH[row.interval]
    gross = row.unit_amount * max(row.quantity, 0) * _PERCENT_SCALE
    net = gross
    if discount_applies(row, at):
        if row.discount_percent_off:
            hundredths = round(row.discount_percent_off * 100)
            net = gross - row.unit_amount * max(row.quantity, 0) * hundredths
        elif row.discount_amount_off and row.discount_currency in (None, row.currency):
            net = gross - row.discount_amount_off * _PERCENT_SCALE  # off each invoice
    numerator = max(net, 0) * per * MICRO
    denominator = months * max(row.interval_count, 1) * _PERCENT_SCALE
    return (numerator * 2 + denominator) // (2 * denominator)


def state_of(row: Any, day: date, at: datetime, *, status: str | None = None) -> State:
    """Return a mirror row's revenue state on a day (with another status when given)."""
    status = status or row.status
    return State(row.id, row.customer_id, day, status, row.currency, row.price_id,
                 mrr_micro(row, at, status=status))


def states_now(rows: Iterable[Any], at: datetime) -> dict[str, State]:
    """Return each mirror row's state now, by subscription id.

    Subscriptions on the same terms share one computation: a shop has a few prices, so
    100,000 rows take some hundred distinct sums.
    """
    day = at.date()
    known: dict[tuple[Any, ...], int] = {}
    found: dict[str, State] = {}
    for row in rows:
        duration = row.discount_duration
        terms = (row.status, row.unit_amount, row.quantity, row.interval, row.interval_count,
                 row.currency, row.discount_percent_off, row.discount_amount_off,
                 row.discount_currency, duration,
                 duration == "repeating" and row.discount_end is not None
                 and at >= row.discount_end)
        value = known.get(terms)
        if value is None:
            value = known[terms] = mrr_micro(row, at)
        found[row.id] = State(row.id, row.customer_id, day, row.status, row.currency,
                              row.price_id, value)
    return found


def mrr_by_currency(rows: Iterable[Priced], at: datetime) -> dict[str, int]:
    """Return MRR per currency in minor units (currencies with none are left out)."""
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        value = mrr_micro(row, at)
        if value:
            totals[row.currency] += value
    return {currency: rounded(total) for currency, total in sorted(totals.items())}


def ratio(part: int, whole: int) -> Fraction | None:
    """Return part ÷ whole, or None when there is no whole to divide by."""
    return Fraction(part, whole) if whole else None


def churn_rate(churned: int, active_at_start: int, new: int) -> Fraction | None:
    """Subscribers churned in a period ÷ (active at its start + new in it)."""
    return ratio(churned, active_at_start + new)


# -- recovery and save offers ---------------------------------------------------------------

def had_failure(invoice: Any) -> bool:
    """Tell whether an invoice had a failed payment attempt (the mirror's counts show it)."""
    if invoice.status == "draft" or invoice.amount_due <= 0:
        return False
    if invoice.status == "paid":
        return int(invoice.attempt_count) > 1
    return int(invoice.attempt_count) >= 1 and invoice.amount_remaining > 0


def recovery(invoices: Iterable[Any]) -> dict[str, tuple[int, int]]:
    """Return per currency the failed invoice amount and the part of it paid later."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for invoice in invoices:
        if had_failure(invoice):
            found[invoice.currency][0] += invoice.amount_due
            if invoice.status == "paid":
                found[invoice.currency][1] += invoice.amount_due
    return {currency: (failed, paid) for currency, (failed, paid) in sorted(found.items())}


@dataclass(frozen=True)
class Offers:
    """Save offers made in Portier's cancel flow in a month, and how many were taken."""

    made: int
    accepted: int

    @property
    def acceptance(self) -> Fraction | None:
        """Return the share of offers taken."""
        return ratio(self.accepted, self.made)


def offers_of(rows: Iterable[Any]) -> Offers:
    """Count offers made and accepted."""
    made = accepted = 0
    for row in rows:
        made += 1
        accepted += row.accepted_at is not None
    return Offers(made=made, accepted=accepted)
