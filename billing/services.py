"""What every billing operation needs, built once per process."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from billing.catalog import Catalog, PriceBook
from billing.db import Database
from billing.gateway import StripeGateway
from billing.team_notices import TeamRoster


@dataclass
class Billing:
    """The database, the Stripe gateway and the resolved catalog."""

    db: Database
    gateway: StripeGateway
    catalog: Catalog
    prices: PriceBook
    link_secret: str
    public_url: str
    # Stripe events this process attempted, by outcome ("processed", "failed"): /metrics.
    events: Counter[str] = field(default_factory=Counter)
    # Who a team's notices go to, by channel: registered by each team chat app (Slack).
    rosters: dict[str, TeamRoster] = field(default_factory=dict)

    def return_url(self, **query: str) -> str:
        """Return the URL of Portier's `GET /return` page with a query."""
        base = self.public_url.rstrip("/") + "/return"
        if not query:
            return base
        return base + "?" + "&".join(f"{k}={v}" for k, v in query.items())
