"""Revenue figures from the mirror and its history, the daily snapshot, and the backfill.

The history (`billing.revenue_models.RevenueState`) is what Stripe's objects lose: the
scheduler's daily `snapshot` stores each subscription's state on the days it changed, and
`backfill` (run by `portier sync`) reconstructs what Stripe's invoices still show for
subscriptions the history does not know yet. Figures are `billing.movements`' pure functions
over these rows; the current month also sees the mirror as it is now. Reads are Core, on one
snapshot connection (`Database.read_rows`): the ORM's row objects cost more than the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.db import Database, Rows
from billing.mirror_models import MirrorInvoice, MirrorSubscription
from billing.models import utcnow
from billing.movements import Figures, Report, changed, month_figures, mrr_series, report
from billing.mrr import Month, State, Terms, offers_of, recovery, state_of, states_now
from billing.revenue_models import RevenueState, SaveOffer

_STATE = tuple(getattr(RevenueState, name) for name in State._fields)
_PRICED = tuple(getattr(MirrorSubscription, name) for name in Terms._fields)
UNKNOWN_BEFORE = (
    "plan, quantity and discount changes before today: each subscription is taken to have "
    "had today's price from its first paid invoice on",
    "past-due and unpaid spells before today",
)


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


# -- loading ---------------------------------------------------------------------------------

Reader = AsyncSession | Rows


async def history(session: Reader, until: date) -> list[State]:
    """Return every state row up to a day, by subscription and day."""
    found = await session.execute(select(*_STATE).where(RevenueState.day <= until)
                                  .order_by(RevenueState.subscription_id, RevenueState.day))
    # As named tuples: reading a field of a SQLAlchemy Row by name costs some microseconds,
    # which over a year of 100,000 subscriptions' history was most of the figures' time.
    return list(map(State._make, found.all()))


async def live_states(session: Reader, at: datetime, *,
                      since: datetime | None = None) -> dict[str, State]:
    """Return mirrored subscriptions' states now, as today's snapshot would store them: all
    of them, or only those that can differ from a snapshot taken since `since`.

    A snapshot compares every mirror row, so after it the history can differ from the mirror
    only where a row was read from Stripe again (`synced_at`) or a discount ran out.
    """
    query = select(*_PRICED)
    if since is not None:
        query = query.where(
            (MirrorSubscription.synced_at >= since)
            | MirrorSubscription.discount_end.between(since, at))
    return states_now(map(Terms._make, (await session.execute(query)).all()), at)


async def _last_snapshot(session: Reader) -> datetime | None:
    """Return the start of the newest day in the history: every snapshot compares all
    subscriptions, so nothing read before that day's snapshot can be missing from it."""
    newest = await session.scalar(select(func.max(RevenueState.day)))
    return _moment(newest) if newest is not None else None


async def month_report(db: Database, month: Month, *, now: datetime | None = None) -> Report:
    """Return a month's figures (the current month as of now)."""
    return (await month_reports(db, [month], now=now))[0]


async def month_reports(db: Database, months: Sequence[Month], *,
                        now: datetime | None = None) -> list[Report]:
    """Return several months' figures from one read of the history."""
    now = now or utcnow()
    async with db.read_rows() as session:
        rows, live = await _history(session, months, now)
        return [await _report(session, month, rows, live) for month in months]


async def overview(db: Database, month: Month, count: int = 12, *,
                   now: datetime | None = None
                   ) -> tuple[Report, list[Month], dict[str, list[int]]]:
    """Return a month's figures, the `count` months up to it and MRR at the end of each, per
    currency (what `/stats` shows), from one read of the history."""
    now = now or utcnow()
    months = [month.shift(offset) for offset in range(1 - count, 1)]
    async with db.read_rows() as session:
        rows, live = await _history(session, [month], now)
        figures = await _report(session, month, rows, live)
    return figures, months, mrr_series(rows, months, live)


async def _history(session: Reader, months: Sequence[Month], now: datetime
                   ) -> tuple[list[State], dict[str, State] | None]:
    """Read the history up to the last month, and the live states if it includes today."""
    today = now.date()
    if any(month.start > today for month in months):
        raise ValueError("a month still to come has no figures")
    last = max(month.end for month in months)
    rows = await history(session, last)
    if last < today:
        return rows, None
    return rows, await live_states(session, now, since=await _last_snapshot(session))


async def _report(session: Reader, month: Month, rows: list[State],
                  live: dict[str, State] | None) -> Report:
    """Put a month's figures together with its invoices' recovery and the save offers."""
    start, end = _moment(month.start), _moment(month.end + timedelta(days=1))
    invoices = (await session.execute(
        select(MirrorInvoice.status, MirrorInvoice.amount_due, MirrorInvoice.amount_remaining,
               MirrorInvoice.attempt_count, MirrorInvoice.currency)
        .where(MirrorInvoice.created >= start, MirrorInvoice.created < end))).all()
    offers = (await session.execute(select(SaveOffer.accepted_at).where(
        SaveOffer.offered_at >= start, SaveOffer.offered_at < end))).all()
    since = await session.scalar(select(func.min(RevenueState.day)))
    return report(month, month_figures(rows, month, live), recovery(invoices),
                  offers_of(offers), since)


def figures_of(reports: Sequence[Report]) -> list[Figures]:
    """Return every month's figures in every currency, month by month."""
    return [figures for each in reports for figures in each.currencies]


