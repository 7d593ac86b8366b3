"""Small HTML pages Portier serves to a browser (after Stripe's pages, or a bad card link)."""

from __future__ import annotations

from html import escape

from handlers.i18n import N_, translate

# A card link's token sits in the page's URL: no cache may keep it, no Referer may carry it.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def chat_page(locale: str, *, business: str, headline: str, text: str,
              chat_url: str | None) -> str:
    """Return a page in `locale`: a headline, a line, and a link back to the bot's chat."""
    opener = translate(locale, N_("Open the chat"))
    link = (f'<p><a href="{escape(chat_url)}">{escape(opener)}</a></p>'
            if chat_url else "")
    return (f"<!doctype html><html lang='{escape(locale)}'><head><meta charset='utf-8'>"
            f"<title>{escape(business)}</title>"
            f"<meta name='viewport' content='width=device-width'></head><body>"
            f"<h1>{escape(headline)}</h1><p>{escape(text)}</p>{link}"
            f"</body></html>")
