"""A month's MRR movements and subscriber counts from the revenue history, and its CSV.

Movements are counted per subscriber (a customer in one currency, as Stripe counts
subscribers), step by step through the days their MRR changed in the month:
  0 → m   new MRR (m), or reactivation when they had paid before;
  m → 0   churned MRR (m);
  m → n   expansion (n − m) or contraction (m − n).
So MRR at the end = at the start + new + reactivation + expansion − contraction − churned.
Subscriber churn rate = subscribers churned in the month ÷ (active at its start + new and
reactivated in it), Stripe's formula (SPEC §6c). Gross MRR churn = (churned + contraction) ÷
MRR at the start; net MRR churn also takes off expansion.

The history is a list of state rows sorted by subscription and day (`billing.mrr.State` or
database rows of the same fields); `live` is each subscription's state now, which takes the
place of its rows from that day on. One pass over 100,000 subscriptions' year takes well
under a second (bench/metrics.py): the common subscriber, unchanged all month, costs a few
dictionary operations.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from fractions import Fraction
from itertools import accumulate, groupby
from operator import itemgetter
from typing import Any

from billing.mrr import MRR_STATUSES, Month, Offers, State, churn_rate, ratio, rounded

Live = Mapping[str, State]


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


def timelines(history: Iterable[Any], live: Live | None = None) -> Iterator[list[Any]]:
    """Yield each subscription's rows in day order, its live state in place of its rows from
    that day on (added only where it differs from the row before)."""
    live = live or {}
    seen: set[str] = set()
    for subscription_id, group in groupby(history, key=itemgetter(0)):  # grouped in C
        rows = list(group)
        now = live.get(subscription_id) if live else None
        if now is not None:
            seen.add(subscription_id)
            rows = _with_now(rows, now)
        yield rows
    for subscription_id, state in live.items():
        if subscription_id not in seen:
            yield [state]


def _with_now(rows: list[Any], now: State | None) -> list[Any]:
    if now is None:
        return rows
    while rows and rows[-1].day >= now.day:
        rows.pop()
    if not rows or changed(rows[-1], now):
        rows.append(now)
    return rows


def changed(row: Any, state: State) -> bool:
    """Tell whether a state differs from a history row in anything but its day."""
    return bool(row.mrr_micro != state.mrr_micro or row.status != state.status
                or row.price_id != state.price_id or row.currency != state.currency
                or row.customer_id != state.customer_id)


def with_live(history: Iterable[Any], live: Live) -> list[Any]:
    """Return the history with the live states applied, as one sorted list."""
    return [row for rows in timelines(history, live) for row in rows]


def month_figures(history: Iterable[Any], month: Month,
                  live: Live | None = None) -> dict[str, Figures]:
    """Return a month's figures per currency; rows after the month are ignored."""
    start, end = month.start, month.end
    # subscriber (customer, currency) → [MRR at the start, paid before, None or the
    # month's changes (day, subscription, MRR), None or {subscription: its MRR at the start}]
    subscribers: dict[tuple[str, str], list[Any]] = {}
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for rows in timelines(history, live):
        last = rows[-1]
        if last.day < start:  # the common case: nothing changed this month
            key = (last.customer_id, last.currency)
            entry = subscribers.get(key)
            paid = last.mrr_micro > 0 or (len(rows) > 1 and _paid(rows, last.currency))
            if entry is None:
                subscribers[key] = [last.mrr_micro, paid, None, None]
            else:
                entry[0] += last.mrr_micro
                entry[1] = entry[1] or paid
            for row in rows if len(rows) > 1 else ():
                if row.mrr_micro > 0 and row.currency != last.currency:
                    _entry(subscribers, (row.customer_id, row.currency))[1] = True
            continue
        _changes(rows, start, end, subscribers, tallies)
    for key, (total, paid_before, changes, starts) in subscribers.items():
        tally = tallies[key[1]]
        tally.start += total
        tally.active_at_start += total > 0
        if changes is None:
            tally.end += total
            tally.active += total > 0
        else:
            _walk(total, changes, paid_before, starts or {}, tally)
    return {currency: _figures(month, currency, tally)
            for currency, tally in sorted(tallies.items())}


def _paid(rows: list[Any], currency: str) -> bool:
    return any(row.mrr_micro > 0 and row.currency == currency for row in rows)


def _entry(subscribers: dict[tuple[str, str], list[Any]], key: tuple[str, str]) -> list[Any]:
    entry = subscribers.get(key)
    if entry is None:
        entry = subscribers[key] = [0, False, None, None]
    return entry


def _changes(rows: list[Any], start: date, end: date,
             subscribers: dict[tuple[str, str], list[Any]],
             tallies: dict[str, _Tally]) -> None:
    """Record a subscription that changed in the month: its start, its steps, its trial."""
    before: Any = None
    index = 0
    for index, row in enumerate(rows):  # noqa: B007 - the index is read after the loop
        if row.day >= start:
            break
        before = row
        if row.mrr_micro > 0:
            _entry(subscribers, (row.customer_id, row.currency))[1] = True
    if before is not None:
        entry = _entry(subscribers, (before.customer_id, before.currency))
        entry[0] += before.mrr_micro
        if entry[3] is None:
            entry[3] = {}
        entry[3][before.subscription_id] = before.mrr_micro
    previous = before
    for row in rows[index:]:
        if row.day > end:
            break
        entry = _entry(subscribers, (row.customer_id, row.currency))
        if entry[2] is None:
            entry[2] = []
        entry[2].append((row.day, row.subscription_id, row.mrr_micro))
        if previous is not None:
            if (previous.customer_id, previous.currency) != (row.customer_id, row.currency):
                gone = _entry(subscribers, (previous.customer_id, previous.currency))
                if gone[2] is None:  # moved to another customer or currency: gone from there
                    gone[2] = []
                gone[2].append((row.day, row.subscription_id, 0))
            if previous.status == "trialing" and row.status != "trialing":
                tallies[row.currency].trials_ended += 1
                tallies[row.currency].trials_converted += row.status in MRR_STATUSES
        previous = row


def _walk(total: int, changes: list[tuple[date, str, int]], paid: bool,
          starts: Mapping[str, int], tally: _Tally) -> None:
    """Add one subscriber's steps through the month to their currency's tally."""
    values = dict(starts)
    joined = rejoined = churned = False
    changes.sort()
    index = 0
    while index < len(changes):
        day = changes[index][0]
        after = total
        while index < len(changes) and changes[index][0] == day:
            _, subscription_id, value = changes[index]
            after += value - values.get(subscription_id, 0)
            values[subscription_id] = value
            index += 1
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


def mrr_series(history: Iterable[Any], months: Sequence[Month],
               live: Live | None = None) -> dict[str, list[int]]:
    """Return MRR at the end of each month, per currency (minor units), in one pass.

    Each row adds its MRR from the first month ending on or after its day and takes the
    previous row's off there; running sums give each month's end.
    """
    ends = [month.end for month in months]
    steps: dict[str, list[int]] = defaultdict(lambda: [0] * len(ends))
    for rows in timelines(history, live):
        value, currency = 0, ""
        for row in rows:
            index = bisect_left(ends, row.day)
            if index == len(ends):
                break
            if value:
                steps[currency][index] -= value
            if row.mrr_micro:
                steps[row.currency][index] += row.mrr_micro
            value, currency = row.mrr_micro, row.currency
    return {currency: [rounded(total) for total in accumulate(values)]
            for currency, values in sorted(steps.items()) if any(values)}


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
