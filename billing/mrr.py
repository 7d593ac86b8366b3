"""Revenue figures as pure functions over rows: MRR, movements, churn, recovery, offers.

`billing.revenue` loads the rows (the mirror, its history) and stores the daily snapshot.

MRR follows Stripe Billing's definition (SPEC §6c): `active` and `past_due` subscriptions,
not trials; each price normalised to a month (a year ÷ 12, a week × 52 ÷ 12, a day × 365 ÷
12, over `interval_count`), times the quantity, less the discount while it applies, without
tax; never summed across currencies. Stripe lets an account choose whether finite coupons
(`once`, `repeating`) lower MRR
(https://support.stripe.com/questions/impact-of-discounts-and-coupons-on-monthly-recurring-revenue-mrr-in-billing);
Portier subtracts every discount while it lasts: `forever` always, `repeating` until the
discount's `end`, `once` while it is still on the subscription (Stripe removes it after the
invoice it applied to).

Movements are counted per subscriber (a customer, in one currency, as Stripe counts
subscribers), step by step through the days their MRR changed in the month:
  0 → m   new MRR (m), or reactivation when they had paid before;
  m → 0   churned MRR (m);
  m → n   expansion (n − m) or contraction (m − n).
So MRR at the end = at the start + new + reactivation + expansion − contraction − churned.
Subscriber churn rate = subscribers churned in the month ÷ (active at its start + new and
reactivated in it), Stripe's formula (../shared/stripe/BEHAVIOUR.md "Revenue figures").
Gross MRR churn = (churned + contraction) ÷ MRR at the start; net MRR churn also takes off
expansion: (churned + contraction − expansion) ÷ MRR at the start.

Amounts are integers: MRR is kept in millionths of a minor unit and rounded (half up) once,
when a figure is shown.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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


# -- a month's movements, from the history --------------------------------------------------

@dataclass
class _Tally:
    start: int = 0
    end: int = 0
    new: int = 0
    expansion: int = 0
    contraction: int = 0
    churned: int = 0
    reactivation: int = 0
    active_at_start: int = 0
    active: int = 0
    new_subscribers: int = 0
    reactivated_subscribers: int = 0
    churned_subscribers: int = 0
    trials_ended: int = 0
    trials_converted: int = 0


@dataclass(frozen=True)
class Figures:
    """One month's figures in one currency; money in minor units."""

    month: str
    currency: str
    mrr: int
    mrr_at_start: int
    new_mrr: int
    expansion_mrr: int
    contraction_mrr: int
    churned_mrr: int
    reactivation_mrr: int
    active_subscribers: int
    active_at_start: int
    new_subscribers: int
    reactivated_subscribers: int
    churned_subscribers: int
    churn_rate: Fraction | None
    arpu: int | None
    gross_mrr_churn: Fraction | None
    net_mrr_churn: Fraction | None
    trials_ended: int = 0
    trials_converted: int = 0
    failed_amount: int = 0
    recovered_amount: int = 0

    @property
    def trial_conversion(self) -> Fraction | None:
        """Return the share of trials ended this month that became paying."""
        return ratio(self.trials_converted, self.trials_ended)

    @property
    def recovery_rate(self) -> Fraction | None:
        """Return the share of failed invoice amount that was paid later."""
        return ratio(self.recovered_amount, self.failed_amount)


