"""Account-link tokens (SPEC §6.1) and links between chat users and customers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from billing.db import Database
from billing.deliveries import mark_unreachable
from billing.errors import NotFound, TokenInvalid
from billing.links import (
    Link,
    find_link,
    forget,
    hash_token,
    link_customer,
    mint_token,
    redeem_token,
)
from billing.models import ChatLink, LinkToken, Notice, PendingState, Preference, utcnow
from billing.notices import enqueue, mark
from billing.prefs import Profile, get_profile, save_prefs
from billing.services import Billing
from billing.state import expect
from tests.billing.conftest import Shop


async def _mint(billing: Billing, customer_id: str, ttl: timedelta = timedelta(hours=24),
                secret: str | None = None) -> str:
    async with billing.db.session() as session:
        minted = await mint_token(session, gateway=billing.gateway,
                                  secret=secret or billing.link_secret,
                                  customer_id=customer_id, ttl=ttl)
    return minted.token


async def _redeem(billing: Billing, token: str, user_id: str = "7") -> Link:
    async with billing.db.session() as session:
        return await redeem_token(session, secret=billing.link_secret, token=token,
                                  channel="telegram", user_id=user_id, chat_id=user_id)


async def _links(db: Database) -> list[ChatLink]:
    async with db.session() as session:
        return list(await session.scalars(select(ChatLink)))


async def test_redeeming_a_token_links_the_chat_user(shop: Shop) -> None:
    """It links the chat user to the customer the token names."""
    customer = shop.customer(plan=None)
    token = await _mint(shop.billing, customer)
    assert len(token) <= 64
    link = await _redeem(shop.billing, token)
    assert link == Link(channel="telegram", user_id="7", chat_id="7", customer_id=customer)
    async with shop.billing.db.session() as session:
        assert await find_link(session, channel="telegram", user_id="7") == link


async def test_a_used_token_is_refused(shop: Shop) -> None:
    """It refuses a used token and links nobody else."""
    token = await _mint(shop.billing, shop.customer(plan=None))
    await _redeem(shop.billing, token, user_id="7")
    with pytest.raises(TokenInvalid) as caught:
        await _redeem(shop.billing, token, user_id="8")
    assert caught.value.reason == "used"
    assert [link.user_id for link in await _links(shop.billing.db)] == ["7"]


async def test_an_expired_token_is_refused(shop: Shop) -> None:
    """It refuses a token past its expiry and links nothing."""
    token = await _mint(shop.billing, shop.customer(plan=None))
    async with shop.billing.db.session() as session:
        await session.execute(update(LinkToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(TokenInvalid) as caught:
        await _redeem(shop.billing, token)
    assert caught.value.reason == "expired"
    assert await _links(shop.billing.db) == []


@pytest.mark.parametrize("token", [
    pytest.param("a" * 65, id="too long"),
    pytest.param("", id="empty"),
    pytest.param("abc def", id="space"),
    pytest.param("abc$%", id="symbols"),
    pytest.param("tok\n", id="newline"),
    pytest.param("ünïcode", id="unicode"),
    pytest.param("x' OR '1'='1", id="quote"),
])
async def test_a_malformed_token_is_refused(shop: Shop, token: str) -> None:
    """It refuses a malformed token before looking it up, and links nothing."""
    with pytest.raises(TokenInvalid) as caught:
        await _redeem(shop.billing, token)
    assert caught.value.reason == "malformed"
    assert await _links(shop.billing.db) == []


async def test_an_unknown_token_is_refused(shop: Shop) -> None:
    """It refuses a well-formed token that was never minted."""
    with pytest.raises(TokenInvalid) as caught:
        await _redeem(shop.billing, "A" * 32)
    assert caught.value.reason == "unknown"


async def test_a_token_of_another_secret_is_refused(shop: Shop) -> None:
    """It refuses a token minted under another link secret."""
    token = await _mint(shop.billing, shop.customer(plan=None), secret="another-secret")
    with pytest.raises(TokenInvalid) as caught:
        await _redeem(shop.billing, token)
    assert caught.value.reason == "unknown"
    assert await _links(shop.billing.db) == []


async def test_tokens_are_stored_only_as_hashes(shop: Shop) -> None:
    """It keeps no plain token in the database, only its keyed hash."""
    token = await _mint(shop.billing, shop.customer(plan=None))
    async with shop.billing.db.session() as session:
        rows = (await session.execute(text("SELECT * FROM link_tokens"))).all()
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0])
    assert hash_token(token, shop.billing.link_secret) in rows[0]


async def test_concurrent_redemptions_succeed_once(shop: Shop) -> None:
    """It lets exactly one of two simultaneous redemptions of a token succeed."""
    token = await _mint(shop.billing, shop.customer(plan=None))
    outcomes = await asyncio.gather(_redeem(shop.billing, token, "7"),
                                    _redeem(shop.billing, token, "8"), return_exceptions=True)
    linked = [o for o in outcomes if isinstance(o, Link)]
    refused = [o for o in outcomes if isinstance(o, TokenInvalid)]
    assert len(linked) == 1 and len(refused) == 1, outcomes
    assert refused[0].reason == "used"
    assert [link.user_id for link in await _links(shop.billing.db)] == [linked[0].user_id]


async def test_minting_for_an_unknown_customer_is_not_found(shop: Shop) -> None:
    """It mints no token for a customer Stripe does not know."""
    with pytest.raises(NotFound):
        await _mint(shop.billing, "cus_unknown")
    async with shop.billing.db.session() as session:
        assert list(await session.scalars(select(LinkToken))) == []


async def test_relinking_moves_the_user(db: Database) -> None:
    """It re-links a chat user to another customer instead of adding a second link."""
    async with db.session() as session:
        await link_customer(session, channel="telegram", user_id="7", chat_id="7",
                            customer_id="cus_A")
    async with db.session() as session:
        await link_customer(session, channel="telegram", user_id="7", chat_id="70",
                            customer_id="cus_B")
    links = await _links(db)
    assert [(lk.chat_id, lk.customer_id) for lk in links] == [("70", "cus_B")]


async def test_the_profile_read_tells_language_zone_link_and_reachability(
        db: Database) -> None:
    """One read answers what every update needs, None for what is not stored."""
    async with db.read_rows() as rows:
        nobody = await get_profile(rows, channel="telegram", user_id="1", chat_id="1")
    assert nobody == Profile(locale=None, timezone=None, link=None, unreachable=False)
    async with db.session() as session:
        await link_customer(session, channel="telegram", user_id="1", chat_id="1",
                            customer_id="cus_A")
        await save_prefs(session, channel="telegram", user_id="1", locale="de",
                         timezone="Europe/Vienna")
        await mark_unreachable(session, channel="telegram", chat_id="1", reason="blocked")
    async with db.read_rows() as rows:
        someone = await get_profile(rows, channel="telegram", user_id="1", chat_id="1")
        in_a_group = await get_profile(rows, channel="telegram", user_id="1", chat_id="-100")
        on_slack = await get_profile(rows, channel="slack", user_id="1", chat_id="1")
    link = Link(channel="telegram", user_id="1", chat_id="1", customer_id="cus_A")
    assert someone == Profile(locale="de", timezone="Europe/Vienna", link=link,
                              unreachable=True)
    assert in_a_group == replace(someone, unreachable=False)
    assert on_slack == nobody


async def test_forget_deletes_everything_but_sent_notices(db: Database) -> None:
    """It deletes link, preferences, pending state and undelivered notices; sent ones stay."""
    for user in ("7", "8"):
        async with db.session() as session:
            await link_customer(session, channel="telegram", user_id=user, chat_id=user,
                                customer_id="cus_A")
            await save_prefs(session, channel="telegram", user_id=user, locale="de")
            await expect(session, channel="telegram", user_id=user, kind="cancel_comment")
            for kind in ("sent", "pending", "failed"):
                await enqueue(session, dedupe_key=f"{kind}:{user}", channel="telegram",
                              user_id=user, chat_id=user, kind="welcome", params={})
    async with db.session() as session:
        for notice in await session.scalars(select(Notice).where(Notice.kind == "welcome")):
            if notice.dedupe_key.split(":")[0] != "pending":
                await mark(session, notice.id, status=notice.dedupe_key.split(":")[0])
    async with db.session() as session:
        await forget(session, channel="telegram", user_id="7")
    async with db.session() as session:
        def users(rows: object) -> set[str]:
            return {row.user_id for row in rows}  # type: ignore[attr-defined]
        assert users(await session.scalars(select(ChatLink))) == {"8"}
        assert users(await session.scalars(select(Preference))) == {"8"}
        assert users(await session.scalars(select(PendingState))) == {"8"}
        kept = {n.dedupe_key for n in await session.scalars(select(Notice))}
    assert kept == {"sent:7", "sent:8", "pending:8", "failed:8"}
