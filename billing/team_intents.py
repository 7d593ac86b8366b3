"""Team intents: a seat change or an approved seat request, recorded before Stripe is called
and settled exactly once, even across a crash (SPEC §6b: "ack first, then work").

A chat action records its intent in one transaction (an approval also claims the request
there: the first decision wins); then the Stripe update is sent with an idempotency key
derived from the intent's id; then one transaction does the rest (the seat assigned, the
audit line, the requester's DM) and marks the intent done. A crash between those steps
leaves the intent pending: `resume` (the scheduler's job) settles every intent pending
longer than a few seconds by sending the same update with the same key — Stripe answers a
repeated key with the result it saved for the first request, for 24 hours, instead of doing
it again (https://docs.stripe.com/api/idempotent_requests) — then completing the rest.
The guarded `pending → done` update is the first statement of that last transaction, so
of two settlers at once (two replicas, a slow chat path and the resumer) one completes it.
A refusal (a declined card, the seats' limits, Stripe's 429 — nothing was done —, a moved
price) marks it failed, changes nothing else, and puts an approved request back in the
queue; a resumed one tells the admin. Only no answer at all (a 5xx, a timeout: it may have
been done) leaves it pending for the next pass, MAX_ATTEMPTS times.

Nothing here asks a chat app: the notices it queues are rendered by the handlers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import teams
from billing.errors import BillingError, StripeUnavailable
from billing.gateway import idempotency_key
from billing.models import utcnow
from billing.notices import enqueue
from billing.seats import SeatChange, SeatPreview, confirm_seats, team_overview
from billing.services import Billing
from billing.slack_models import TeamIntent

log = logging.getLogger(__name__)

SEATS, APPROVE = "seats", "approve"  # kinds
PENDING, DONE, FAILED = "pending", "done", "failed"  # statuses
RESUME_AFTER = 30.0  # seconds an intent stays pending before the resumer takes it over
MAX_ATTEMPTS = 5  # resumptions of an intent whose Stripe call failed for the moment
BATCH = 50  # intents resumed per pass
# Notice kinds (rendered by handlers): the audit line, the requester's DM, and what a
# resumed intent tells the admin who asked for it.
SEAT_AUDIT, SEAT_DECIDED = "seat_audit", "seat_decided"
INTENT_DONE, INTENT_FAILED = "team_intent_done", "team_intent_failed"
TAKEN, MOVED = "taken", "moved"  # why an intent failed, besides a BillingError's code


@dataclass(frozen=True)
class Intent:
    """A recorded intent as it was read."""

    id: int
    channel: str
    team_id: str
    kind: str
    params: dict[str, Any]
    status: str
    attempts: int
    updated_at: datetime

    @property
    def key(self) -> str:
        """Return the idempotency key of the intent's Stripe update."""
        return idempotency_key("team-intent", self.id)


@dataclass(frozen=True)
class Settled:
    """How settling an intent ended.

    `status` is done, failed or pending (Stripe did not answer: the resumer tries again);
    `other` when another settler finished it first; `change` the seat change applied
    (None for an approval that needed no new seat); `reason` why it failed (an error code,
    TAKEN or MOVED); `preview` a fresh preview when the price moved; `error` the refusal.
    """

    status: str
    change: SeatPreview | None = None
    reason: str | None = None
    preview: SeatPreview | None = None
    error: BillingError | None = None
    other: bool = False


def _intent(row: TeamIntent) -> Intent:
    return Intent(id=row.id, channel=row.channel, team_id=row.team_id, kind=row.kind,
                  params=dict(row.params or {}), status=row.status, attempts=row.attempts,
                  updated_at=row.updated_at)


async def record(session: AsyncSession, *, channel: str, team_id: str, kind: str,
                 params: dict[str, Any], ref: str | None = None) -> Intent | None:
    """Record a pending intent in the caller's transaction; return None when one named
    `ref` exists already (a double tap: `named` tells how it went)."""
    if ref is not None and await named(session, ref) is not None:
        return None
    now = utcnow()
    row = TeamIntent(ref=ref, channel=channel, team_id=team_id, kind=kind, params=params,
                     status=PENDING, attempts=0, created_at=now, updated_at=now)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent tap took the name first
        return None
    return _intent(row)


async def named(session: AsyncSession, ref: str) -> Intent | None:
    """Return the intent recorded under `ref`, if any."""
    row = await session.scalar(select(TeamIntent).where(TeamIntent.ref == ref))
    return _intent(row) if row is not None else None


