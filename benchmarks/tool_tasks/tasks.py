"""The tool-heavy task set: every answer comes from the made-up data behind the tools, through 2-4
tool calls, so nothing can be guessed. Each task's expected answer is computed here by a reference
solution that calls the same tools, so data and answers cannot drift apart.

Categories: `chain` (2-4 calls, each needing the last one's result), `retry` (the natural first call
fails with an error that says what to pass instead), `team` (part of the work needs a managed
sub-agent that has tools the manager lacks; `team` names it in `tools.TEAMS`).

`check` says how an answer is compared (see `benchmarks/tasks/check.py`): number (rounded to
`decimals` when set), text (case-insensitive), bool.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .tools import (
    exchange_rate,
    find_customer,
    find_employee,
    get_customer,
    get_employee,
    get_order,
    get_product,
    get_stock,
    get_supplier,
    list_orders,
    orders_placed_on,
    search_products,
    shipping_quote,
)

__all__ = ["TASKS", "ToolTask", "load_tasks"]

_WAREHOUSES = ("BRM", "OSK", "TUC")


@dataclass(frozen=True)
class ToolTask:
    id: str
    category: str
    task: str
    tools: tuple[str, ...]
    reference: Callable[[], Any]
    check: str = "number"
    decimals: int | None = None
    team: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The task as both sides and the checker see it, its answer computed by the reference."""
        return {
            "id": self.id, "category": self.category, "task": self.task, "tools": list(self.tools),
            "team": self.team, "answer": self.reference(), "check": self.check, "decimals": self.decimals,
        }  # fmt: skip


# ---- helpers of the reference solutions ---------------------------------------------------------


def _sku(name: str) -> str:
    (match,) = [p["sku"] for p in search_products(name) if p["name"] == name]
    return str(match)


def _price(sku: str) -> float:
    return float(get_product(sku)["price_usd"])


def _employee_id(name: str) -> str:
    (match,) = find_employee(name)
    return str(match["employee_id"])


def _customer_id(name: str) -> str:
    (match,) = find_customer(name)
    return str(match["customer_id"])


def _order_total(order_id: str) -> float:
    return float(sum(_price(i["sku"]) * i["quantity"] for i in get_order(order_id)["items"]))


def _order_weight(order_id: str) -> float:
    items = get_order(order_id)["items"]
    return float(sum(get_product(i["sku"])["weight_kg"] * i["quantity"] for i in items))


def _discount(order_id: str) -> float:
    return float(get_customer(get_order(order_id)["customer_id"])["discount_percent"])


def _manager_name(employee_id: str) -> str:
    return str(get_employee(get_employee(employee_id)["manager_id"])["name"])


def _days_employed(employee_id: str, on: str) -> int:
    start = datetime.date.fromisoformat(get_employee(employee_id)["start_date"])
    return (datetime.date.fromisoformat(on) - start).days


def _most_recent_order(customer: str) -> str:
    return str(list_orders(_customer_id(customer))[-1]["order_id"])


def _heaviest_item(order_id: str) -> str:
    products = [get_product(i["sku"]) for i in get_order(order_id)["items"]]
    return str(max(products, key=lambda p: p["weight_kg"])["name"])


def _warehouse_with_most(sku: str) -> str:
    return max(_WAREHOUSES, key=lambda w: get_stock(sku, w))


def _ship_order(order_id: str, service: str) -> float:
    country = get_customer(get_order(order_id)["customer_id"])["country"]
    return shipping_quote(_order_weight(order_id), country, service)


_INVENTORY = ("search_products", "get_product")
_ORDER_LINES = ("get_order", "get_product")

