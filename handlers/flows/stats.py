"""`/stats` for business admins: this month's revenue figures, the MRR chart, the CSV.

Only admins (TELEGRAM_ADMIN_IDS) reach it; anyone else gets the unknown-command answer
(the route is registered `admin=True`). Figures come from the mirror and its history
(billing.revenue), in the admin's language and money format.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from fractions import Fraction

from babel.dates import format_skeleton
from babel.numbers import format_percent

from billing import revenue
from billing.models import utcnow
from billing.movements import Figures, Report, csv_text
from billing.mrr import Month
from handlers.chart import mrr_chart
from handlers.context import Ctx
from handlers.replies import Attachment, Reply
from handlers.router import router

CHART_MONTHS = 12


def _month(ctx: Ctx, month: Month) -> str:
    return format_skeleton("yMMM", month.start, locale=ctx.locale)


def _rate(ctx: Ctx, value: Fraction | None) -> str:
    return "—" if value is None else format_percent(float(value), "#,##0.0%",
                                                     locale=ctx.locale)


def _currency_lines(ctx: Ctx, f: Figures) -> list[str]:
    money = ctx.money
    return [
        f"{f.currency.upper()}",
        ctx.t("MRR: {amount}", amount=money(f.mrr, f.currency)),
        ctx.t("Active subscribers: {count} · ARPU: {amount}", count=f.active_subscribers,
              amount="—" if f.arpu is None else money(f.arpu, f.currency)),
        ctx.t("New {new} · expansion {expansion} · contraction {contraction} · churned "
              "{churned} · reactivation {reactivation}",
              new=money(f.new_mrr, f.currency), expansion=money(f.expansion_mrr, f.currency),
              contraction=money(f.contraction_mrr, f.currency),
              churned=money(f.churned_mrr, f.currency),
              reactivation=money(f.reactivation_mrr, f.currency)),
        ctx.t("Subscriber churn: {rate} ({churned} of {base})", rate=_rate(ctx, f.churn_rate),
              churned=f.churned_subscribers,
              base=f.active_at_start + f.new_subscribers + f.reactivated_subscribers),
        ctx.t("MRR churn: {gross} gross, {net} net", gross=_rate(ctx, f.gross_mrr_churn),
              net=_rate(ctx, f.net_mrr_churn)),
        ctx.t("Failed payments recovered: {rate} ({paid} of {failed})",
              rate=_rate(ctx, f.recovery_rate), paid=money(f.recovered_amount, f.currency),
              failed=money(f.failed_amount, f.currency)),
        ctx.t("Trials converted: {rate} ({converted} of {ended})",
              rate=_rate(ctx, f.trial_conversion), converted=f.trials_converted,
              ended=f.trials_ended),
    ]


def figures_text(ctx: Ctx, report: Report) -> str:
    """Describe a month's report: a block per currency, then the cancel flow's offers."""
    blocks = ["\n".join(_currency_lines(ctx, f)) for f in report.currencies]
    if not blocks:
        blocks.append(ctx.t("No paying subscriptions yet."))
    offers = report.offers
    tail = [ctx.t("Save offers taken: {rate} ({accepted} of {made})",
                  rate=_rate(ctx, offers.acceptance), accepted=offers.accepted,
                  made=offers.made)]
    since = report.history_since
    tail.append(ctx.t("History kept since {day}.", day=ctx.day(_noon(since))) if since
                else ctx.t("No history yet: it starts with today's snapshot."))
    return "\n\n".join(blocks + ["\n".join(tail)])


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


@router.command("stats", admin=True)
async def show_stats(ctx: Ctx, args: str) -> list[Reply]:
    """Show this month's figures and the MRR chart; `/stats csv` sends the figures as CSV."""
    now = utcnow()
    month = Month.of(now.date())
    if args.strip().lower() == "csv":
        return await send_csv(ctx, month)
    report, months, series = await revenue.overview(ctx.billing.db, month, CHART_MONTHS,
                                                    now=now)
    title = ctx.t("MRR at the end of each month")
    # matplotlib draws for a tenth of a second or more: off the event loop every chat shares
    png = await asyncio.to_thread(mrr_chart, [_month(ctx, m) for m in months], series,
                                  title=title, money=ctx.money)
    return [Reply(figures_text(ctx, report), private=True,
                  title=ctx.t("Revenue in {month}", month=_month(ctx, month))),
            Reply(title, private=True,
                  attachment=Attachment(png, f"mrr-{month}.png", photo=True))]


async def send_csv(ctx: Ctx, month: Month) -> list[Reply]:
    """Send the last 12 months' figures as a CSV file (columns in the README)."""
    months = [month.shift(offset) for offset in range(1 - CHART_MONTHS, 1)]
    reports = await revenue.month_reports(ctx.billing.db, months)
    data = csv_text(revenue.figures_of(reports)).encode()
    return [Reply(ctx.t("Revenue figures, {first} to {last}", first=_month(ctx, months[0]),
                        last=_month(ctx, month)), private=True,
                  attachment=Attachment(data, f"revenue-{months[0]}-{month}.csv"))]
