"""What `GET /metrics` exposes, through prometheus_client, one registry per running Portier.

A registry of its own, not prometheus_client's global one: several servers in one process
(the tests run many) would otherwise register the same names twice.

Counted by this process: chat updates by channel, Stripe webhook deliveries, Stripe requests
and their errors by kind (read from the gateway's own counters at scrape time, since billing
knows nothing of Prometheus), notice outcomes (the outbox's). Read from the database at scrape
time, so the same for every replica: notices pending and in doubt, stored Stripe events by
status, and the webhook lag, the age of the oldest stored event not yet processed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from billing.models import Notice, StripeEvent, utcnow
from billing.services import Billing
from bot.outbox import Outbox

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST
NOTICE_STATES = ("pending", "sending", "unknown")  # small sets: counted on an index
EVENT_STATES = ("pending", "failed")
NOTICE_OUTCOMES = ("sent", "failed", "unreachable", "unknown")


@dataclass
class Snapshot:
    """What the database said at the last scrape."""

    notices: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    oldest_event: datetime | None = None
    at: datetime = field(default_factory=utcnow)


class LiveCollector(Collector):
    """Reads the gateway's and the outbox's counters and the last database snapshot."""

    def __init__(self, billing: Billing, outbox: Outbox | None) -> None:
        self.billing = billing
        self.outbox = outbox
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        """Yield the metrics as of now."""
        gateway = self.billing.gateway
        yield CounterMetricFamily("portier_stripe_requests", "Requests made to Stripe's API.",
                                  value=gateway.requests)
        errors = CounterMetricFamily("portier_stripe_errors",
                                     "Stripe requests that failed, by kind of error.",
                                     labels=["kind"])
        for kind, n in sorted(gateway.errors.items()):
            errors.add_metric([kind], n)
        yield errors
        attempts = CounterMetricFamily("portier_stripe_events",
                                     "Stripe events this process attempted, by outcome "
                                     "(failed: this attempt; it is retried with backoff).",
                                     labels=["outcome"])
        for outcome in ("processed", "failed"):
            attempts.add_metric([outcome], self.billing.events.get(outcome, 0))
        yield attempts
        notices = CounterMetricFamily("portier_notices",
                                      "Notices this process settled, by outcome (retried: "
                                      "back to pending; resent: in doubt, sent again).",
                                      labels=["outcome"])
        outcomes = self.outbox.outcomes if self.outbox is not None else {}
        for outcome in sorted(set(NOTICE_OUTCOMES) | set(outcomes)):
            notices.add_metric([outcome], outcomes.get(outcome, 0))
        yield notices
        shot = self.snapshot
        yield GaugeMetricFamily("portier_notices_pending", "Notices waiting to be sent.",
                                value=shot.notices.get("pending", 0))
        yield GaugeMetricFamily("portier_notices_sending", "Notices whose request is in the air.",
                                value=shot.notices.get("sending", 0))
        yield GaugeMetricFamily("portier_notices_unknown",
                                "Notices in doubt: a sender stopped while sending them "
                                "(portier notices --unknown lists them).",
                                value=shot.notices.get("unknown", 0))
        events = GaugeMetricFamily("portier_stripe_events_stored",
                                   "Stored Stripe events not processed, by status.",
                                   labels=["status"])
        for status in EVENT_STATES:
            events.add_metric([status], shot.events.get(status, 0))
        yield events
        lag = (shot.at - shot.oldest_event).total_seconds() if shot.oldest_event else 0.0
        yield GaugeMetricFamily("portier_webhook_lag_seconds",
                                "Age of the oldest stored Stripe event not yet processed.",
                                value=max(lag, 0.0))


class Metrics:
    """The registry of one running Portier and the counters its routes increment."""

    def __init__(self, billing: Billing, outbox: Outbox | None = None) -> None:
        self.billing = billing
        self.registry = CollectorRegistry()
        self.updates = Counter("portier_updates", "Chat updates received, by channel.",
                               ["channel"], registry=self.registry)
        self.webhooks = Counter("portier_stripe_webhooks",
                                "Stripe webhook deliveries, by outcome (received: verified "
                                "and new; duplicate: stored before; rejected: not verified).",
                                ["outcome"], registry=self.registry)
        for outcome in ("received", "duplicate", "rejected"):
            self.webhooks.labels(outcome)
        self.live = LiveCollector(billing, outbox)
        self.registry.register(self.live)

    async def read_database(self) -> None:
        """Read the database's part: notices waiting or in doubt, events not processed."""
        async with self.billing.db.read() as session:
            notices = {status: int(n) for status, n in await session.execute(
                select(Notice.status, func.count()).where(Notice.status.in_(NOTICE_STATES))
                .group_by(Notice.status))}
            events = {status: int(n) for status, n in await session.execute(
                select(StripeEvent.status, func.count())
                .where(StripeEvent.status.in_(EVENT_STATES)).group_by(StripeEvent.status))}
            oldest = await session.scalar(select(func.min(StripeEvent.received_at))
                                          .where(StripeEvent.status == "pending"))
        self.live.snapshot = Snapshot(notices=notices, events=events, oldest_event=oldest)

    async def render(self) -> bytes:
        """Return every metric in Prometheus' text format, the database read afresh (when it
        answers: else as last read, and this process's counters still count)."""
        try:
            await self.read_database()
        except Exception as error:  # noqa: BLE001 - /healthz is the place that reports it
            log.warning("metrics: the database did not answer (%s)", type(error).__name__)
        return generate_latest(self.registry)

