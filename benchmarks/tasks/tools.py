"""Tools for the task-success benchmark: plain functions with type hints and Google-style
docstrings, so each framework builds its own tool objects from them (`@tool` in both).

Some refuse inputs on purpose, with an error that says how to retry: those tasks measure
whether an agent recovers from a failed call.
"""

from __future__ import annotations

__all__ = ["TOOLS", "convert_units", "get_exchange_rate", "get_product_price", "lookup_population"]

_POPULATION = {
    "Paris": 2_102_650,
    "Berlin": 3_878_100,
    "Tokyo": 14_094_034,
    "Delhi": 16_787_941,
    "Lagos": 15_388_000,
    "New York": 8_258_035,
    "Madrid": 3_332_035,
}
_RATES = {("USD", "EUR"): 0.92, ("EUR", "USD"): 1.087, ("USD", "JPY"): 151.4, ("GBP", "USD"): 1.27}
_PRICES = {"A-100": 4.25, "B-200": 12.5, "C-300": 7.75, "D-401": 3.1}
_FACTORS = {
    ("miles", "km"): 1.609344,
    ("km", "miles"): 1 / 1.609344,
    ("cups", "liters"): 0.24,
    ("liters", "cups"): 1 / 0.24,
    ("kg", "lb"): 2.2046226218,
    ("lb", "kg"): 0.45359237,
}


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a quantity between units.

    Args:
        value: The quantity to convert.
        from_unit: One of miles, km, cups, liters, kg, lb, fahrenheit, celsius.
        to_unit: The unit to convert to (same list).
    """
    if (from_unit, to_unit) == ("fahrenheit", "celsius"):
        return (value - 32) * 5 / 9
    if (from_unit, to_unit) == ("celsius", "fahrenheit"):
        return value * 9 / 5 + 32
    if (from_unit, to_unit) not in _FACTORS:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return value * _FACTORS[(from_unit, to_unit)]


def lookup_population(city: str) -> int:
    """Look up a city's population in the reference table.

    Args:
        city: The city's name, with official capitalisation (e.g. "Paris").
    """
    if city not in _POPULATION:
        raise KeyError(f"unknown city {city!r}; known cities: {', '.join(sorted(_POPULATION))}")
    return _POPULATION[city]


def get_exchange_rate(from_currency: str, to_currency: str) -> float:
    """How many units of `to_currency` one unit of `from_currency` buys.

    Args:
        from_currency: A three-letter upper-case currency code, e.g. "USD".
        to_currency: A three-letter upper-case currency code, e.g. "EUR".
    """
    for code in (from_currency, to_currency):
        if len(code) != 3 or not code.isupper():
            raise ValueError(f"currency codes are three upper-case letters, got {code!r}")
    if (from_currency, to_currency) not in _RATES:
        raise KeyError(f"no rate for {from_currency}->{to_currency}")
    return _RATES[(from_currency, to_currency)]


def get_product_price(sku: str) -> float:
    """The unit price of a product, in dollars.

    Args:
        sku: The product code, upper case, e.g. "A-100".
    """
    if sku != sku.upper():
        raise ValueError(f"SKUs are upper case: try {sku.upper()!r}")
    if sku == "D-400":
        raise LookupError("D-400 is discontinued; its replacement is D-401")
    if sku not in _PRICES:
        raise KeyError(f"unknown SKU {sku!r}")
    return _PRICES[sku]


TOOLS = {f.__name__: f for f in (convert_units, lookup_population, get_exchange_rate, get_product_price)}
