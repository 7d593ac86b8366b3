"""Team seats: the team plan bought through Checkout, seat previews and exactly-once changes."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from billing import seats
from billing.catalog import parse_catalog
from billing.errors import CatalogError, NoSubscription, RateLimited
from billing.seats import (
    BadReference,
    BelowAssigned,
    NoTeamPlan,
    SameSeats,
    SeatsOutOfRange,
    team_checkout,
)
from tests.billing.conftest import PUBLIC_URL, Shop

DAY = 86400
SEAT = 800  # team_seat_monthly in the sandbox's demo catalog, EUR 8.00 a month


async def _team(shop: Shop, count: int = 3, team: str = "T0001", user: str = "U0001") -> str:
    """Buy `count` seats as a Slack admin does: Checkout with a quantity, paid on its page."""
    url = await seats.start_team_checkout(shop.billing, team_id=team, user_id=user,
                                          seats=count, locale="en")
    done = await asyncio.to_thread(shop.sandbox.complete_checkout, url.rsplit("/", 1)[1])
    return str(done["customer"])


def _update_invoices(shop: Shop, customer: str) -> list[dict[str, object]]:
    return [i for i in shop.sandbox.store.all("invoice", lambda i: i["customer"] == customer)
            if i["billing_reason"] != "subscription_create"]


def _quantity_updates(shop: Shop, subscription_id: str) -> int:
    return len(shop.sandbox.store.quantity_updates.get(subscription_id, []))


async def test_checkout_sells_the_seats(shop: Shop) -> None:
    """The team Checkout sells the team price with the quantity, naming channel, team and user."""
    url = await seats.start_team_checkout(shop.billing, team_id="T0001", user_id="U0001",
                                          seats=4, locale="de")
    session = shop.sandbox.get(url.rsplit("/", 1)[1])
    assert session["amount_total"] == 4 * SEAT and session["locale"] == "de"
    assert session["metadata"] == {"portier_channel": "slack", "portier_team": "T0001",
                                   "portier_user": "U0001"}
    assert session["success_url"].startswith(f"{PUBLIC_URL}/return?session_id=")
    done = await asyncio.to_thread(shop.sandbox.complete_checkout, session["id"])
    found = team_checkout(shop.sandbox.get(done["id"]))
    assert found is not None
    assert (found.team_id, found.user_id, found.customer_id) == ("T0001", "U0001",
                                                                 done["customer"])
    item = shop.subscription(done["customer"])["items"]["data"][0]
    assert (item["quantity"], item["price"]["lookup_key"]) == (4, "team_seat_monthly")


async def test_checkout_refuses_bad_input(shop: Shop) -> None:
    """Seats outside min..max and ids that are not ids are refused before Stripe is asked."""
    with pytest.raises(SeatsOutOfRange):
        await seats.start_team_checkout(shop.billing, team_id="T1", user_id="U1", seats=0,
                                        locale="en")
    with pytest.raises(BadReference):
        await seats.start_team_checkout(shop.billing, team_id="T1&x=1", user_id="U1", seats=2,
                                        locale="en")
    assert not shop.sandbox.store.all("checkout.session")
    assert team_checkout({"metadata": {"portier_channel": "telegram"}}) is None


async def test_overview_from_the_mirror(shop: Shop) -> None:
    """The team overview shows plan, seats, renewal, next invoice and the card that pays."""
    customer = await _team(shop, 3)
    overview = await seats.team_overview(shop.billing, customer_id=customer)
    assert overview is not None
    assert (overview.seats, overview.price.lookup_key, overview.status) == (
        3, "team_seat_monthly", "active")
    assert overview.plan_name == "Team" and overview.currency == "eur"
    assert overview.next_amount == 3 * SEAT
    assert overview.card is not None and overview.card.last4 == "4242"
    assert overview.current_period_end is not None
    requests = len(shop.sandbox.requests)
    again = await seats.team_overview(shop.billing, customer_id=customer)
    assert again == overview and len(shop.sandbox.requests) == requests  # no Stripe request


async def test_added_seats_go_on_the_next_invoice(shop: Shop) -> None:
    """Adding seats previews a prorated amount on the next invoice; confirming makes no invoice,
    and the renewal charges exactly the previewed next invoice."""
    customer = await _team(shop, 3)
    await shop.advance(10 * DAY)
    preview = await seats.preview_seats(shop.billing, customer_id=customer, seats=5,
                                        assigned=2)
    assert (preview.current_seats, preview.seats, preview.per_period) == (3, 5, 5 * SEAT)
    assert 0 < preview.prorated < 2 * SEAT
    assert preview.next_amount == preview.prorated + 5 * SEAT
    assert preview.proration_date <= shop.sandbox.now()

    result = await seats.confirm_seats(shop.billing, customer_id=customer, seats=5,
                                       proration_date=preview.proration_date,
                                       amount=preview.prorated, assigned=2)
    assert result.outcome == "applied" and result.preview == preview
    sub = shop.subscription(customer)
    assert sub["items"]["data"][0]["quantity"] == 5
    assert not _update_invoices(shop, customer)  # no invoice per change
    overview = await seats.team_overview(shop.billing, customer_id=customer)
    assert overview is not None
    assert (overview.seats, overview.next_amount) == (5, preview.next_amount)

    await shop.advance(sub["items"]["data"][0]["current_period_end"] - shop.sandbox.now() + 60)
    [renewal] = _update_invoices(shop, customer)
    assert renewal["billing_reason"] == "subscription_cycle"
    assert renewal["amount_paid"] == preview.next_amount


async def test_removed_seats_credit_the_next_invoice(shop: Shop) -> None:
    """Removing seats previews a credit on the next invoice and applies it."""
    customer = await _team(shop, 6)
    await shop.advance(12 * DAY)
    preview = await seats.preview_seats(shop.billing, customer_id=customer, seats=4,
                                        assigned=4)
    assert preview.prorated < 0 and preview.per_period == 4 * SEAT
    assert preview.next_amount == 4 * SEAT + preview.prorated
    result = await seats.confirm_seats(shop.billing, customer_id=customer, seats=4,
                                       proration_date=preview.proration_date,
                                       amount=preview.prorated, assigned=4)
    assert result.outcome == "applied"
    assert shop.subscription(customer)["items"]["data"][0]["quantity"] == 4
    assert not _update_invoices(shop, customer)


async def test_refuses_below_assigned_and_outside_min_max(shop: Shop) -> None:
    """It refuses fewer seats than assigned, and counts outside [team] min..max, unchanged."""
    customer = await _team(shop, 5)
    with pytest.raises(BelowAssigned) as below:
        await seats.preview_seats(shop.billing, customer_id=customer, seats=3, assigned=4)
    assert (below.value.seats, below.value.assigned) == (3, 4)
    for wrong in (0, 501, -2):
        with pytest.raises(SeatsOutOfRange) as out:
            await seats.preview_seats(shop.billing, customer_id=customer, seats=wrong,
                                      assigned=0)
        assert (out.value.minimum, out.value.maximum) == (1, 500)
    narrow = dataclasses.replace(shop.billing.catalog, min_seats=2, max_seats=10)
    shop.billing.catalog = narrow
    with pytest.raises(SeatsOutOfRange):
        await seats.preview_seats(shop.billing, customer_id=customer, seats=11, assigned=0)
    with pytest.raises(SeatsOutOfRange):
        await seats.confirm_seats(shop.billing, customer_id=customer, seats=1,
                                  proration_date=shop.sandbox.now(), amount=0)
    with pytest.raises(SameSeats):
        await seats.preview_seats(shop.billing, customer_id=customer, seats=5, assigned=0)
    with pytest.raises(BelowAssigned):  # a seat assigned since the preview
        await seats.confirm_seats(shop.billing, customer_id=customer, seats=6,
                                  proration_date=shop.sandbox.now(), amount=0, assigned=7)
    assert shop.subscription(customer)["items"]["data"][0]["quantity"] == 5


async def test_moved_amount_returns_a_fresh_preview(shop: Shop) -> None:
    """A confirm whose amount no longer holds changes nothing and returns a new preview."""
    customer = await _team(shop, 2)
    preview = await seats.preview_seats(shop.billing, customer_id=customer, seats=3,
                                        assigned=0)
    moved = await seats.confirm_seats(shop.billing, customer_id=customer, seats=3,
                                      proration_date=preview.proration_date,
                                      amount=preview.prorated + 1)
    assert moved.outcome == "moved" and moved.preview.seats == 3
    await shop.advance(35 * DAY)  # past the renewal: the old date is before the new period
    later = await seats.confirm_seats(shop.billing, customer_id=customer, seats=3,
                                      proration_date=preview.proration_date,
                                      amount=preview.prorated)
    assert later.outcome == "moved"
    assert later.preview.proration_date > preview.proration_date
    assert shop.subscription(customer)["items"]["data"][0]["quantity"] == 2


async def test_double_confirm_changes_once(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two confirms of one preview (two admins, a double tap) send one idempotency key: the
    seats change once; a confirm arriving after the change finds the seats already there."""
    customer = await _team(shop, 2)
    await shop.advance(3 * DAY)
    preview = await seats.preview_seats(shop.billing, customer_id=customer, seats=4,
                                        assigned=1)
    gateway = shop.billing.gateway
    both_checked = asyncio.Barrier(2)
    real = gateway.change_quantity

    async def together(*args: Any, **kwargs: Any) -> dict[str, Any]:
        await both_checked.wait()  # both confirms passed their checks: both send the update
        return await real(*args, **kwargs)

    monkeypatch.setattr(gateway, "change_quantity", together)
    args: dict[str, Any] = dict(customer_id=customer, seats=4,
                                proration_date=preview.proration_date, amount=preview.prorated)
    async with asyncio.timeout(20):
        first, second = await asyncio.gather(seats.confirm_seats(shop.billing, **args),
                                             seats.confirm_seats(shop.billing, **args))
    assert first.outcome == second.outcome == "applied"
    sub_id = preview.subscription_id
    keys = [k for (_, k), stored in shop.sandbox.store.idempotency.items()
            if stored.body.get("id") == sub_id]
    assert len(keys) == 1  # both updates sent one key: Stripe replayed the first answer
    assert _quantity_updates(shop, sub_id) == 1
    assert len(shop.sandbox.store.pending_items[sub_id]) == 2  # one credit, one charge
    monkeypatch.undo()
    with pytest.raises(SameSeats):
        await seats.confirm_seats(shop.billing, **args)
    assert _quantity_updates(shop, sub_id) == 1