# -- the daily snapshot ----------------------------------------------------------------------

async def latest_states(session: AsyncSession) -> dict[str, Row[Any]]:
    """Return each subscription's newest state row."""
    ranked = select(RevenueState.id, *_STATE, func.row_number().over(
        partition_by=RevenueState.subscription_id,
        order_by=RevenueState.day.desc()).label("rank")).subquery()
    found = await session.execute(select(ranked).where(ranked.c.rank == 1))
    return {row.subscription_id: row for row in found}


def _values(state: State, source: str = "snapshot") -> dict[str, Any]:
    return {**state._asdict(), "source": source}


async def snapshot(db: Database, *, now: datetime | None = None) -> int:
    """Store today's state of every subscription whose state changed; return how many.

    Run again on the same day, it replaces that day's rows: the history keeps a day's last
    state.
    """
    now = now or utcnow()
    async with db.session() as session:
        live = await live_states(session, now)
        latest = await latest_states(session)
        added, replaced = [], []
        for state in live.values():
            known = latest.get(state.subscription_id)
            if known is not None and not changed(known, state):
                continue
            if known is not None and known.day == state.day:
                replaced.append({"row_id": known.id, **{
                    f"new_{k}": v for k, v in _values(state).items()}})
            else:
                added.append(_values(state))
        if added:
            await session.execute(insert(RevenueState), added)
        if replaced:
            await session.execute(
                update(RevenueState).where(RevenueState.id == bindparam("row_id"))
                .values({k[4:]: bindparam(k) for k in replaced[0] if k != "row_id"})
                .execution_options(synchronize_session=False), replaced)
    return len(added) + len(replaced)


# -- the backfill ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Backfilled:
    """What `backfill` added to the history, and what Stripe's invoices cannot tell."""

    subscriptions: int
    rows: int
    unknown: tuple[str, ...] = UNKNOWN_BEFORE


async def backfill(db: Database, *, now: datetime | None = None) -> Backfilled:
    """Reconstruct the history of subscriptions it does not know yet, from mirror invoices.

    A subscription is taken to be trialing from its creation (when it had a trial), paying
    today's MRR from its first paid invoice, and ended on the day it ended; then today's
    snapshot is taken. Subscriptions the history knows already are left as they are.
    """
    now = now or utcnow()
    async with db.session() as session:
        known = set(await session.scalars(select(RevenueState.subscription_id).distinct()))
        paid = await session.execute(
            select(MirrorInvoice.subscription_id, func.min(MirrorInvoice.created))
            .where(MirrorInvoice.status == "paid", MirrorInvoice.total > 0,
                   MirrorInvoice.subscription_id.is_not(None))
            .group_by(MirrorInvoice.subscription_id))
        firsts = {str(sub): created for sub, created in paid if created is not None}
        rows: list[dict[str, Any]] = []
        count = 0
        for sub in await session.scalars(select(MirrorSubscription)):
            if sub.id in known:
                continue
            days = _reconstructed(sub, firsts.get(sub.id), now)
            rows += [_values(state, "invoices") for state in days]
            count += bool(days)
        if rows:
            await session.execute(insert(RevenueState), rows)
    await snapshot(db, now=now)
    return Backfilled(subscriptions=count, rows=len(rows))


def _reconstructed(sub: MirrorSubscription, first_paid: datetime | None,
                   now: datetime) -> list[State]:
    """Return the states a subscription's invoices and dates show, one per day at most."""
    today = now.date()
    paying = state_of(sub, today, now)
    by_day: dict[date, State] = {}
    if sub.trial_end is not None and sub.trial_end > sub.created:
        by_day[sub.created.date()] = paying._replace(day=sub.created.date(),
                                                     status="trialing", mrr_micro=0)
    if first_paid is not None:
        if paying.mrr_micro == 0:  # ended or unpaid now: what it paid is today's price
            paying = state_of(sub, today, now, status="active")
        by_day[first_paid.date()] = paying._replace(day=first_paid.date(), status="active")
    ended = sub.ended_at or (sub.canceled_at if sub.status == "canceled" else None)
    if ended is not None and ended.date() < today:
        by_day[ended.date()] = paying._replace(day=ended.date(), status=sub.status,
                                               mrr_micro=0)
    return [by_day[day] for day in sorted(by_day) if day <= today]


# -- save offers -----------------------------------------------------------------------------

async def offer_made(db: Database, *, subscription_id: str, kind: str) -> None:
    """Record that the cancel flow made a save offer (once per subscription)."""
    async with db.session() as session:
        if await session.get(SaveOffer, subscription_id) is not None:
            return
        try:
            async with session.begin_nested():  # a double tap may race this one here
                session.add(SaveOffer(subscription_id=subscription_id, kind=kind))
        except IntegrityError:
            pass  # recorded by the other


PLAN_OFFER_WINDOW = timedelta(days=1)


async def offer_accepted(db: Database, *, subscription_id: str, kind: str | None = None) -> None:
    """Record that the customer took the save offer made to their subscription (of `kind`
    only, when given: a plan change counts only for a cheaper-plan offer of the last day)."""
    async with db.session() as session:
        offer = await session.get(SaveOffer, subscription_id)
        if offer is None or offer.accepted_at is not None:
            return
        if kind is not None and (offer.kind != kind
                                 or utcnow() - offer.offered_at > PLAN_OFFER_WINDOW):
            return
        offer.accepted_at = utcnow()