async def get(session: AsyncSession, intent_id: int) -> Intent | None:
    """Return an intent by its id."""
    row = await session.get(TeamIntent, intent_id, populate_existing=True)
    return _intent(row) if row is not None else None


async def _finish(session: AsyncSession, intent: Intent, status: str, **values: Any) -> bool:
    """Move a pending intent to `status`; False when another settler moved it first."""
    result = await session.execute(
        update(TeamIntent).where(TeamIntent.id == intent.id, TeamIntent.status == PENDING)
        .values(status=status, updated_at=utcnow(), **values))
    return bool(getattr(result, "rowcount", 0))


def _chat(intent: Intent, who: str) -> str:
    return f"{intent.team_id}:{who}"


async def _tell_admin(session: AsyncSession, intent: Intent, kind: str,
                      params: dict[str, Any]) -> None:
    admin = str(intent.params.get("actor") or "")
    if not admin:
        return
    chat = _chat(intent, admin)
    await enqueue(session, dedupe_key=f"{kind}:{intent.id}", channel=intent.channel,
                  user_id=chat, chat_id=chat, kind=kind,
                  params={"kind": intent.kind, "seats": intent.params.get("seats"),
                          "name": intent.params.get("name"), "by": intent.params.get("by"),
                          **params})


async def audit_line(session: AsyncSession, *, channel: str, team_id: str, key: str,
                     params: dict[str, Any]) -> bool:
    """Queue an audit line for the team's billing channel under `key` (once); False when
    the team has none (handlers.flows.audit writes the chat path's other lines with it)."""
    where = await teams.billing_channel(session, channel=channel, team_id=team_id)
    if where is None:
        return False
    chat = f"{team_id}:{where}"
    return await enqueue(session, dedupe_key=f"{SEAT_AUDIT}:{team_id}:{key}", channel=channel,
                         user_id=chat, chat_id=chat, kind=SEAT_AUDIT, params=params)


def _seat_numbers(change: SeatPreview | None) -> dict[str, Any]:
    if change is None:
        return {"before": None, "after": None, "amount": None, "currency": None}
    return {"before": change.current_seats, "after": change.seats, "amount": change.prorated,
            "currency": change.currency}


async def complete(billing: Billing, intent: Intent, change: SeatPreview | None, *,
                   resumed: bool) -> Settled:
    """Do what follows a successful Stripe step in one transaction, marking the intent done
    (an approval whose free seat was taken meanwhile: failed, the request waiting again)."""
    params, channel, team = intent.params, intent.channel, intent.team_id
    overview = None
    if intent.kind == APPROVE:
        overview = await team_overview(billing, customer_id=str(params["customer"]))
    async with billing.db.session() as session:
        if intent.kind == SEATS:
            if not await _finish(session, intent, DONE):
                return Settled(DONE, other=True)
            await audit_line(session, channel=channel, team_id=team, key=f"intent:{intent.id}",
                             params={"change": "seats", "by": params.get("by"), "member": None,
                                     **_seat_numbers(change)})
            if resumed:
                await _tell_admin(session, intent, INTENT_DONE, {})
            return Settled(DONE, change=change)
        member = str(params["member"])
        await teams.hold_team(session, channel=channel, team_id=team)  # counted, then taken
        taken = overview is None or await teams.seat_count(
            session, channel=channel, team_id=team) >= overview.seats
        if taken:  # another approval or assignment took the free seat: the request waits
            if not await _finish(session, intent, FAILED, ref=None):
                return Settled(DONE, other=True)
            await teams.request_seat(session, channel=channel, team_id=team, user_id=member)
            if resumed:
                await _tell_admin(session, intent, INTENT_FAILED, {"reason": TAKEN})
            return Settled(FAILED, change=change, reason=TAKEN)
        if not await _finish(session, intent, DONE):
            return Settled(DONE, other=True)
        await teams.assign_seat(session, channel=channel, team_id=team, user_id=member)
        await audit_line(session, channel=channel, team_id=team, key=f"intent:{intent.id}",
                         params={"change": "approved", "by": params.get("by"),
                                 "member": params.get("name") or member,
                                 **_seat_numbers(change)})
        requester = _chat(intent, member)
        await enqueue(session, dedupe_key=f"{SEAT_DECIDED}:{team}:{member}:intent:{intent.id}",
                      channel=channel, user_id=requester, chat_id=requester,
                      kind=SEAT_DECIDED, params={"approved": True})
        if resumed:
            await _tell_admin(session, intent, INTENT_DONE, {})
    return Settled(DONE, change=change)


