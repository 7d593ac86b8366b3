"""What the console does in the Stripe sandbox: it opens hosted pages as a customer with a
test card would (posting the page's form, so the demo needs no browser) and moves the
sandbox's clock so that renewals happen."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

# Stripe's test payment methods the sandbox knows, by the short name typed after a number.
CARDS = {
    "visa": ("pm_card_visa", "Visa 4242, payments succeed"),
    "mastercard": ("pm_card_mastercard", "Mastercard 4444, payments succeed"),
    "decline": ("pm_card_visa_chargeDeclined", "Visa 0341, saved but every charge is declined"),
    "funds": ("pm_card_chargeDeclinedInsufficientFunds", "Visa 9995, declined: insufficient funds"),
    "fail": ("pm_card_chargeDeclined", "Visa 0002, declined and cannot be saved"),
}
DEFAULT_CARD = "pm_card_visa"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
PAGE = re.compile(r"/pay/(checkout|portal|invoice)/[A-Za-z0-9_]+(/pdf)?$")

Note = Callable[[str], None]


def card_label(token: str) -> str:
    """Name a test payment method for people ("Visa 4242")."""
    for known, label in CARDS.values():
        if known == token:
            return label.split(",")[0]
    return token


def parse_duration(text: str) -> int | None:
    """Turn `+30d`, `12h`, `+1y` or a bare number of days into seconds."""
    found = re.fullmatch(r"\+?(\d{1,5})\s*([smhdwy]?)", text.strip().lower())
    if found is None:
        return None
    return int(found.group(1)) * UNITS[found.group(2) or "d"]


def headline(page: str) -> str:
    """Pull the error (or else the title) out of a sandbox page."""
    found = (re.search(r"<p class='error'>(.*?)</p>", page)
             or re.search(r"<h1>(.*?)</h1>", page))
    return html.unescape(found.group(1)) if found else "The page did not complete."


class SandboxBrowser:
    """The console's browser: Stripe's sandbox pages and Portier's card links."""

    def __init__(self, *, sandbox_url: str | None, portier_url: str) -> None:
        self.sandbox_url = sandbox_url.rstrip("/") if sandbox_url else None
        self.portier_url = portier_url.rstrip("/")
        self._http = httpx.AsyncClient(timeout=30, follow_redirects=False)

    async def open(self, url: str, card: str | None, note: Note) -> bool:
        """Open a URL: complete a sandbox page as a test-card customer, print any other;
        return whether a page was completed (webhooks may follow)."""
        url = await self._through_card_link(url, note)
        if not url:
            return False
        page = PAGE.search(url)
        if not self.sandbox_url or not url.startswith(self.sandbox_url + "/pay/") or not page:
            note(f"Open in your browser: {url}")
            return False
        token = CARDS[card.lower()][0] if card and card.lower() in CARDS else card
        token = token or DEFAULT_CARD
        kind = "pdf" if page.group(2) else page.group(1)
        note(f"Downloading {url}" if kind == "pdf" else
             f"Opening Stripe's {kind} page as a customer ({card_label(token)}): {url}")
        try:
            outcome = await self._complete(kind, url, token)
        except httpx.HTTPError as error:
            outcome = f"The page did not answer ({type(error).__name__})."
        note(outcome)
        return True

    async def _through_card_link(self, url: str, note: Note) -> str:
        """Open an Update card button's link (Portier's `GET /card/<token>`, which makes
        Stripe's page at the tap) and return where it leads; "" when it shows a page."""
        if not url.startswith(self.portier_url + "/card/"):
            return url
        try:
            answer = await self._http.get(url)
        except httpx.HTTPError as error:
            note(f"The page did not answer ({type(error).__name__}).")
            return ""
        if answer.is_redirect:
            return answer.headers["location"]
        note(f"Portier's page says: {headline(answer.text)}")
        return ""

    async def _complete(self, kind: str, url: str, token: str) -> str:
        if kind == "pdf":
            answer = await self._http.get(url)
            return f"Downloaded the invoice PDF ({len(answer.content)} bytes)."
        if kind == "invoice":
            page = await self._http.get(url)
            status = re.search(r"Status: <b>(.*?)</b>", page.text)
            if "<form" not in page.text:  # only an open invoice has a form to pay it
                shown = status.group(1) if status else "not found"
                return f"{headline(page.text)}: {shown}, nothing to pay."
        sold = ""
        if kind == "checkout":  # what the page sells, quantities too ("3 × Team — €8.00 / month")
            page = await self._http.get(url)
            sold = "".join(f" for {html.unescape(item)}" for item in
                           re.findall(r"<p>(\d+ × .*?)</p>", page.text)[:1])
        answer = await self._http.post(url, data={"payment_method": token})
        if answer.is_error or "class='error'" in answer.text:
            return f"Stripe's page says: {headline(answer.text)}"
        return {
            "checkout": f"Paid on Stripe Checkout with {card_label(token)}{sold}; "
                        "back to the chat.",
            "portal": f"Saved {card_label(token)} as the card on Stripe's billing portal.",
            "invoice": f"Paid the invoice with {card_label(token)}.",
        }[kind]

    async def advance(self, arg: str, note: Note) -> bool:
        """Move the sandbox's clock by `arg` (`+30d`); return whether it moved."""
        seconds = parse_duration(arg)
        if seconds is None:
            note("Say how far to move the clock, e.g. :time +30d (h, d, w or y).")
            return False
        if self.sandbox_url is None:
            note("There is no Stripe sandbox to move the clock of.")
            return False
        answer = await self._http.post(f"{self.sandbox_url}/_sandbox/advance",
                                       data={"seconds": str(seconds)})
        now = datetime.fromtimestamp(int(answer.json()["now"]), UTC)
        note(f"Stripe's clock moved {arg.strip().lstrip('+')} ahead: "
             f"it is now {now:%Y-%m-%d %H:%M} UTC there.")
        return True

    async def aclose(self) -> None:
        """Release the HTTP client."""
        await self._http.aclose()
