"""`portier metrics`: the month's revenue figures as a table, the last 12 months as CSV."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from billing.db import Database
from billing.models import utcnow
from billing.movements import Figures, Report, csv_text
from billing.mrr import Month
from billing.revenue import figures_of, month_reports
from handlers.formatting import money

CSV_MONTHS = 12


def _rate(value: Fraction | None) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _money(currency: str) -> Callable[[int | None], str]:
    def show(amount: int | None) -> str:
        return "—" if amount is None else money(amount, currency, "en")
    return show


_LINES: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("MRR", lambda f: _money(f.currency)(f.mrr)),
    ("MRR at start", lambda f: _money(f.currency)(f.mrr_at_start)),
    ("new", lambda f: _money(f.currency)(f.new_mrr)),
    ("expansion", lambda f: _money(f.currency)(f.expansion_mrr)),
    ("contraction", lambda f: _money(f.currency)(f.contraction_mrr)),
    ("churned", lambda f: _money(f.currency)(f.churned_mrr)),
    ("reactivation", lambda f: _money(f.currency)(f.reactivation_mrr)),
    ("active subscribers", lambda f: str(f.active_subscribers)),
    ("ARPU", lambda f: _money(f.currency)(f.arpu)),
    ("new subscribers", lambda f: str(f.new_subscribers + f.reactivated_subscribers)),
    ("churned subscribers", lambda f: str(f.churned_subscribers)),
    ("churn rate", lambda f: _rate(f.churn_rate)),
    ("gross MRR churn", lambda f: _rate(f.gross_mrr_churn)),
    ("net MRR churn", lambda f: _rate(f.net_mrr_churn)),
    ("payment recovery", lambda f: _rate(f.recovery_rate)),
    ("trial conversion", lambda f: _rate(f.trial_conversion)),
)


def table(report: Report) -> str:
    """Return a month's report as a plain-text table, a column per currency."""
    width = max(len(label) for label, _ in _LINES)
    columns = report.currencies
    lines = [f"{report.month:<{width}}" + "".join(f"  {f.currency.upper():>14}"
                                                 for f in columns)]
    if not columns:
        lines.append("no revenue recorded in this month")
    else:
        lines += [f"{label:<{width}}" + "".join(f"  {show(f):>14}" for f in columns)
                  for label, show in _LINES]
    offers = report.offers
    lines.append(f"{'save offers':<{width}}  {offers.accepted} of {offers.made} accepted"
                 f" ({_rate(offers.acceptance)})")
    if report.history_since is not None:
        lines.append(f"history kept since {report.history_since:%Y-%m-%d}")
    else:
        lines.append("no history yet: run `portier sync`, or let `portier run` take the daily "
                     "snapshot")
    return "\n".join(lines)


async def show_metrics(database_url: str, month_text: str | None,
                       csv_path: Path | None) -> str:
    """Return the table of a month (this month by default); write 12 months' CSV if asked."""
    now = utcnow()
    month = Month.parse(month_text) if month_text else Month.of(now.date())
    db = Database(database_url)
    try:
        count = CSV_MONTHS if csv_path is not None else 1
        months = [month.shift(offset) for offset in range(1 - count, 1)]
        reports = await month_reports(db, months, now=now)
    finally:
        await db.close()
    if csv_path is not None:
        await asyncio.to_thread(csv_path.write_text, csv_text(figures_of(reports)),
                                encoding="utf-8")
    return table(reports[-1])
