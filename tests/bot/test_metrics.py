"""`GET /metrics`: Prometheus text from prometheus_client, counters and database gauges."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing.errors import NotFound
from billing.models import Notice, StripeEvent, utcnow
from billing.notices import enqueue
from bot.metrics import Metrics
from sandbox.webhooks import sign
from tests.world import WEBHOOK_SECRET, World

PARAMS = {"plan": "Pro", "amount": 2900, "currency": "eur", "interval": "month"}


async def _scrape(world: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of /metrics by name and labels (parsed as Prometheus would)."""
    response = await world.http.get(f"{world.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


async def test_counts_updates_webhooks_stripe_requests_and_notices(world: World) -> None:
    """Updates by channel, webhook deliveries by outcome, Stripe requests and errors by kind
    and notices by outcome are counted."""
    before = await _scrape(world)
    user = world.user()
    await world.say(user, "/help")
    payload = json.dumps({"id": "evt_metrics", "object": "event", "type": "portier.test",
                          "created": 1, "data": {"object": {"id": "cus_1"}}})
    for signature in (sign(payload, WEBHOOK_SECRET), sign(payload, WEBHOOK_SECRET),
                      sign(payload, "whsec_forged")):
        await world.http.post(f"{world.url}/stripe/webhook", content=payload.encode(),
                              headers={"Stripe-Signature": signature})
    gateway = world.service.runtime.billing.gateway
    with pytest.raises(NotFound):
        await gateway.customer("cus_nobody")
    billing = world.service.runtime.billing
    async with billing.db.session() as session:
        await enqueue(session, dedupe_key="plan_changed:sub_1:evt_1", channel="telegram",
                      user_id=str(user.id), chat_id=str(user.id), kind="plan_changed",
                      params=PARAMS)
    assert world.service.outbox is not None
    world.service.outbox.kick()
    await world.telegram.next_message(user)
    await world.service.outbox.idle()
    after = await _scrape(world)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("portier_updates_total", channel="telegram") == 1
    assert grew("portier_stripe_webhooks_total", outcome="received") == 1
    assert grew("portier_stripe_webhooks_total", outcome="duplicate") == 1
    assert grew("portier_stripe_webhooks_total", outcome="rejected") == 1
    assert grew("portier_stripe_errors_total", kind="NotFound") == 1
    assert grew("portier_stripe_requests_total") == gateway.requests - before[
        ("portier_stripe_requests_total", ())] >= 1
    assert grew("portier_notices_total", outcome="sent") == 1
    await world.settle()  # the received event is processed (a type nobody handles)
    processed = (await _scrape(world))[("portier_stripe_events_total",
                                        (("outcome", "processed"),))]
    assert processed - before.get(("portier_stripe_events_total",
                                   (("outcome", "processed"),)), 0.0) >= 1
    assert after[("portier_notices_total", (("outcome", "unknown"),))] == 0


async def test_pending_and_doubtful_notices_and_webhook_lag_come_from_the_database(
        world: World) -> None:
    """Notices pending and in doubt, stored events not processed and the age of the oldest
    of them are read from the database at each scrape."""
    await world.service.worker.stop()  # nothing gets processed or sent meanwhile
    assert world.service.outbox is not None
    await world.service.outbox.stop()
    empty = await _scrape(world)
    assert empty[("portier_notices_pending", ())] == 0
    assert empty[("portier_webhook_lag_seconds", ())] == 0
    billing = world.service.runtime.billing
    async with billing.db.session() as session:
        for n, status in enumerate(("pending", "pending", "unknown", "sent")):
            session.add(Notice(dedupe_key=f"k{n}", channel="telegram", user_id="1",
                               chat_id="1", kind="plan_changed", params=PARAMS, status=status))
        session.add(StripeEvent(id="evt_waiting", type="customer.updated", created=1,
                                payload={"data": {"object": {"id": "cus_1"}}},
                                status="pending", attempts=0,
                                received_at=utcnow() - timedelta(seconds=90)))
    found = await _scrape(world)
    assert found[("portier_notices_pending", ())] == 2
    assert found[("portier_notices_unknown", ())] == 1
    assert found[("portier_stripe_events_stored", (("status", "pending"),))] == 1
    assert 90 <= found[("portier_webhook_lag_seconds", ())] < 120


async def test_each_server_has_a_registry_of_its_own(world: World) -> None:
    """Two sets of metrics in one process do not clash (no global registry)."""
    billing = world.service.runtime.billing
    first, second = Metrics(billing), Metrics(billing)
    first.updates.labels("telegram").inc()
    assert b'portier_updates_total{channel="telegram"} 1.0' in await first.render()
    assert b"portier_updates_total{" not in await second.render()