async def fail(billing: Billing, intent: Intent, reason: str, *, resumed: bool) -> bool:
    """Mark the intent failed (nothing was changed), an approval's request waiting again;
    tell the admin when resumed. False when another settler finished it first."""
    async with billing.db.session() as session:
        # The intent's name is freed: the same Confirm, pressed again, tries again.
        if not await _finish(session, intent, FAILED, ref=None):
            return False
        if intent.kind == APPROVE:
            await teams.request_seat(session, channel=intent.channel, team_id=intent.team_id,
                                     user_id=str(intent.params["member"]))
        if resumed:
            await _tell_admin(session, intent, INTENT_FAILED, {"reason": reason})
    return True


async def _stripe(billing: Billing, intent: Intent, *, resumed: bool) -> SeatChange | None:
    """Send the intent's seat change (if it has one) with the intent's key."""
    params = intent.params
    plan = params if intent.kind == SEATS else params.get("buy")
    if not plan:
        return None
    async with billing.db.session() as session:
        assigned = await teams.seat_count(session, channel=intent.channel,
                                          team_id=intent.team_id)
    before = plan.get("before")
    return await confirm_seats(
        billing, customer_id=str(params["customer"]), seats=int(plan["seats"]),
        proration_date=int(plan["proration_date"]), amount=int(plan["amount"]),
        assigned=assigned, key=intent.key, resumed=resumed,
        before=int(before) if before is not None else None)


async def settle(billing: Billing, intent: Intent, *, resumed: bool = False) -> Settled:
    """Do an intent's Stripe step, then complete it (or mark it failed)."""
    try:
        change = await _stripe(billing, intent, resumed=resumed)
    except StripeUnavailable as error:  # no answer: it may have been done, ask again later
        if not resumed or intent.attempts < MAX_ATTEMPTS:
            log.warning("team intent %s: Stripe did not answer (%s)", intent.id, error.code)
            return Settled(PENDING, error=error, reason=error.code)
        finished = await fail(billing, intent, error.code, resumed=resumed)
        return Settled(FAILED, error=error, reason=error.code, other=not finished)
    except BillingError as error:
        finished = await fail(billing, intent, error.code, resumed=resumed)
        return Settled(FAILED, error=error, reason=error.code, other=not finished)
    if change is not None and change.outcome != "applied":
        finished = await fail(billing, intent, MOVED, resumed=resumed)
        return Settled(FAILED, reason=MOVED, preview=change.preview, other=not finished)
    return await complete(billing, intent, change.preview if change else None,
                          resumed=resumed)


async def _lease(session: AsyncSession, intent: Intent) -> bool:
    """Take a pending intent over (as seen: of two resumers, one gets it) for a while."""
    result = await session.execute(
        update(TeamIntent).where(TeamIntent.id == intent.id, TeamIntent.status == PENDING,
                                 TeamIntent.updated_at == intent.updated_at)
        .values(attempts=TeamIntent.attempts + 1, updated_at=utcnow()))
    return bool(getattr(result, "rowcount", 0))


async def resume(billing: Billing, *, older_than: float = RESUME_AFTER,
                 now: datetime | None = None) -> int:
    """Settle the intents left pending longer than `older_than` seconds (a crash after the
    ack); return how many this pass settled (done or failed)."""
    cutoff = (now or utcnow()) - timedelta(seconds=older_than)
    async with billing.db.session() as session:
        rows = (await session.scalars(
            select(TeamIntent).where(TeamIntent.status == PENDING,
                                     TeamIntent.updated_at <= cutoff)
            .order_by(TeamIntent.updated_at, TeamIntent.id).limit(BATCH))).all()
        seen = [_intent(row) for row in rows]
    settled = 0
    for intent in seen:
        async with billing.db.session() as session:
            if not await _lease(session, intent):
                continue
        taken = Intent(**{**intent.__dict__, "attempts": intent.attempts + 1})
        try:
            outcome = await settle(billing, taken, resumed=True)
        except Exception:  # noqa: BLE001 - one intent's trouble does not stop the others
            log.exception("team intent %s could not be settled", intent.id)
            continue
        if outcome.status != PENDING and not outcome.other:
            settled += 1
            log.info("team intent %s (%s) settled: %s", intent.id, intent.kind,
                     outcome.reason or outcome.status)
    return settled