def _figures(month: Month, currency: str, t: _Tally) -> Figures:
    joined = t.new_subscribers + t.reactivated_subscribers
    lost = t.churned + t.contraction
    return Figures(
        month=str(month), currency=currency, mrr=rounded(t.end), mrr_at_start=rounded(t.start),
        new_mrr=rounded(t.new), expansion_mrr=rounded(t.expansion),
        contraction_mrr=rounded(t.contraction), churned_mrr=rounded(t.churned),
        reactivation_mrr=rounded(t.reactivation), active_subscribers=t.active,
        active_at_start=t.active_at_start, new_subscribers=t.new_subscribers,
        reactivated_subscribers=t.reactivated_subscribers,
        churned_subscribers=t.churned_subscribers,
        churn_rate=churn_rate(t.churned_subscribers, t.active_at_start, joined),
        arpu=rounded(t.end // t.active) if t.active else None,
        gross_mrr_churn=ratio(lost, t.start), net_mrr_churn=ratio(lost - t.expansion, t.start),
        trials_ended=t.trials_ended, trials_converted=t.trials_converted)


@dataclass
class _Subscriber:
    """One customer in one currency: their subscriptions' MRR through the month."""

    start: dict[str, int] = field(default_factory=dict)
    changes: list[tuple[date, str, int]] = field(default_factory=list)
    paid_before: bool = False


def month_figures(history: Iterable[Any], month: Month) -> dict[str, Figures]:
    """Return a month's figures per currency from state rows sorted by subscription and day.

    Rows after the month are ignored; a subscription's latest row before the month is its
    state at the start.
    """
    start, end = month.start, month.end
    subscribers: dict[tuple[str, str], _Subscriber] = defaultdict(_Subscriber)
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    previous: Any = None
    for row in history:
        if row.day > end:
            continue
        same = previous is not None and previous.subscription_id == row.subscription_id
        before = previous if same else None
        previous = row
        if row.day < start:
            if row.mrr_micro > 0:
                subscribers[(row.customer_id, row.currency)].paid_before = True
            # rows come in day order: the latest one before the month is the start state
            subscribers[(row.customer_id, row.currency)].start[row.subscription_id] = (
                row.mrr_micro)
            if before is not None and before.currency != row.currency:
                subscribers[(before.customer_id, before.currency)].start.pop(
                    row.subscription_id, None)
            continue
        key = (row.customer_id, row.currency)
        subscribers[key].changes.append((row.day, row.subscription_id, row.mrr_micro))
        if before is not None and before.currency != row.currency:
            subscribers[(before.customer_id, before.currency)].changes.append(
                (row.day, row.subscription_id, 0))
        if before is not None and before.status == "trialing" and row.status != "trialing":
            tallies[row.currency].trials_ended += 1
            tallies[row.currency].trials_converted += row.status in MRR_STATUSES
    for (_customer, currency), subscriber in subscribers.items():
        _walk(subscriber, tallies[currency])
    return {currency: _figures(month, currency, tally)
            for currency, tally in sorted(tallies.items())}


def _walk(subscriber: _Subscriber, tally: _Tally) -> None:
    """Add one subscriber's steps through the month to their currency's tally."""
    values = dict(subscriber.start)
    total = sum(values.values())
    tally.start += total
    tally.active_at_start += total > 0
    paid = subscriber.paid_before
    joined = rejoined = churned = False
    subscriber.changes.sort()
    index, changes = 0, subscriber.changes
    while index < len(changes):
        day = changes[index][0]
        while index < len(changes) and changes[index][0] == day:
            values[changes[index][1]] = changes[index][2]
            index += 1
        after = sum(values.values())
        if total == 0 and after > 0:
            if paid:
                tally.reactivation += after
                rejoined = True
            else:
                tally.new += after
                joined = True
            paid = True
        elif total > 0 and after == 0:
            tally.churned += total
            churned = True
        elif after > total:
            tally.expansion += after - total
        else:
            tally.contraction += total - after
        total = after
    tally.end += total
    tally.active += total > 0
    tally.new_subscribers += joined
    tally.reactivated_subscribers += rejoined
    tally.churned_subscribers += churned


def with_live(history: Iterable[Any], live: Iterable[State]) -> list[Any]:
    """Return the history with today's live states in place of any row of that day."""
    today = {state.subscription_id: state for state in live}
    merged: list[Any] = []
    last: dict[str, Any] = {}
    for row in history:
        state = today.get(row.subscription_id)
        if state is not None and row.day >= state.day:
            continue
        merged.append(row)
        last[row.subscription_id] = row
    for subscription_id, state in today.items():
        known = last.get(subscription_id)
        if known is None or _changed(known, state):
            merged.append(state)
    merged.sort(key=lambda row: (row.subscription_id, row.day))
    return merged


def _changed(row: Any, state: State) -> bool:
    return (row.status, row.currency, row.price_id, row.mrr_micro, row.customer_id) != (
        state.status, state.currency, state.price_id, state.mrr_micro, state.customer_id)


def mrr_series(history: Iterable[Any], months: list[Month]) -> dict[str, list[int]]:
    """Return MRR at the end of each month, per currency (minor units), in one pass."""
    ends = [month.end for month in months]
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * len(ends))
    rows: list[Any] = []

    def close(rows: list[Any]) -> None:
        position = 0
        for index, end in enumerate(ends):
            while position < len(rows) and rows[position].day <= end:
                position += 1
            if position:
                current = rows[position - 1]
                if current.mrr_micro:
                    totals[current.currency][index] += current.mrr_micro

    for row in history:
        if rows and rows[-1].subscription_id != row.subscription_id:
            close(rows)
            rows = []
        rows.append(row)
    close(rows)
    return {currency: [rounded(v) for v in values] for currency, values in sorted(totals.items())}


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


@dataclass(frozen=True)
class Report:
    """A month's figures in every currency, and the save offers of the cancel flow."""

    month: str
    currencies: tuple[Figures, ...]
    offers: Offers
    history_since: date | None  # the first day the history knows; nothing before it


def report(month: Month, figures: Mapping[str, Figures],
           failures: Mapping[str, tuple[int, int]], offers: Offers,
           history_since: date | None) -> Report:
    """Put a month's figures, recovery and offers together."""
    rows = []
    for currency in sorted(set(figures) | set(failures)):
        base = figures.get(currency) or _figures(month, currency, _Tally())
        failed, paid = failures.get(currency, (0, 0))
        rows.append(replace(base, failed_amount=failed, recovered_amount=paid))
    return Report(month=str(month), currencies=tuple(rows), offers=offers,
                  history_since=history_since)


# -- the CSV export (README "Revenue figures" documents the columns) -----------------------

CSV_COLUMNS = (
    "month", "currency", "mrr", "mrr_at_start", "new_mrr", "expansion_mrr", "contraction_mrr",
    "churned_mrr", "reactivation_mrr", "active_subscribers", "active_at_start",
    "new_subscribers", "reactivated_subscribers", "churned_subscribers", "churn_rate", "arpu",
    "gross_mrr_churn", "net_mrr_churn", "trials_ended", "trials_converted", "trial_conversion",
    "failed_amount", "recovered_amount", "recovery_rate",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Fraction):
        return f"{float(value):.4f}"
    return str(value)


def csv_text(figures: Iterable[Figures]) -> str:
    """Return figures as CSV: a header of `CSV_COLUMNS`, a row per month and currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for each in figures:
        writer.writerow([_cell(getattr(each, column)) for column in CSV_COLUMNS])
    return out.getvalue()
