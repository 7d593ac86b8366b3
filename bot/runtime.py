"""Build the billing domain and the portal from settings: what every command starts from."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from billing.catalog import Catalog, PriceBook, load_catalog, resolve_prices
from billing.db import Database
from billing.gateway import StripeGateway
from billing.services import Billing
from bot.settings import Settings
from handlers.portal import Portal


def secret(value: object) -> str:
    """Return a SecretStr's value ('' when unset)."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter else ""


def same_secret(given: str | None, expected: str) -> bool:
    """Tell whether a secret sent to us is the expected one (never for an unset one)."""
    # Constant-time comparison: a timing side channel must not reveal the secret.
    return bool(expected) and hmac.compare_digest((given or "").encode(), expected.encode())


def make_gateway(settings: Settings) -> StripeGateway:
    """Create the Stripe gateway from settings."""
    return StripeGateway(secret(settings.stripe_secret_key), api_base=settings.stripe_api_base)


async def build_billing(settings: Settings, *, catalog: Catalog | None = None,
                        prices: PriceBook | None = None) -> Billing:
    """Open the database, connect the gateway and resolve the catalog's prices."""
    gateway = make_gateway(settings)
    catalog = catalog or load_catalog(settings.catalog_path)
    try:
        prices = prices or await resolve_prices(gateway, catalog)
    except Exception:
        await gateway.close()
        raise
    return Billing(db=Database(settings.database_url), gateway=gateway, catalog=catalog,
                   prices=prices, link_secret=secret(settings.link_secret),
                   public_url=settings.public_url)


@dataclass
class Runtime:
    """The running pieces shared by the HTTP server and the channels."""

    settings: Settings
    billing: Billing
    portal: Portal

    async def close(self) -> None:
        """Release database and Stripe connections."""
        await self.billing.gateway.close()
        await self.billing.db.close()
