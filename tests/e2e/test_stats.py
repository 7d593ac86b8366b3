"""`/stats` in Telegram: business admins only, figures in their language, a chart, a CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from billing.models import utcnow
from billing.movements import CSV_COLUMNS
from billing.mrr import Month
from billing.revenue import snapshot
from handlers.formatting import money
from tests.e2e.test_revenue import checkout
from tests.world import World, make_world

ADMIN = 4242
UNKNOWN = "I don't know that command. /help lists what I can do."


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A world whose Telegram admin is user 4242, with a Checkout customer on 2 × Pro."""
    async with make_world(database_url, tmp_path, admin_ids=frozenset({ADMIN})) as world:
        prices = world.service.runtime.billing.prices.by_key
        await checkout(world, prices["pro_monthly"].id, quantity=2)
        await snapshot(world.service.runtime.billing.db)
        yield world


async def test_others_are_answered_as_for_an_unknown_command(shop: World) -> None:
    """A customer or stranger sending /stats or /stats csv gets the unknown-command answer
    and no figures, chart or file."""
    stranger = shop.user()
    for text in ("/stats", "/stats csv", "/STATS"):
        reply = await shop.say(stranger, text)
        assert (reply.method, reply.text) == ("sendMessage", UNKNOWN)
    await shop.telegram.assert_no_message(stranger, within=0.3)
    assert "/stats" not in ((await shop.say(stranger, "/help")).text or "")
    menu = {c["command"] for c in shop.telegram.commands()}
    assert "stats" not in menu  # the default menu, which customers see, has no /stats


async def test_admin_gets_figures_and_a_chart(shop: World) -> None:
    """The admin reads this month's figures in German, then a PNG chart of 12 months."""
    admin = shop.telegram.user(ADMIN, first_name="Grace", language_code="de")
    figures = await shop.say(admin, "/stats")
    text = figures.text or ""
    assert text.startswith("Umsatz im "), text
    assert f"MRR: {money(5800, 'eur', 'de')}" in text
    assert "Aktive Abonnenten: 1" in text
    assert f"Neu {money(5800, 'eur', 'de')}" in text
    chart = await shop.telegram.next_message(admin)
    assert chart.method == "sendPhoto"
    assert chart.text == "MRR am Ende jedes Monats"
    data = chart.params["photo"].data
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # decodes: a real PNG, not just its magic bytes
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size[0] >= 600
    scope = {"type": "chat", "chat_id": ADMIN}
    assert "stats" in {c["command"] for c in shop.telegram.commands(scope=scope)}
    assert "/stats — Umsatzkennzahlen und MRR-Diagramm" in (
        (await shop.say(admin, "/help")).text or "")


async def test_admin_gets_the_csv(shop: World) -> None:
    """`/stats csv` sends 12 months as a CSV document with the documented columns."""
    admin = shop.telegram.user(ADMIN, first_name="Grace", language_code="en")
    document = await shop.say(admin, "/stats csv")
    assert document.method == "sendDocument"
    upload = document.params["document"]
    assert upload.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    this = str(Month.of(utcnow().date()))
    (row,) = [r for r in rows if r["month"] == this]
    assert (row["currency"], row["mrr"], row["new_mrr"], row["active_subscribers"],
            row["churned_subscribers"], row["churn_rate"]) == ("eur", "5800", "5800", "1", "0",
                                                              "0.0000")


async def test_stats_stay_out_of_groups(shop: World) -> None:
    """In a group even the admin is sent to the private chat: figures are not for groups."""
    admin = shop.telegram.user(ADMIN, first_name="Grace", language_code="en")
    group = shop.group()
    reply = await shop.say(admin, "/stats", group)
    assert "only in a private chat" in (reply.text or "")
