"""Update card through Stripe's billing portal (SPEC §6.6), in one tap.

The "Update card" button is a URL button to Portier's `GET /card/<token>` (billing.card_links):
the tap verifies the token, checks the chat still links that customer, makes the portal
session (flow payment_method_update) and redirects to it. `tap_card_link` decides what that
route answers; the HTTP server only renders it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from billing.card_links import TicketExpired, open_card_update, read
from billing.errors import NotFound, NotLinked, StripeProblem, TokenInvalid
from billing.services import Billing
from handlers import menus
from handlers.context import Ctx
from handlers.i18n import N_, pick_locale, translate
from handlers.replies import Reply, rows
from handlers.router import router

log = logging.getLogger(__name__)


@router.command("card")
async def update_card(ctx: Ctx, _args: str) -> list[Reply]:
    """Give the one-tap button to Stripe's page for updating the card (private chats only)."""
    ctx.linked()
    return [Reply(ctx.t("Update your card on Stripe's secure page. The button opens it for you "
                        "alone and works for 24 hours."),
                  buttons=rows(menus.update_card(ctx)), private=True)]


@router.button("card")
async def card_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Give the card button from a button of an older message."""
    return await update_card(ctx, "")


@dataclass(frozen=True)
class CardPage:
    """What `GET /card/<token>` answers: a redirect to Stripe's page (`url`), or a page in
    `locale` saying why not, with an HTTP status."""

    status: int
    locale: str
    headline: str = ""
    text: str = ""
    url: str | None = None


GONE = (N_("This link no longer works."),
        N_("This chat is no longer connected to the subscription. Nothing was changed."))
EXPIRED = (N_("This link has expired."),
           N_("Nothing was changed. Send /card in the chat for a fresh button."))
FORGED = (N_("This link is not valid."),
          N_("Nothing was changed. Send /card in the chat for a fresh button."))
STRIPE_DOWN = (N_("Stripe's page could not be opened."),
               N_("Nothing was changed. Please try again in a moment."))


async def tap_card_link(billing: Billing, token: str, *, languages: Sequence[str],
                        default_locale: str) -> CardPage:
    """Answer the tap on an Update card button: Stripe's card page, made now, or why not
    (in the token's language when it verifies, else the browser's)."""
    browser = pick_locale(*languages, default=default_locale)
    try:
        ticket = read(billing.link_secret, token)
    except TicketExpired as expired:
        return _page(410, pick_locale(expired.ticket.locale, default=browser), EXPIRED)
    except TokenInvalid as error:
        log.info("card link refused: %s", error.reason)  # never the token itself
        return _page(403, browser, FORGED)
    locale = pick_locale(ticket.locale, default=browser)
    try:
        url = await open_card_update(billing, ticket)
    except (NotLinked, NotFound):  # forgotten, linked to another customer, deleted in Stripe
        return _page(410, locale, GONE)
    except StripeProblem as error:
        log.warning("card link: no portal session (%s)", type(error).__name__)
        return _page(503, locale, STRIPE_DOWN)
    return CardPage(status=302, locale=locale, url=url)


def _page(status: int, locale: str, texts: tuple[str, str]) -> CardPage:
    headline, text = texts
    return CardPage(status=status, locale=locale, headline=translate(locale, headline),
                    text=translate(locale, text))
