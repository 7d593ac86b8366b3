"""Who is acting, and what a handler has at hand while answering them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from billing.errors import NotLinked
from billing.links import Link
from billing.services import Billing
from handlers import formatting
from handlers.i18n import translate

if TYPE_CHECKING:
    from billing.mirror import View
    from handlers.apps import ChatApp


@dataclass(frozen=True)
class Actor:
    """The chat user behind an update, as every channel describes them."""

    channel: str
    user_id: str
    chat_id: str
    private: bool
    language: str | None = None
    name: str | None = None
    message_id: str | None = None  # the message whose button was pressed, if the app says


@dataclass(frozen=True)
class Ctx:
    """One update's context: the actor, their language and zone, and the billing domain."""

    actor: Actor
    billing: Billing
    locale: str
    zone: str = "UTC"
    app: ChatApp | None = None  # the chat app the update came from (links, private chat)
    link: Link | None = None  # the actor's link to a customer when the update arrived
    admin: bool = False  # a business admin (TELEGRAM_ADMIN_IDS): /stats and the like
    # the linked customer's mirror rows, read with the link for a route that reads them first
    view: View | None = None

    def linked(self) -> Link:
        """Return the actor's link, or raise NotLinked."""
        if self.link is None:
            raise NotLinked("not linked")
        return self.link

    def t(self, message: str, **values: object) -> str:
        """Translate a message for this user."""
        return translate(self.locale, message, **values)

    def money(self, amount: int, currency: str) -> str:
        """Format money for this user."""
        return formatting.money(amount, currency, self.locale)

    def day(self, moment: datetime) -> str:
        """Format a day for this user, in their time zone."""
        return formatting.day(moment, self.locale, self.zone)

    def moment(self, moment: datetime) -> str:
        """Format a day and time for this user, in their time zone: `Thu, Dec 24, 2026 at
        09:00`."""
        return self.t("{day} at {time}", day=formatting.weekday(moment, self.locale, self.zone),
                      time=formatting.clock(moment, self.locale, self.zone))

    def number(self, value: int) -> str:
        """Format a count for this user: `1,000`."""
        return formatting.number(value, self.locale)

    def interval(self, interval: str, count: int = 1) -> str:
        """Name a billing interval ("per month", "every 3 months")."""
        if count == 1:
            return self.t("per year") if interval == "year" else self.t("per month")
        unit = self.t("years") if interval == "year" else self.t("months")
        return self.t("every {count} {unit}", count=count, unit=unit)