TASKS = [
    # ---- chain: 2-4 calls ----
    ToolTask("chain-price-by-name", "chain",
             "What is the unit price in US dollars of the Kestrel thermos? Answer with the number.",
             _INVENTORY, lambda: get_product(_sku("Kestrel thermos"))["price_usd"]),
    ToolTask("chain-stock-total", "chain",
             "How many units of SKU VL-2449 do the warehouses BRM, OSK and TUC hold together? "
             "Answer with the number.",
             ("get_stock",), lambda: sum(get_stock("VL-2449", w) for w in _WAREHOUSES)),
    ToolTask("chain-cheapest-bottle", "chain",
             "Of the products on sale with 'water bottle' in their name, which is the cheapest? "
             "Answer with its SKU.",
             _INVENTORY, lambda: min(search_products("water bottle"),
                                     key=lambda p: get_product(p["sku"])["price_usd"])["sku"], "text"),
    ToolTask("chain-supplier-city", "chain",
             "In which city is the supplier of the Quillon fountain pen? Answer with the city's name.",
             (*_INVENTORY, "get_supplier"),
             lambda: get_supplier(get_product(_sku("Quillon fountain pen"))["supplier_id"])["city"], "text"),
    ToolTask("chain-lead-time", "chain",
             "How many days of lead time does the supplier of SKU LV-8156 have? Answer with the number.",
             ("get_product", "get_supplier"),
             lambda: get_supplier(get_product("LV-8156")["supplier_id"])["lead_time_days"]),
    ToolTask("chain-stock-value", "chain",
             "What is the value in US dollars of the units of SKU BC-9870 held in warehouse TUC "
             "(units times unit price)? Answer with the number, rounded to cents.",
             ("get_stock", "get_product"),
             lambda: round(get_stock("BC-9870", "TUC") * get_product("BC-9870")["price_usd"], 2), decimals=2),
    ToolTask("chain-order-total", "chain",
             "What is the total of order ORD-479781 in US dollars: the sum over its items of quantity "
             "times unit price? Answer with the number, rounded to cents.",
             _ORDER_LINES, lambda: round(_order_total("ORD-479781"), 2), decimals=2),
    ToolTask("chain-order-discounted", "chain",
             "The customer of order ORD-555921 pays the order total (the sum over its items of "
             "quantity times unit price) minus their discount_percent. How much do they pay, in US "
             "dollars? Answer with the number, rounded to cents.",
             (*_ORDER_LINES, "get_customer"),
             lambda: round(_order_total("ORD-555921") * (1 - _discount("ORD-555921") / 100), 2), decimals=2),
    ToolTask("chain-order-country", "chain",
             "To which country does the customer of order ORD-884452 belong? Answer with the "
             "two-letter country code.",
             ("get_order", "get_customer"),
             lambda: get_customer(get_order("ORD-884452")["customer_id"])["country"], "text"),
    ToolTask("chain-handler-office", "chain",
             "In which office does the employee who handled order ORD-699088 work? Answer with the "
             "office's city.",
             ("get_order", "get_employee"),
             lambda: get_employee(get_order("ORD-699088")["handled_by"])["office"], "text"),
    ToolTask("chain-manager-name", "chain",
             "Who is Leila Seo's manager? Answer with the manager's full name.",
             ("find_employee", "get_employee"), lambda: _manager_name(_employee_id("Leila Seo")), "text"),
    ToolTask("chain-order-weight", "chain",
             "What is the total weight in kg of order ORD-148706 (the sum over its items of quantity "
             "times unit weight)? Answer with the number, rounded to two decimals.",
             _ORDER_LINES, lambda: round(_order_weight("ORD-148706"), 2), decimals=2),
    ToolTask("chain-latest-order", "chain",
             "Which of Aurora Handel's orders was placed most recently? Answer with its order id.",
             ("find_customer", "list_orders"), lambda: _most_recent_order("Aurora Handel"), "text"),
    ToolTask("chain-open-count", "chain",
             "How many of Kobayashi Trading's orders have the status open? Answer with the number.",
             ("find_customer", "list_orders"),
             lambda: sum(o["status"] == "open" for o in list_orders(_customer_id("Kobayashi Trading")))),
    ToolTask("chain-eur-price", "chain",
             "What does the Rook chess set cost in euros, at its US dollar price and the USD to EUR "
             "exchange rate? Answer with the number, rounded to cents.",
             (*_INVENTORY, "exchange_rate"),
             lambda: round(get_product(_sku("Rook chess set"))["price_usd"] * exchange_rate("USD", "EUR"), 2),
             decimals=2),
    ToolTask("chain-manager-extension", "chain",
             "What is the phone extension of Kwame Haddad's manager? Answer with the extension as "
             "the directory writes it.",
             ("find_employee", "get_employee"),
             lambda: get_employee(get_employee(_employee_id("Kwame Haddad"))["manager_id"])["extension"],
             "text"),
    ToolTask("chain-heaviest-item", "chain",
             "Which item of order ORD-841933 has the largest unit weight? Answer with the product's name.",
             _ORDER_LINES, lambda: _heaviest_item("ORD-841933"), "text"),
    ToolTask("chain-tenure", "chain",
             "How many days after their start date is 2026-06-01 for the employee who handled order "
             "ORD-009600? Answer with the number of days.",
             ("get_order", "get_employee"),
             lambda: _days_employed(get_order("ORD-009600")["handled_by"], "2026-06-01")),
    # ---- retry: the natural first call fails with an error that says what to pass ----
    ToolTask("retry-order-prefix", "retry",
             "What is the status of order number 992605? Answer with the status.",
             ("get_order",), lambda: get_order("ORD-992605")["status"], "text"),
    ToolTask("retry-sku-case", "retry",
             "What is the unit weight in kg of product zk-8312? Answer with the number.",
             ("get_product",), lambda: get_product("ZK-8312")["weight_kg"]),
    ToolTask("retry-discontinued", "retry",
             "How much do 4 units of product QA-9724 cost in US dollars? Answer with the number, "
             "rounded to cents.",
             ("get_product",), lambda: round(4 * get_product("QA-5539")["price_usd"], 2), decimals=2),
    ToolTask("retry-discontinued-basket", "retry",
             "How much do 2 units of product VS-0201 and 3 units of product EQ-2051 cost together, in "
             "US dollars? Answer with the number, rounded to cents.",
             ("get_product",),
             lambda: round(2 * _price("VS-0921") + 3 * _price("EQ-2051"), 2), decimals=2),
    ToolTask("retry-warehouse-city", "retry",
             "How many units of SKU CQ-0290 does the Osaka warehouse hold? Answer with the number.",
             ("get_stock",), lambda: get_stock("CQ-0290", "OSK")),
    ToolTask("retry-warehouse-difference", "retry",
             "How many more units of SKU RE-3669 does the Bremen warehouse hold than the Tucson "
             "warehouse? Answer with the number (negative if Bremen holds fewer).",
             ("get_stock",), lambda: get_stock("RE-3669", "BRM") - get_stock("RE-3669", "TUC")),
    ToolTask("retry-employee-name", "retry",
             "What is Chiara Kuhlmann's job title? Answer with the title.",
             ("get_employee", "find_employee"),
             lambda: get_employee(_employee_id("Chiara Kuhlmann"))["title"], "text"),
    ToolTask("retry-date-format", "retry",
             "How many orders were placed on April 22, 2026? Answer with the number.",
             ("orders_placed_on",), lambda: len(orders_placed_on("2026-04-22"))),
    ToolTask("retry-currency-case", "retry",
             "Convert 250 usd to jpy at the exchange rate the tools give. Answer with the amount in "
             "jpy, rounded to cents.",
             ("exchange_rate",), lambda: round(250 * exchange_rate("USD", "JPY"), 2), decimals=2),
    ToolTask("retry-currency-inverse", "retry",
             "How many US dollars are 120 British pounds (GBP) worth at the exchange rate the tools "
             "give? Answer with the number, rounded to cents.",
             ("exchange_rate",), lambda: round(120 / exchange_rate("USD", "GBP"), 2), decimals=2),
    # ---- team: part of the work needs a managed sub-agent with its own tools ----
    ToolTask("team-ship-parcel", "team",
             "What does standard shipping of one 4.2 kg parcel to Japan cost, in US dollars? Answer "
             "with the number.",
             (), lambda: shipping_quote(4.2, "JP", "standard"), team="shipping_desk"),
    ToolTask("team-ship-sku", "team",
             "What does express shipping of 3 units of SKU FR-7235, packed as one parcel, to Canada "
             "cost in US dollars? Answer with the number.",
             ("get_product",),
             lambda: shipping_quote(3 * get_product("FR-7235")["weight_kg"], "CA", "express"),
             team="shipping_desk"),
    ToolTask("team-ship-order", "team",
             "Order ORD-489437 is sent as one parcel, by standard service, to its customer's country. "
             "What does shipping cost in US dollars? Answer with the number.",
             (*_ORDER_LINES, "get_customer"), lambda: _ship_order("ORD-489437", "standard"),
             team="shipping_desk"),
    ToolTask("team-hr-handler-manager", "team",
             "Who is the manager of the employee who handled order ORD-537486? Answer with the "
             "manager's full name.",
             ("get_order",), lambda: _manager_name(get_order("ORD-537486")["handled_by"]), "text",
             team="hr_desk"),
    ToolTask("team-hr-extension", "team",
             "What is Dmitri Falkenberg's phone extension? Answer with the extension as the directory "
             "writes it.",
             (), lambda: get_employee(_employee_id("Dmitri Falkenberg"))["extension"], "text",
             team="hr_desk"),
    ToolTask("team-stock-most", "team",
             "Which warehouse holds the most units of the Helix USB hub? Answer with the warehouse code.",
             _INVENTORY, lambda: _warehouse_with_most(_sku("Helix USB hub")), "text", team="stock_desk"),
    ToolTask("team-stock-order", "team",
             "How many units does warehouse OSK hold of the items of order ORD-166662, summed over "
             "its items? Answer with the number.",
             ("get_order",),
             lambda: sum(get_stock(i["sku"], "OSK") for i in get_order("ORD-166662")["items"]),
             team="stock_desk"),
]  # fmt: skip


def load_tasks(limit: int | None = None, only: str = "") -> list[dict[str, Any]]:
    """The tasks as dicts with their expected answers, in the order they are run: the categories
    taken in turn (a chain task, a retry task, a team task, ...), so that the first `limit` tasks,
    or the tasks a side finished before its time budget ran out, are a mix of all three.
    `only` keeps the tasks whose id starts with one of its comma-separated prefixes."""
    prefixes = tuple(p.strip() for p in only.split(",") if p.strip())
    chosen = [t for t in _interleaved(TASKS) if not prefixes or t.id.startswith(prefixes)]
    return [t.to_dict() for t in (chosen[:limit] if limit else chosen)]


def _interleaved(tasks: list[ToolTask]) -> list[ToolTask]:
    groups = [[t for t in tasks if t.category == c] for c in dict.fromkeys(t.category for t in tasks)]
    turns = itertools.zip_longest(*groups)
    return [task for turn in turns for task in turn if task is not None]
