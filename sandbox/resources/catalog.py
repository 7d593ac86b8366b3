"""Products and prices."""

from __future__ import annotations

from typing import Any

from sandbox.errors import invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_bool, as_int, as_list
from sandbox.store import Obj, RouteSpec, Store, new_id

INTERVALS = ("day", "week", "month", "year")


def create_product(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/products."""
    name = params.get("name")
    if not name:
        raise invalid("Missing required param: name.", param="name")
    product_id = str(params.get("id") or new_id("prod_", 14))
    if product_id in store.objects:
        raise invalid(
            f"Product already exists: {product_id}", param="id", code="resource_already_exists"
        )
    now = store.now()
    product: Obj = {
        "id": product_id,
        "object": "product",
        "active": as_bool(params.get("active")) is not False,
        "created": now,
        "default_price": None,
        "description": params.get("description") or None,
        "images": [str(i) for i in as_list(params.get("images"))],
        "livemode": False,
        "marketing_features": [
            {"name": str(f.get("name"))} for f in as_list(params.get("marketing_features"))
        ],
        "metadata": {},
        "name": str(name),
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": params.get("statement_descriptor") or None,
        "tax_code": None,
        "type": "service",
        "unit_label": params.get("unit_label") or None,
        "updated": now,
        "url": params.get("url") or None,
    }
    set_metadata(product, params.get("metadata"))
    store.put(product)
    return render(store, product, params)


def retrieve_product(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/products/{id}."""
    return render(store, store.get(id, "product"), params)


def update_product(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/products/{id}: name, description, active, metadata, default_price."""
    product = store.get(id, "product")
    for key in ("name", "description", "default_price", "unit_label", "url"):
        if key in params:
            product[key] = params[key] or None
    if params.get("active") is not None:
        product["active"] = as_bool(params["active"]) is not False
    set_metadata(product, params.get("metadata"))
    product["updated"] = store.now()
    return render(store, product, params)


def list_products(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/products with active and ids[]."""
    active = as_bool(params.get("active"))
    ids = set(as_list(params.get("ids")))
    items = store.all(
        "product",
        lambda p: (active is None or p["active"] == active) and (not ids or p["id"] in ids),
    )
    return render_list(store, items, params, "/v1/products")


def create_price(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/prices: product or product_data, unit_amount, currency, recurring, lookup_key."""
    product_id = params.get("product")
    if not product_id and isinstance(params.get("product_data"), dict):
        product_id = create_product(store, params["product_data"])["id"]
    if not product_id:
        raise invalid("Missing required param: product.", param="product")
    product = store.get(str(product_id), "product", param="product")
    currency = str(params.get("currency") or "").lower()
    if not currency:
        raise invalid("Missing required param: currency.", param="currency")
    amount = as_int(params.get("unit_amount"), "unit_amount")
    if amount is None or amount < 0:
        raise invalid("Missing required param: unit_amount.", param="unit_amount")
    recurring = None
    if isinstance(params.get("recurring"), dict):
        interval = params["recurring"].get("interval")
        if interval not in INTERVALS:
            raise invalid("Invalid recurring[interval].", param="recurring[interval]")
        recurring = {
            "interval": interval,
            "interval_count": as_int(params["recurring"].get("interval_count"), "interval_count")
            or 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    lookup_key = params.get("lookup_key") or None
    if lookup_key:
        holders = store.all("price", lambda p: p["lookup_key"] == lookup_key)
        if holders and as_bool(params.get("transfer_lookup_key")) is not True:
            raise invalid(
                f"A price (`{holders[0]['id']}`) already uses that lookup key.",
                param="lookup_key",
            )
        for holder in holders:
            holder["lookup_key"] = None
    price: Obj = {
        "id": str(params.get("id") or new_id("price_")),
        "object": "price",
        "active": as_bool(params.get("active")) is not False,
        "billing_scheme": "per_unit",
        "created": store.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": {},
        "nickname": params.get("nickname") or None,
        "product": product["id"],
        "recurring": recurring,
        "tax_behavior": params.get("tax_behavior") or "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }
    set_metadata(price, params.get("metadata"))
    store.put(price)
    if product["default_price"] is None:
        product["default_price"] = price["id"]
    return render(store, price, params)


def retrieve_price(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/prices/{id}."""
    return render(store, store.get(id, "price"), params)


def update_price(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/prices/{id}: active, nickname, lookup_key, metadata."""
    price = store.get(id, "price")
    if params.get("active") is not None:
        price["active"] = as_bool(params["active"]) is not False
    if "nickname" in params:
        price["nickname"] = params["nickname"] or None
    if "lookup_key" in params:
        key = params["lookup_key"] or None
        for holder in store.all("price", lambda p: key is not None and p["lookup_key"] == key):
            holder["lookup_key"] = None
        price["lookup_key"] = key
    set_metadata(price, params.get("metadata"))
    return render(store, price, params)


def list_prices(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/prices with lookup_keys[], active, product, currency, type, recurring[interval]."""
    keys = {str(k) for k in as_list(params.get("lookup_keys"))}
    active = as_bool(params.get("active"))
    raw_recurring = params.get("recurring")
    recurring: dict[str, Any] = raw_recurring if isinstance(raw_recurring, dict) else {}

    def keep(p: Obj) -> bool:
        return (
            (not keys or p["lookup_key"] in keys)
            and (active is None or p["active"] == active)
            and (not params.get("product") or p["product"] == params["product"])
            and (not params.get("currency") or p["currency"] == params["currency"])
            and (not params.get("type") or p["type"] == params["type"])
            and (
                not recurring.get("interval")
                or (p["recurring"] or {}).get("interval") == recurring["interval"]
            )
        )

    return render_list(store, store.all("price", keep), params, "/v1/prices")


def price_by_lookup_key(store: Store, lookup_key: str) -> Obj:
    """Return the price holding this lookup key, or raise."""
    for price in store.all("price", lambda p: p["lookup_key"] == lookup_key):
        return price
    raise invalid(f"No price with lookup_key '{lookup_key}'.", param="lookup_key")


ROUTES: list[RouteSpec] = [
    ("POST", "/v1/products", create_product),
    ("GET", "/v1/products", list_products),
    ("GET", "/v1/products/{id}", retrieve_product),
    ("POST", "/v1/products/{id}", update_product),
    ("POST", "/v1/prices", create_price),
    ("GET", "/v1/prices", list_prices),
    ("GET", "/v1/prices/{id}", retrieve_price),
    ("POST", "/v1/prices/{id}", update_price),
]
