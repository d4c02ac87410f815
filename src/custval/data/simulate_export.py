"""An invoice-line export shaped like the public Online Retail file (UCI: 541,909 lines, 2010-12-01..2011-12-09),
with the clean log that the export policies (`custval.data.prepare`) should recover from it.

Built on `simulate_retail` (its purchase process and the customers' category affinities; no returns): each
order becomes an invoice of 1 + Poisson(mean_lines - 1) lines, each a distinct product of a catalogue
(stock codes such as 85123A, a description, a category, a list price) in a category drawn from the customer's
affinity (the first line in the order's own category), with a pack-size quantity. Then the export gets what the
real file has:
  * `CustomerID` as a float with gaps between the ids, missing on guest invoices (`guest_share` of the lines);
  * `InvoiceDate` as text such as ``12/1/2010 8:26`` (month/day/year, minutes; format `TIMESTAMP_FORMAT`);
  * cancellations: invoices ``C<number>`` with negative quantities. A share `cancel_rate` of the orders gets
    one, cancelling some of its lines (same product, quantity and price) minutes to days later but before the
    customer's next order, so each matches exactly the line it cancels. `unmatched_rate` per order adds a
    cancellation of a product at a quantity the customer never bought before (its sale predates the log);
  * lines priced 0 (`zero_price_rate`, never cancelled) and `n_adjustments` "Adjust bad debt" lines with a
    negative price (invoice ``A<number>``, stock code ``B``);
  * `duplicate_rate` of the lines repeated exactly, right after themselves.
A product master (StockCode, Description, Category) lists the catalogue except `unmapped_share` of it.

Every export row has a `fate`: clean (in the recovered log), missing_id, duplicate, cancellation (a matched
cancellation), cancelled (the line it cancels), unmatched (a cancellation that matches nothing: a return),
zero_price, negative_price. Fates follow the order of the policies in `custval.data.prepare` (a guest line's
repeat is missing_id, an identified line's repeat is a duplicate). The truth is built from the simulated values,
not by parsing the export.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from custval.data.io import write_table
from custval.data.simulate import NS_PER_SECOND, RETAIL_CATEGORIES, Simulation, simulate_retail
from custval.data.simulate_checks import check_categories, check_count, check_seed, check_unit, check_window
from custval.errors import ConfigError

__all__ = ["COLUMNS", "EXPORT_COLUMNS", "FATES", "TIMESTAMP_FORMAT", "RetailExport", "simulate_retail_export"]

EXPORT_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                  "Country")
# data.columns for the export, and data.timestamp_format
COLUMNS = {"customer_id": "CustomerID", "timestamp": "InvoiceDate", "quantity": "Quantity",
           "unit_price": "UnitPrice", "order_id": "InvoiceNo", "product": "StockCode"}
TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M"
FATES = ("clean", "missing_id", "duplicate", "cancellation", "cancelled", "unmatched", "zero_price",
         "negative_price")
FIRST_INVOICE = 536365
FIRST_CUSTOMER_ID = 12346
NS_PER_MINUTE = 60 * NS_PER_SECOND
OPENING, CLOSING = 8 * 60, 18 * 60  # invoices between 8:00 and 18:00
PACKS = np.array([1, 2, 3, 4, 6, 8, 12, 24])
PACK_WEIGHTS = np.array([0.25, 0.15, 0.08, 0.1, 0.15, 0.05, 0.17, 0.05])
COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium", "Switzerland")
COUNTRY_WEIGHTS = np.array([0.88, 0.03, 0.03, 0.02, 0.01, 0.01, 0.01, 0.01])
_ADJECTIVES = ("WHITE", "RED", "VINTAGE", "RETRO", "SET OF 3", "JUMBO", "PINK", "BLUE", "HEART", "REGENCY")
_NOUNS = ("T-LIGHT HOLDER", "MUG", "BAG", "CAKE STAND", "LANTERN", "NOTEBOOK", "BUNTING", "TEA TOWEL",
          "CHRISTMAS TREE", "PHOTO FRAME", "DOORMAT", "CANDLE")
_KINDS = {"sale": 0, "guest": 1, "cancellation": 2, "unmatched": 3, "adjustment": 4}
_PREFIX = {0: "", 1: "", 2: "C", 3: "C", 4: "A"}
# Streams of the export layer, spawned from (seed, _EXPORT_KEY): independent of simulate_retail's.
_EXPORT_KEY = 0x0E1407
_STREAMS = ("catalogue", "lines", "guests", "cancel", "unmatched", "adjust", "prices", "duplicates", "ids")


@dataclass(frozen=True)
class RetailExport:
    """A simulated invoice export and its truth.

    export: the file's rows (`EXPORT_COLUMNS`; InvoiceNo, StockCode, Description, InvoiceDate and Country text,
        Quantity int64, UnitPrice and CustomerID float64).
    lines: every export row in the prepared log's columns (customer_id float64, NaN on guest lines; timestamp;
        amount = quantity x unit_price; order_id; category from the product master, <NA> when unmapped; quantity;
        product; unit_price), from the simulated values.
    fate: per export row (same index), one of `FATES`.
    products: the product master (StockCode, Description, Category), without the unmapped products.
    simulation: the purchase process (`simulate_retail`, customers 1..n); customer_ids: their export ids.
    """

    export: pd.DataFrame
    lines: pd.DataFrame
    fate: pd.Series
    products: pd.DataFrame
    simulation: Simulation
    customer_ids: pd.Series
    columns: dict[str, str]
    timestamp_format: str = TIMESTAMP_FORMAT

    def recovered(self, *fates: str) -> pd.DataFrame:
        """The log the policies should give: the clean rows, plus the rows of `fates` (e.g. "zero_price" for
        data.prices=keep), in export order, customer_id as int64, fresh index."""
        keep = self.fate.isin(("clean", *fates)).to_numpy()
        out = self.lines[keep].reset_index(drop=True)
        return out.assign(customer_id=out["customer_id"].astype("int64"))

    @property
    def truth(self) -> pd.DataFrame:
        """The clean log (every policy at its default, data.missing_ids=drop, data.duplicates=drop)."""
        return self.recovered()

    @property
    def counts(self) -> dict[str, int]:
        """What each policy should count (`custval.data.prepare.Preparation`'s names)."""
        n = self.fate.value_counts().reindex(FATES, fill_value=0)
        truth = self.truth
        unmapped = truth["category"].isna().to_numpy()
        return {"rows": len(self.export), "missing_ids": int(n["missing_id"]), "duplicates": int(n["duplicate"]),
                "cancellations": int(n["cancellation"] + n["unmatched"]), "matched": int(n["cancellation"]),
                "unmatched": int(n["unmatched"]), "zero_prices": int(n["zero_price"]),
                "negative_prices": int(n["negative_price"]), "unmapped": int(unmapped.sum()),
                "unmapped_products": int(truth["product"][unmapped].nunique()), "kept": len(truth),
                "customers": int(truth["customer_id"].nunique())}

    def write(self, path: str | Path, products: str | Path | None = None) -> Path:
        """Write the export (CSV or Parquet by suffix, atomically) and, when given a path, the product master."""
        if products is not None:
            write_table(self.products, products, index=False)
        return write_table(self.export, path, index=False)


def _check_rate(name: str, value: object) -> float:
    return check_unit(name, value, low_open=False, high_closed=False)


def simulate_retail_export(
    n_customers: int = 4_300,
    *,
    seed: int = 0,
    mean_lines: float = 20.0,
    n_products: int = 1_500,
    guest_share: float = 0.25,
    cancel_rate: float = 0.03,
    unmatched_rate: float = 0.01,
    zero_price_rate: float = 0.004,
    n_adjustments: int = 3,
    duplicate_rate: float = 0.01,
    unmapped_share: float = 0.02,
    start: str | pd.Timestamp = "2010-12-01",
    end: str | pd.Timestamp = "2011-12-10",
    **retail,
) -> RetailExport:
    """Simulate an Online-Retail-like invoice export of `n_customers` identified customers (module docstring).

    `retail` goes to `simulate_retail` (categories, category_weights, affinity_concentration, r, alpha, a, b,
    spend parameters); its returns are off (cancellations play their part here). Same seed -> same export.
    """
    n_customers = check_count("n_customers", n_customers)
    check_seed(seed)
    if isinstance(mean_lines, bool) or not isinstance(mean_lines, numbers.Real) or not mean_lines >= 1:
        raise ConfigError(f"mean_lines must be a number >= 1 (lines per invoice), got {mean_lines!r}")
    n_products = check_count("n_products", n_products)
    guest_share = _check_rate("guest_share", guest_share)
    rates = {name: _check_rate(name, value) for name, value in (
        ("cancel_rate", cancel_rate), ("unmatched_rate", unmatched_rate), ("zero_price_rate", zero_price_rate),
        ("duplicate_rate", duplicate_rate), ("unmapped_share", unmapped_share))}
    if isinstance(n_adjustments, bool) or not isinstance(n_adjustments, numbers.Integral) or n_adjustments < 0:
        raise ConfigError(f"n_adjustments must be an integer >= 0, got {n_adjustments!r}")
    if "return_rate" in retail:
        raise ConfigError("return_rate is not an argument of simulate_retail_export: cancellations are its returns "
                          "(cancel_rate, unmatched_rate)")
    start_ts, end_ts = check_window(start, end)
    sim = simulate_retail(n_customers, seed=seed, start=start_ts, end=end_ts, return_rate=0.0, **retail)
    names = list(check_categories(retail.get("categories", RETAIL_CATEGORIES)))
    k = len(names)
    if n_products < k:
        raise ConfigError(f"n_products must be at least the number of categories ({k}), got {n_products}")
    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in
                               np.random.SeedSequence([seed, _EXPORT_KEY]).spawn(len(_STREAMS))), strict=True))
    end_minute = (int(np.datetime64(end_ts, "ns").astype(np.int64)) - 1) // NS_PER_MINUTE  # the last minute

    catalogue = _catalogue(rngs["catalogue"], n_products, names, rates["unmapped_share"])
    orders = sim.transactions
    owner = orders["customer_id"].to_numpy() - 1
    order_minute = _opening_hours(orders["timestamp"].to_numpy().view(np.int64) // NS_PER_MINUTE)
    order_category = pd.Categorical(orders["category"], categories=names).codes
    affinity = sim.truth[[f"affinity_{c}" for c in names]].to_numpy()

    # ---- invoices: identified sales, guests; their lines
    rng = rngs["lines"]
    sale_lines = _invoice_lines(rng, catalogue, mean_lines, len(orders), first_category=order_category,
                                affinity=np.cumsum(affinity, axis=1)[owner])
    n_guests = int(round(len(orders) * guest_share / (1 - guest_share)))
    g = rngs["guests"]
    span = end_minute - int(np.datetime64(start_ts, "ns").astype(np.int64)) // NS_PER_MINUTE + 1
    guest_minute = _opening_hours(end_minute - span + 1 + np.floor(g.random(n_guests) * span).astype(np.int64))
    guest_lines = _invoice_lines(g, catalogue, mean_lines, n_guests, first_category=g.integers(0, k, n_guests),
                                 affinity=np.tile(np.arange(1, k + 1) / k, (n_guests, 1)))
    price_rng = rngs["prices"]
    for lines in (sale_lines, guest_lines):
        lines["price"] = np.where(price_rng.random(len(lines["product"])) < rates["zero_price_rate"], 0.0,
                                  catalogue["price"][lines["product"]])

    # ---- matched cancellations: some priced lines of an order, before the customer's next order
    same_next = np.r_[owner[1:] == owner[:-1], False]
    next_minute = np.where(same_next, np.r_[order_minute[1:], 0], end_minute + 1)
    room = np.minimum(next_minute - 1, end_minute) - order_minute  # latest lag in minutes
    c = rngs["cancel"]
    priced = sale_lines["price"] > 0
    has_priced = np.bincount(sale_lines["invoice"][priced], minlength=len(orders)) > 0
    cancelled_order = (c.random(len(orders)) < rates["cancel_rate"]) & (room >= 1) & has_priced
    short = c.random(len(orders)) < 0.5
    cap = np.where(short, np.minimum(120, room), np.minimum(30 * 1440, room))
    lag = 1 + np.floor(c.random(len(orders)) * np.maximum(cap, 1)).astype(np.int64)
    candidate = np.flatnonzero(priced & cancelled_order[sale_lines["invoice"]])
    pick = c.random(candidate.size) < 0.5
    picked_orders = np.zeros(len(orders), dtype=bool)
    picked_orders[sale_lines["invoice"][candidate[pick]]] = True
    _, first = np.unique(sale_lines["invoice"][candidate], return_index=True)
    first = first[~picked_orders[sale_lines["invoice"][candidate[first]]]]
    pick[first] = True
    cancel_line = candidate[pick]  # sale-line positions being cancelled
    cancel_order = sale_lines["invoice"][cancel_line]
    cancel_invoices, cancel_invoice = np.unique(cancel_order, return_inverse=True)  # one C invoice per order

    # ---- unmatched cancellations: a product at a quantity the customer never bought before
    u = rngs["unmatched"]
    u_order = np.flatnonzero((u.random(len(orders)) < rates["unmatched_rate"]) & (order_minute < end_minute))
    u_minute = order_minute[u_order] + 1 + np.floor(u.random(u_order.size) * np.minimum(
        end_minute - order_minute[u_order], 60 * 24 * 14)).astype(np.int64)
    u_product = u.integers(0, n_products, u_order.size)
    u_quantity = u.choice(PACKS, u_order.size, p=PACK_WEIGHTS)
    bought = pd.DataFrame({"customer": owner[sale_lines["invoice"]], "product": sale_lines["product"],
                           "quantity": sale_lines["quantity"], "minute": order_minute[sale_lines["invoice"]]})
    wanted = pd.DataFrame({"i": np.arange(u_order.size), "customer": owner[u_order], "product": u_product,
                           "quantity": u_quantity, "at": u_minute})
    hits = wanted.merge(bought, on=["customer", "product", "quantity"])
    clash = np.zeros(u_order.size, dtype=bool)
    clash[hits.loc[hits["minute"] <= hits["at"], "i"].to_numpy()] = True
    u_order, u_minute, u_product, u_quantity = (v[~clash] for v in (u_order, u_minute, u_product, u_quantity))

    # ---- adjustments: negative prices
    a = rngs["adjust"]
    a_order = a.integers(0, len(orders), n_adjustments)
    a_minute = np.minimum(order_minute[a_order] + 1 + a.integers(0, 1440, n_adjustments), end_minute)
    a_price = -np.round(a.gamma(2.0, 400.0, n_adjustments) + 1, 2)

    # ---- every invoice, numbered in time order, and every line
    inv_kind = np.concatenate([np.full(len(orders), _KINDS["sale"]), np.full(n_guests, _KINDS["guest"]),
                               np.full(cancel_invoices.size, _KINDS["cancellation"]),
                               np.full(u_order.size, _KINDS["unmatched"]), np.full(n_adjustments, _KINDS["adjustment"])])
    inv_minute = np.concatenate([order_minute, guest_minute, order_minute[cancel_invoices] + lag[cancel_invoices],
                                 u_minute, a_minute])
    inv_customer = np.concatenate([owner, np.full(n_guests, -1), owner[cancel_invoices], owner[u_order],
                                   owner[a_order]])
    country = rngs["ids"].choice(len(COUNTRIES), n_customers + n_guests, p=COUNTRY_WEIGHTS)
    inv_country = np.where(inv_customer >= 0, country[np.maximum(inv_customer, 0)], 0)
    inv_country[inv_kind == _KINDS["guest"]] = country[n_customers:]
    offsets = np.cumsum([0, len(orders), n_guests, cancel_invoices.size, u_order.size])
    n_guest_lines = len(guest_lines["product"])
    line = {
        "invoice": np.concatenate([sale_lines["invoice"], offsets[1] + guest_lines["invoice"],
                                   offsets[2] + cancel_invoice, offsets[3] + np.arange(u_order.size),
                                   offsets[4] + np.arange(n_adjustments)]),
        "product": np.concatenate([sale_lines["product"], guest_lines["product"], sale_lines["product"][cancel_line],
                                   u_product, np.full(n_adjustments, -1)]),
        "quantity": np.concatenate([sale_lines["quantity"], guest_lines["quantity"],
                                    -sale_lines["quantity"][cancel_line], -u_quantity, np.ones(n_adjustments, int)]),
        "price": np.concatenate([sale_lines["price"], guest_lines["price"], sale_lines["price"][cancel_line],
                                 catalogue["price"][u_product], a_price]),
    }
    fate = np.concatenate([
        np.where(sale_lines["price"] == 0, "zero_price", "clean").astype(object), np.full(n_guest_lines, "missing_id"),
        np.full(cancel_line.size, "cancellation"), np.full(u_order.size, "unmatched"),
        np.full(n_adjustments, "negative_price")]).astype(object)
    fate[cancel_line] = "cancelled"
    rank = np.empty(inv_kind.size, dtype=np.int64)
    rank[np.lexsort((np.arange(inv_kind.size), inv_minute))] = np.arange(inv_kind.size)
    order = np.lexsort((np.arange(line["invoice"].size), rank[line["invoice"]]))  # invoices in time, lines as made
    repeat = 1 + (rngs["duplicates"].random(order.size) < rates["duplicate_rate"])
    rows = np.repeat(order, repeat)
    copy = np.r_[False, rows[1:] == rows[:-1]]
    fate = fate[rows]
    fate[copy & (fate != "missing_id")] = "duplicate"

    invoice = line["invoice"][rows]
    customer = inv_customer[invoice]
    ids = _customer_ids(rngs["ids"], n_customers)
    product = line["product"][rows]
    is_product = product >= 0
    stock = np.where(is_product, catalogue["code"][np.maximum(product, 0)], "B")
    minute = inv_minute[invoice]
    prefix = np.array([_PREFIX[kind] for kind in range(len(_PREFIX))], dtype=object)[inv_kind[invoice]]
    invoice_no = pd.Series(prefix + (FIRST_INVOICE + rank[invoice]).astype(str), dtype="str")
    quantity = line["quantity"][rows].astype(np.int64)
    price = line["price"][rows].astype(np.float64)
    customer_id = np.where(customer >= 0, ids[np.maximum(customer, 0)].astype(np.float64), np.nan)
    export = pd.DataFrame({
        "InvoiceNo": invoice_no,
        "StockCode": pd.Series(stock, dtype="str"),
        "Description": pd.Series(np.where(is_product, catalogue["description"][np.maximum(product, 0)],
                                          "Adjust bad debt"), dtype="str"),
        "Quantity": quantity,
        "InvoiceDate": _invoice_dates(minute),
        "UnitPrice": price,
        "CustomerID": customer_id,
        "Country": pd.Series(np.asarray(COUNTRIES, dtype=object)[inv_country[invoice]], dtype="str"),
    })
    category = np.where(is_product & ~catalogue["unmapped"][np.maximum(product, 0)],
                        np.asarray(names, dtype=object)[catalogue["category"][np.maximum(product, 0)]], None)
    lines = pd.DataFrame({
        "customer_id": customer_id,
        "timestamp": (minute * NS_PER_MINUTE).view("datetime64[ns]"),
        "amount": quantity.astype(np.float64) * price,
        "order_id": invoice_no,
        "category": pd.array(category, dtype="string"),
        "quantity": quantity,
        "product": pd.Series(stock, dtype="str"),
        "unit_price": price,
    })
    mapped = ~catalogue["unmapped"]
    products = pd.DataFrame({"StockCode": pd.Series(catalogue["code"][mapped], dtype="str"),
                             "Description": pd.Series(catalogue["description"][mapped], dtype="str"),
                             "Category": pd.Series(np.asarray(names, dtype=object)[catalogue["category"][mapped]],
                                                   dtype="str")})
    return RetailExport(export=export, lines=lines, fate=pd.Series(fate, name="fate", dtype="str"),
                        products=products, simulation=sim,
                        customer_ids=pd.Series(ids, index=sim.truth.index, name="CustomerID"), columns=dict(COLUMNS))


def _catalogue(rng: np.random.Generator, n: int, names: list[str], unmapped_share: float) -> dict[str, np.ndarray]:
    """Products: code (5 digits, some with a letter), description, category (each category at least one),
    list price (log-normal around 2, in pence), unmapped (left out of the product master)."""
    numbers_ = rng.choice(np.arange(10_000, 90_000), n, replace=False)
    letters = np.array(list("ABCDEFGHKLMNPSW"))
    suffix = np.where(rng.random(n) < 0.12, letters[rng.integers(0, letters.size, n)], "")
    category = rng.integers(0, len(names), n)
    category[: len(names)] = np.arange(len(names))
    price = np.maximum(np.round(np.exp(rng.normal(0.6, 0.8, n)), 2), 0.1)
    description = (np.asarray(_ADJECTIVES, dtype=object)[rng.integers(0, len(_ADJECTIVES), n)] + " "
                   + np.asarray(_NOUNS, dtype=object)[rng.integers(0, len(_NOUNS), n)])
    unmapped = rng.random(n) < unmapped_share
    return {"code": numbers_.astype(str).astype(object) + suffix, "description": description, "category": category,
            "price": price, "unmapped": unmapped}


def _invoice_lines(rng: np.random.Generator, catalogue: dict, mean_lines: float, n_invoices: int, *,
                   first_category: np.ndarray, affinity: np.ndarray) -> dict[str, np.ndarray]:
    """Lines of `n_invoices` invoices: the first in `first_category`, the others in a category drawn from each
    invoice's cumulative `affinity` row; a product of that category (distinct within the invoice) and a pack."""
    n_lines = 1 + rng.poisson(mean_lines - 1.0, n_invoices)
    invoice = np.repeat(np.arange(n_invoices), n_lines)
    first = np.r_[True, invoice[1:] != invoice[:-1]] if invoice.size else np.zeros(0, dtype=bool)
    u = rng.random(invoice.size)
    category = np.minimum((u[:, None] >= affinity[invoice]).sum(axis=1), affinity.shape[1] - 1)
    category[first] = np.asarray(first_category)[invoice[first]]
    by_category = np.argsort(catalogue["category"], kind="stable")
    size = np.bincount(catalogue["category"], minlength=affinity.shape[1])
    start = np.cumsum(size) - size
    product = by_category[start[category] + np.floor(rng.random(invoice.size) * size[category]).astype(np.int64)]
    quantity = rng.choice(PACKS, invoice.size, p=PACK_WEIGHTS)
    distinct = ~pd.DataFrame({"i": invoice, "p": product}).duplicated().to_numpy()
    return {"invoice": invoice[distinct], "product": product[distinct], "quantity": quantity[distinct]}


def _opening_hours(minute: np.ndarray) -> np.ndarray:
    """The same calendar day, the time of day squeezed into the shop's hours 8:00-17:59 (order kept)."""
    day, of_day = np.divmod(minute, 1440)
    return day * 1440 + OPENING + of_day * (CLOSING - OPENING) // 1440


def _customer_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Export ids of customers 1..n: increasing from FIRST_CUSTOMER_ID with gaps (40% of the steps skip ids)."""
    gaps = rng.geometric(0.6, n)
    return FIRST_CUSTOMER_ID + np.cumsum(gaps) - gaps[0]


def _invoice_dates(minute: np.ndarray) -> pd.Series:
    """Minutes since the epoch as Online Retail writes them: month/day/year hour:minute, no leading zeros but the
    minutes' (12/1/2010 8:26)."""
    distinct, inverse = np.unique(minute, return_inverse=True)
    when = pd.Series((distinct * NS_PER_MINUTE).view("datetime64[ns]"))
    text = (when.dt.month.astype(str) + "/" + when.dt.day.astype(str) + "/" + when.dt.year.astype(str) + " "
            + when.dt.hour.astype(str) + ":" + when.dt.minute.astype(str).str.zfill(2))
    return pd.Series(text.to_numpy()[inverse], dtype="str")
