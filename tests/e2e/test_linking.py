"""Account linking with one-time tokens: `/start <token>` and `POST /api/link-tokens`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from billing.models import ChatLink, LinkToken, utcnow
from tests.world import API_KEY, World


async def _links(world: World) -> list[ChatLink]:
    async with world.service.runtime.billing.db.session() as session:
        return list(await session.scalars(select(ChatLink)))


async def test_api_mints_a_deep_link_that_links_once(world: World) -> None:
    """It mints a deep link for a known customer; the token links one chat, once."""
    customer = await world.customer_with_plan()
    response = await world.http.post(f"{world.url}/api/link-tokens", json={
        "customer": customer["id"]}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 201
    body = response.json()
    assert body["url"] == f"https://t.me/{world.telegram.username}?start={body['token']}"
    assert body["command"] == f"/start {body['token']}"
    assert body["expires_at"] > utcnow().timestamp() + 23 * 3600
    user = world.user()
    reply = await world.say(user, f"/start {body['token']}")
    assert "Connected" in (reply.text or "")
    plan = await world.say(user, "/plan")
    assert "Pro" in (plan.text or "")
    other = world.user(first_name="Eve")
    again = await world.say(other, f"/start {body['token']}")
    assert "already used" in (again.text or "") and "Nothing was changed" in (again.text or "")
    assert [link.user_id for link in await _links(world)] == [str(user.id)]


async def test_api_refuses_bad_requests(world: World) -> None:
    """It answers 401 without the key, 422 for a malformed body, 404 for an unknown customer."""
    url = f"{world.url}/api/link-tokens"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    assert (await world.http.post(url, json={"customer": "cus_x"})).status_code == 401
    assert (await world.http.post(url, json={"customer": "cus_x"},
                                  headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await world.http.post(url, content=b"{not json", headers=auth)).status_code == 422
    assert (await world.http.post(url, json={"customer": 5}, headers=auth)).status_code == 422
    assert (await world.http.post(url, json={"customer": "x; drop"},
                                  headers=auth)).status_code == 422
    assert (await world.http.post(url, json={"customer": "cus_Unknown123"},
                                  headers=auth)).status_code == 404
    async with world.service.runtime.billing.db.session() as session:
        assert list(await session.scalars(select(LinkToken))) == []


async def test_bad_tokens_link_nothing(world: World) -> None:
    """An expired, unknown, foreign or malformed token gets a clear answer and links nothing."""
    customer = await world.customer_with_plan()
    expired = await world.mint(customer["id"])
    async with world.service.runtime.billing.db.session() as session:
        await session.execute(update(LinkToken).values(expires_at=utcnow() - timedelta(hours=1)))
    user = world.user()
    assert "expired" in ((await world.say(user, f"/start {expired}")).text or "")
    assert "not valid" in ((await world.say(user, "/start AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).text
                           or "")
    assert "not valid" in ((await world.say(user, "/start " + "x" * 65)).text or "")
    assert "not valid" in ((await world.say(user, "/start bad$token")).text or "")
    assert await _links(world) == []


async def test_connect_by_pasting_the_link(world: World) -> None:
    """"Connect my subscription" waits for the link; pasting it links the chat."""
    customer = await world.customer_with_plan()
    token = await world.mint(customer["id"])
    user = world.user()
    hello = await world.say(user, "/start")
    ask = await world.press(user, hello, "Connect my subscription")
    assert not isinstance(ask, str) and "paste the link" in (ask.text or "")
    done = await world.say(user, f"https://t.me/{world.telegram.username}?start={token}")
    assert "Connected" in (done.text or "")