async def test_past_stripes_quantity_limit_nothing_changes(shop: Shop) -> None:
    """Past Stripe's 200 quantity updates an hour, a confirm raises RateLimited; seats stay."""
    customer = await _team(shop, 2)
    sub = shop.subscription(customer)
    item_id = sub["items"]["data"][0]["id"]
    for n in range(200):  # a very busy hour of seat changes
        await shop.billing.gateway.change_quantity(
            sub["id"], item_id=item_id, quantity=3 + n % 2, proration_date=shop.sandbox.now(),
            key=f"busy-{n}")
    preview = await seats.preview_seats(shop.billing, customer_id=customer, seats=9,
                                        assigned=0)
    with pytest.raises(RateLimited):
        await seats.confirm_seats(shop.billing, customer_id=customer, seats=9,
                                  proration_date=preview.proration_date, amount=preview.prorated)
    assert shop.subscription(customer)["items"]["data"][0]["quantity"] == 4


async def test_a_seat_to_buy_only_when_none_is_free(shop: Shop) -> None:
    """A seat request needs a purchase only when every seat is assigned; at max_seats none can
    be bought."""
    customer = await _team(shop, 3)
    assert await seats.seat_to_buy(shop.billing, customer_id=customer, assigned=2) is None
    one_more = await seats.seat_to_buy(shop.billing, customer_id=customer, assigned=3)
    assert one_more is not None
    assert (one_more.current_seats, one_more.seats, one_more.per_period) == (3, 4, 4 * SEAT)
    shop.billing.catalog = dataclasses.replace(shop.billing.catalog, max_seats=3)
    with pytest.raises(SeatsOutOfRange):
        await seats.seat_to_buy(shop.billing, customer_id=customer, assigned=3)


