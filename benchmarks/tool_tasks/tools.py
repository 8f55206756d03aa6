"""Tools of the tool-heavy task set: plain functions with type hints and Google-style docstrings,
so each framework builds its own tool objects from them (`@tool` in both). They answer from the
made-up data in `data.json` (an inventory, a staff directory, orders, shipping rates), so no answer
can be guessed. Some refuse an argument a model is likely to pass first (a city for a warehouse
code, a bare order number, a discontinued SKU) with an error that says what to pass instead.

This module imports neither framework: both sides of the benchmark import it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DATA", "TEAMS", "TOOLS", "Team"]

DATA: dict[str, Any] = json.loads(Path(__file__).with_name("data.json").read_text())
_MAX_PARCEL_KG = 30


# ---- inventory ----------------------------------------------------------------------------------


def search_products(keyword: str) -> list:  # type: ignore[type-arg]
    """Find the products on sale whose name contains a keyword (case-insensitive).

    Args:
        keyword: A word or phrase from the product's name, e.g. "lamp".

    Returns:
        A list of {"sku", "name"} dicts, empty when nothing matches.
    """
    return [
        {"sku": p["sku"], "name": p["name"]}
        for p in DATA["products"].values()
        if p["status"] == "active" and keyword.lower() in p["name"].lower()
    ]


def get_product(sku: str) -> dict:  # type: ignore[type-arg]
    """A product's details: name, unit price in US dollars, unit weight in kg and supplier id.

    Args:
        sku: The product's SKU.

    Returns:
        A dict with keys sku, name, price_usd, weight_kg, supplier_id.
    """
    product = _active_product(sku)
    return {key: product[key] for key in ("sku", "name", "price_usd", "weight_kg", "supplier_id")}


def get_stock(sku: str, warehouse: str) -> int:
    """How many units of a product a warehouse holds.

    Args:
        sku: The product's SKU.
        warehouse: The warehouse's code.
    """
    product = _active_product(sku)
    return int(DATA["stock"][product["sku"]][_warehouse_code(warehouse)])


def get_supplier(supplier_id: str) -> dict:  # type: ignore[type-arg]
    """A supplier's details: name, city and lead time in days.

    Args:
        supplier_id: The supplier's id, as given by get_product.

    Returns:
        A dict with keys supplier_id, name, city, lead_time_days.
    """
    if supplier_id not in DATA["suppliers"]:
        raise KeyError(f"unknown supplier {supplier_id!r}; get_product(sku) gives a product's supplier_id")
    return dict(DATA["suppliers"][supplier_id])


def _active_product(sku: str) -> dict[str, Any]:
    products = DATA["products"]
    if sku not in products and sku.upper() in products:
        raise ValueError(f"SKUs are upper case: try {sku.upper()!r}")
    if sku not in products:
        raise KeyError(f"unknown SKU {sku!r}; search_products(keyword) finds SKUs by product name")
    product: dict[str, Any] = products[sku]
    if product["status"] == "discontinued":
        raise LookupError(
            f"{sku} ({product['name']}) is discontinued; its replacement is {product['replaced_by']}"
        )
    return product


def _warehouse_code(warehouse: str) -> str:
    codes: dict[str, str] = DATA["warehouses"]
    if warehouse in codes:
        return warehouse
    for code, city in codes.items():
        if warehouse.strip().lower() in (city.lower(), code.lower()):
            raise ValueError(f"warehouse takes the warehouse's code: {city} is {code!r}")
    listing = ", ".join(f"{code} ({city})" for code, city in codes.items())
    raise ValueError(f"unknown warehouse {warehouse!r}; the warehouse codes are {listing}")


# ---- staff directory ----------------------------------------------------------------------------


def find_employee(name: str) -> list:  # type: ignore[type-arg]
    """Find employees whose name contains the given text (case-insensitive).

    Args:
        name: A full name or part of one, e.g. "Marta".

    Returns:
        A list of {"employee_id", "name", "department", "title"} dicts.
    """
    return [
        {key: e[key] for key in ("employee_id", "name", "department", "title")}
        for e in DATA["employees"].values()
        if name.lower() in e["name"].lower()
    ]


def get_employee(employee_id: str) -> dict:  # type: ignore[type-arg]
    """An employee's directory record.

    Args:
        employee_id: The employee's id.

    Returns:
        A dict with keys employee_id, name, department, title, manager_id (None for the chief
        executive), office, extension, start_date (YYYY-MM-DD).
    """
    employees = DATA["employees"]
    if employee_id not in employees:
        if not re.fullmatch(r"E-\d{5}", employee_id):
            first = employee_id.split()[0] if employee_id.split() else "Marta"
            raise ValueError(
                f"get_employee takes an employee id like 'E-32094', not {employee_id!r}; "
                f"find_employee({first!r}) looks ids up by name"
            )
        raise KeyError(f"no employee with id {employee_id!r}")
    return dict(employees[employee_id])


# ---- orders and customers -----------------------------------------------------------------------


def get_order(order_id: str) -> dict:  # type: ignore[type-arg]
    """An order: its customer, items, date, status, the employee who handled it, its warehouse.

    Args:
        order_id: The order's id.

    Returns:
        A dict with keys order_id, customer_id, items (a list of {"sku", "quantity"}), placed_on
        (YYYY-MM-DD), status (open, shipped or cancelled), handled_by (an employee id), warehouse.
    """
    orders = DATA["orders"]
    if order_id not in orders:
        digits = re.sub(r"\D", "", order_id)
        if f"ORD-{digits}" in orders:
            raise ValueError(f"order ids are written with their prefix: try 'ORD-{digits}'")
        raise KeyError(f"no order with id {order_id!r}")
    copy: dict[str, Any] = json.loads(json.dumps(orders[order_id]))  # nested lists copied too
    return copy


def find_customer(name: str) -> list:  # type: ignore[type-arg]
    """Find customers whose company name contains the given text (case-insensitive).

    Args:
        name: The company's name or part of it.

    Returns:
        A list of {"customer_id", "name"} dicts.
    """
    return [
        {"customer_id": c["customer_id"], "name": c["name"]}
        for c in DATA["customers"].values()
        if name.lower() in c["name"].lower()
    ]


def get_customer(customer_id: str) -> dict:  # type: ignore[type-arg]
    """A customer's record: company name, country (two-letter code), tier and discount.

    Args:
        customer_id: The customer's id.

    Returns:
        A dict with keys customer_id, name, country, tier, discount_percent.
    """
    if customer_id not in DATA["customers"]:
        raise KeyError(f"no customer with id {customer_id!r}; find_customer(name) looks ids up")
    return dict(DATA["customers"][customer_id])


def list_orders(customer_id: str) -> list:  # type: ignore[type-arg]
    """A customer's orders, oldest first.

    Args:
        customer_id: The customer's id.

    Returns:
        A list of {"order_id", "placed_on", "status"} dicts.
    """
    get_customer(customer_id)
    mine = [o for o in DATA["orders"].values() if o["customer_id"] == customer_id]
    return [
        {key: o[key] for key in ("order_id", "placed_on", "status")}
        for o in sorted(mine, key=lambda o: o["placed_on"])
    ]


def orders_placed_on(date: str) -> list:  # type: ignore[type-arg]
    """The ids of the orders placed on a given day.

    Args:
        date: The day.

    Returns:
        A list of order ids, possibly empty.
    """
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ValueError(f"dates are written YYYY-MM-DD (e.g. '2026-03-03'), got {date!r}")
    return [o["order_id"] for o in DATA["orders"].values() if o["placed_on"] == date]


# ---- shipping and money -------------------------------------------------------------------------


def country_code(country: str) -> str:
    """The two-letter code of a country, from its English name.

    Args:
        country: The country's name, e.g. "Norway".
    """
    for name, code in DATA["countries"].items():
        if country.strip().lower() == name.lower():
            return str(code)
    raise KeyError(f"unknown country {country!r}; known: {', '.join(DATA['countries'])}")


def shipping_quote(weight_kg: float, country: str, service: str) -> float:
    """The price in US dollars of shipping one parcel.

    Args:
        weight_kg: The parcel's weight in kg.
        country: The destination country's two-letter code.
        service: "standard" or "express".
    """
    if service not in ("standard", "express"):
        raise ValueError(f"service is 'standard' or 'express', got {service!r}")
    zones = DATA["shipping"]["zones"]
    if country not in zones:
        code = DATA["countries"].get(country.strip().title())
        hint = f"{country} is {code!r}" if code else "country_code(name) gives it"
        raise ValueError(f"country takes a two-letter code: {hint}")
    if not 0 < weight_kg <= _MAX_PARCEL_KG:
        raise ValueError(f"a parcel weighs more than 0 and at most {_MAX_PARCEL_KG} kg; got {weight_kg}")
    rate = DATA["shipping"][service][str(zones[country])]
    return round(float(rate["base"] + rate["per_half_kg"] * math.ceil(weight_kg * 2 - 1e-9)), 2)


def exchange_rate(from_currency: str, to_currency: str) -> float:
    """How many units of `to_currency` one unit of `from_currency` buys.

    Args:
        from_currency: A currency code, e.g. "USD".
        to_currency: A currency code, e.g. "EUR".
    """
    rates = DATA["exchange_rates"]
    for code in (from_currency, to_currency):
        if code != code.upper():
            raise ValueError(f"currency codes are upper case: try {code.upper()!r}")
    if to_currency in rates.get(from_currency, {}):
        return float(rates[from_currency][to_currency])
    if from_currency in rates.get(to_currency, {}):
        inverse = rates[to_currency][from_currency]
        raise KeyError(
            f"no {from_currency}->{to_currency} rate; the table has {to_currency}->{from_currency} = "
            f"{inverse}: divide by it"
        )
    raise KeyError(f"no rate for {from_currency}->{to_currency}; the table covers {sorted(rates)} to others")


TOOLS = {
    f.__name__: f
    for f in (
        search_products, get_product, get_stock, get_supplier, find_employee, get_employee,
        get_order, find_customer, get_customer, list_orders, orders_placed_on, country_code,
        shipping_quote, exchange_rate,
    )
}  # fmt: skip


@dataclass(frozen=True)
class Team:
    """A managed sub-agent: its name (it is called like a function), what it is for, its tools."""

    name: str
    description: str
    tools: tuple[str, ...]


TEAMS = {
    team.name: team
    for team in (
        Team(
            "shipping_desk",
            "Quotes the price in US dollars of shipping one parcel: tell it the parcel's weight in "
            "kg, the destination country and the service (standard or express).",
            ("country_code", "shipping_quote"),
        ),
        Team(
            "hr_desk",
            "Answers questions about employees (ids, titles, managers, offices, phone extensions, "
            "start dates) from the staff directory.",
            ("find_employee", "get_employee"),
        ),
        Team(
            "stock_desk",
            "Tells how many units of a product (give its SKU) each warehouse holds: BRM, OSK, TUC.",
            ("get_stock",),
        ),
    )
}