async def test_a_customer_without_a_team_plan(shop: Shop) -> None:
    """A customer with no subscription, or only a personal plan, has no team plan."""
    personal = shop.customer(plan="pro_monthly")
    nothing = shop.customer(plan=None, email="bob@example.com")
    for customer in (personal, nothing):
        assert await seats.team_overview(shop.billing, customer_id=customer) is None
        with pytest.raises(NoTeamPlan) as raised:
            await seats.preview_seats(shop.billing, customer_id=customer, seats=2, assigned=0)
        assert isinstance(raised.value, NoSubscription)
        with pytest.raises(NoTeamPlan):
            await seats.confirm_seats(shop.billing, customer_id=customer, seats=2,
                                      proration_date=shop.sandbox.now(), amount=0)


@pytest.mark.parametrize("team", [{"min_seats": 0}, {"min_seats": 5, "max_seats": 4}])
def test_catalog_refuses_an_empty_seat_range(team: dict[str, int]) -> None:
    """[team] needs at least one seat and min_seats <= max_seats."""
    data = {"business": {"name": "Acme"},
            "plans": [{"key": "basic", "name": "Basic", "prices": ["basic_monthly"]}],
            "team": {"prices": ["team_seat_monthly"], **team}}
    with pytest.raises(CatalogError, match=r"\[team\]"):
        parse_catalog(data)
