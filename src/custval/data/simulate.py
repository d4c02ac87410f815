"""Synthetic customer bases with known ground truth, for estimator recovery tests and benchmarks.

`simulate_bgnbd` draws a population from the BG/NBD purchase model (Fader, Hardie & Lee 2005) with
optional Gamma-Gamma spend (Fader, Hardie & Lee 2005b) and returns the transaction log together with each
customer's latent truth and the exact continuous-time RFM summary the models should recover.

Model, per customer (rates are per model period; `period` is D, W or M):
  lambda ~ Gamma(shape r, rate alpha), p ~ Beta(a, b)              (purchase rate, dropout probability)
  birth  ~ Uniform[start, end)  (or all at `start` with acquisition="cohort"); the first purchase is at birth
  repeat purchases follow a Poisson(lambda) process on (birth, end); after each REPEAT purchase the customer
  drops out with probability p (the first purchase never triggers dropout: P(alive after x repeats) = (1-p)^x).
  nu ~ Gamma(shape spend_q, rate spend_gamma); every transaction value z ~ Gamma(shape spend_p, rate nu).

Everything is vectorised. With N ~ Poisson(lambda T) potential repeat events in the window and J ~ Geometric(p)
on {1, 2, ...} the repeat purchase at which the customer drops out, the customer makes n = min(J, N) repeat
purchases and is alive at the end iff J > N. Given N, event times are the order statistics of N uniforms on
(0, T); the first n of them come from exponential spacings, U_(k) = S_k / S_{N+1} with S_k = E_1 + ... + E_k and
S_{N+1} = S_n + Gamma(N + 1 - n, 1), so only n exponentials are drawn per customer.

Customers are processed in chunks to bound memory. Each random quantity has its own stream (spawned from
`seed`) consumed sequentially, and per-customer sums are computed within each customer, so the output for a
seed is identical whatever the `chunk_size`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custval.data.simulate_checks import (
    check_categories,
    check_category_weights,
    check_count,
    check_positive,
    check_seed,
    check_window,
)
from custval.errors import ConfigError
from custval.units import check_period, period_days

NS_PER_DAY = 86_400 * 10**9
NS_PER_SECOND = 10**9
ACQUISITIONS = ("uniform", "cohort")

# One independent random stream per quantity (order matters: it defines what a seed produces).
_STREAMS = ("lambda", "p", "birth", "nu", "n_events", "dropout", "gaps", "rest", "amount")


@dataclass(frozen=True)
class Simulation:
    """A simulated customer base.

    transactions: customer_id (int64), timestamp (datetime64[ns], floored to whole seconds), amount (float64),
        sorted by customer then time; each customer's first row is the birth purchase.
    truth: one row per customer (index customer_id): lambda, p (dropout probability), nu (when spend was
        simulated), alive_at_end, birth (first purchase time), n_repeat.
    summary: the exact continuous-time RFM summary (index customer_id): frequency, recency, T in model periods
        and monetary_value (mean of the repeat purchases' amounts; 0 without repeats), from the simulated times
        before they were floored to timestamps.
    params: the true parameters: r, alpha, a, b and, with spend, spend_p, spend_q, spend_gamma.
    observation_end: `end`, the instant the window closes (no purchase at or after it). Passed to rfm_summary
        or lifetimes (which treat it as the last day), T is the whole days from the birth day to that day.
    """

    transactions: pd.DataFrame
    truth: pd.DataFrame
    summary: pd.DataFrame
    params: dict[str, float]
    observation_end: pd.Timestamp
    period: str = "D"
    start: pd.Timestamp | None = None
    spend: bool = field(default=False)

    @property
    def bgnbd_params(self) -> dict[str, float]:
        """True BG/NBD parameters under the names the BetaGeo model uses (r, alpha, a, b)."""
        return {k: self.params[k] for k in ("r", "alpha", "a", "b")}

    @property
    def gamma_gamma_params(self) -> dict[str, float] | None:
        """True Gamma-Gamma parameters under the names the GammaGamma model uses (p, q, gamma), or None."""
        if not self.spend:
            return None
        return {"p": self.params["spend_p"], "q": self.params["spend_q"], "gamma": self.params["spend_gamma"]}


def simulate_bgnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    spend_p: float | None = None,
    spend_q: float | None = None,
    spend_gamma: float | None = None,
    start: str | pd.Timestamp = "2024-01-01",
    end: str | pd.Timestamp = "2025-12-31",
    period: str = "D",
    acquisition: str = "uniform",
    seed: int = 0,
    chunk_size: int = 500_000,
) -> Simulation:
    """Simulate `n_customers` from BG/NBD (+ Gamma-Gamma spend when spend_p, spend_q, spend_gamma are given).

    r, alpha: Gamma heterogeneity of the purchase rate (alpha is a rate per model `period`); a, b: Beta
    heterogeneity of the dropout probability. Observation runs over [start, end): `end` is the observation end.
    Without spend parameters every amount is 1.0 (one unit per purchase) and truth has no `nu` column.
    Same seed -> identical output, independent of `chunk_size` (which only bounds memory).
    """
    n_customers = check_count("n_customers", n_customers)
    chunk_size = check_count("chunk_size", chunk_size)
    params = {name: check_positive(name, value) for name, value in (("r", r), ("alpha", alpha), ("a", a), ("b", b))}
    spend_given = [v is not None for v in (spend_p, spend_q, spend_gamma)]
    if any(spend_given) and not all(spend_given):
        raise ConfigError("spend_p, spend_q and spend_gamma must be given together (or none of them)")
    spend = all(spend_given)
    if spend:
        for name, value in (("spend_p", spend_p), ("spend_q", spend_q), ("spend_gamma", spend_gamma)):
            params[name] = check_positive(name, value)
    period = check_period(period)
    if acquisition not in ACQUISITIONS:
        raise ConfigError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
    check_seed(seed)
    start_ts, end_ts = check_window(start, end)

    start_ns, end_ns = (int(np.datetime64(ts, "ns").astype(np.int64)) for ts in (start_ts, end_ts))
    span_seconds = (end_ns - start_ns) // NS_PER_SECOND
    ns_per_period = period_days(period) * NS_PER_DAY
    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS))),
                    strict=True))

    # ---- pass 1: customer-level latent quantities (chunked, written into preallocated arrays) ----
    lam = np.empty(n_customers)
    drop_p = np.empty(n_customers)
    nu = np.empty(n_customers) if spend else None
    birth_ns = np.empty(n_customers, dtype=np.int64)
    n_events = np.empty(n_customers, dtype=np.int64)  # N: potential repeat events in (birth, end)
    n_repeat = np.empty(n_customers, dtype=np.int64)  # n = min(J, N): observed repeat purchases
    alive = np.empty(n_customers, dtype=bool)
    for lo, hi in _chunks(n_customers, chunk_size):
        m = hi - lo
        lam[lo:hi] = rngs["lambda"].standard_gamma(params["r"], m) / params["alpha"]
        drop_p[lo:hi] = rngs["p"].beta(params["a"], params["b"], m)
        if acquisition == "uniform":
            offset_s = np.floor(rngs["birth"].random(m) * span_seconds).astype(np.int64)
            birth_ns[lo:hi] = start_ns + offset_s * NS_PER_SECOND
        else:
            birth_ns[lo:hi] = start_ns
        if spend:
            nu[lo:hi] = rngs["nu"].standard_gamma(params["spend_q"], m) / params["spend_gamma"]
        t_cap = (end_ns - birth_ns[lo:hi]) / ns_per_period
        try:
            n_ev = rngs["n_events"].poisson(lam[lo:hi] * t_cap)
        except ValueError as exc:  # lambda * T beyond what a Poisson draw can represent
            raise ConfigError(f"purchase rates too large for the window (r/alpha={r / alpha:g}): {exc}") from exc
        # J ~ Geometric(p) on {1, 2, ...} by inversion, in floats so p -> 0 gives J = inf, not an overflow
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout_at = np.ceil(rngs["dropout"].standard_exponential(m) / -np.log1p(-drop_p[lo:hi]))
        dropout_at = np.where(np.isnan(dropout_at), np.inf, np.maximum(dropout_at, 1.0))
        n_events[lo:hi] = n_ev
        n_repeat[lo:hi] = np.minimum(dropout_at, n_ev).astype(np.int64)
        alive[lo:hi] = dropout_at > n_ev

    # ---- pass 2: purchase times and amounts, written into preallocated transaction arrays ----
    rows_per_customer = n_repeat + 1
    row_end = np.cumsum(rows_per_customer)
    n_rows = int(row_end[-1])
    tx_customer = np.empty(n_rows, dtype=np.int64)
    tx_time_ns = np.empty(n_rows, dtype=np.int64)
    tx_amount = np.empty(n_rows)
    recency = np.zeros(n_customers)
    monetary = np.zeros(n_customers)
    customer_ids = np.arange(1, n_customers + 1, dtype=np.int64)
    for lo, hi in _chunks(n_customers, chunk_size):
        m = hi - lo
        row_lo, row_hi = int(row_end[lo] - rows_per_customer[lo]), int(row_end[hi - 1])
        n_c = n_repeat[lo:hi]
        births = birth_ns[lo:hi]
        t_cap = (end_ns - births) / ns_per_period
        local = np.repeat(np.arange(m), n_c + 1)
        first_row = np.zeros(row_hi - row_lo, dtype=bool)
        first_row[(np.cumsum(n_c + 1) - (n_c + 1))] = True
        repeat_owner = local[~first_row]  # local customer index of each repeat purchase, in time order

        times = np.empty(0)
        buyers = np.flatnonzero(n_c > 0)
        if buyers.size:
            n_b = n_c[buyers]
            gaps = rngs["gaps"].standard_exponential(int(n_b.sum()))
            owner = np.repeat(np.arange(buyers.size), n_b)
            partial = pd.Series(gaps).groupby(owner, sort=False).cumsum().to_numpy()  # S_k within customer
            last = np.cumsum(n_b) - 1
            total = partial[last] + rngs["rest"].standard_gamma((n_events[lo:hi][buyers] - n_b + 1).astype(float))
            times = partial / np.repeat(total, n_b) * np.repeat(t_cap[buyers], n_b)  # in model periods
            recency[lo + buyers] = times[last]

        ts = np.empty(row_hi - row_lo, dtype=np.int64)
        ts[first_row] = births
        repeat_seconds = np.floor(times * (ns_per_period / NS_PER_SECOND)).astype(np.int64)
        ts[~first_row] = np.minimum(births[repeat_owner] + repeat_seconds * NS_PER_SECOND, end_ns - 1)
        tx_time_ns[row_lo:row_hi] = ts
        tx_customer[row_lo:row_hi] = customer_ids[lo:hi][local]

        if spend:
            amounts = rngs["amount"].standard_gamma(params["spend_p"], row_hi - row_lo) / nu[lo:hi][local]
        else:
            amounts = np.ones(row_hi - row_lo)
        tx_amount[row_lo:row_hi] = amounts
        sums = np.bincount(repeat_owner, weights=amounts[~first_row], minlength=m)
        with np.errstate(invalid="ignore", divide="ignore"):
            monetary[lo:hi] = np.where(n_c > 0, sums / np.maximum(n_c, 1), 0.0)

    index = pd.Index(customer_ids, name="customer_id")
    transactions = pd.DataFrame(
        {"customer_id": tx_customer, "timestamp": tx_time_ns.view("datetime64[ns]"), "amount": tx_amount},
        copy=False,
    )
    truth_cols: dict[str, np.ndarray] = {"lambda": lam, "p": drop_p}
    if spend:
        truth_cols["nu"] = nu
    truth_cols.update(alive_at_end=alive, birth=birth_ns.view("datetime64[ns]"), n_repeat=n_repeat)
    truth = pd.DataFrame(truth_cols, index=index, copy=False)
    summary = pd.DataFrame(
        {"frequency": n_repeat.astype(float), "recency": recency, "T": (end_ns - birth_ns) / ns_per_period,
         "monetary_value": monetary},
        index=index, copy=False,
    )
    return Simulation(transactions=transactions, truth=truth, summary=summary, params=params,
                      observation_end=end_ts, period=period, start=start_ts, spend=spend)


def _chunks(n: int, size: int):
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


# ------------------------------------------------------------------------------------ Online-Retail-like
# CDNOW's published weekly BG/NBD and Gamma-Gamma fits, with alpha converted to days (the simulation runs daily).
CDNOW_DAILY = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426,
               "spend_p": 6.25, "spend_q": 3.74, "spend_gamma": 15.44}
RETAIL_CATEGORIES = ("home", "kitchen", "garden", "toys", "stationery", "gifts")
# Streams of the retail layer, spawned from (seed, _RETAIL_KEY): independent of simulate_bgnbd's streams.
_RETAIL_KEY = 0x7E7A11
_RETAIL_STREAMS = ("affinity", "category", "quantity", "returned", "return_lag", "return_items")


def simulate_retail(
    n_customers: int,
    *,
    seed: int = 0,
    categories: tuple[str, ...] = RETAIL_CATEGORIES,
    category_weights=None,
    affinity_concentration: float = 1.0,
    mean_quantity: float = 3.0,
    return_rate: float = 0.03,
    max_return_days: int = 30,
    start: str | pd.Timestamp = "2010-12-01",
    end: str | pd.Timestamp = "2011-12-10",
    r: float = CDNOW_DAILY["r"],
    alpha: float = CDNOW_DAILY["alpha"],
    a: float = CDNOW_DAILY["a"],
    b: float = CDNOW_DAILY["b"],
    spend_p: float = CDNOW_DAILY["spend_p"],
    spend_q: float = CDNOW_DAILY["spend_q"],
    spend_gamma: float = CDNOW_DAILY["spend_gamma"],
    chunk_size: int = 500_000,
) -> Simulation:
    """An Online-Retail-like order log: `simulate_bgnbd` purchases (daily period, CDNOW-like parameters by
    default, over Online Retail's span 2010-12-01..2011-12-09) dressed as orders, with categories and returns.

    Each purchase is one order: `order_id` (1, 2, ... in time order within customer, unique overall), a
    `category` drawn from the customer's own affinity theta ~ Dirichlet(affinity_concentration x K x weights)
    over the K `categories` (`category_weights` = popularity, default equal; concentration 1 with equal weights
    is uniform on the simplex, larger values make customers alike), `quantity` = 1 + Poisson(mean_quantity - 1)
    items and `amount` = the Gamma-Gamma order value. Each order is returned with probability `return_rate`,
    `lag` ~ Uniform{1..max_return_days} days later, on k ~ Uniform{1..quantity} of its items: a row with the
    same order_id and category, quantity -k and amount -k/quantity x order value. Returns falling at or after
    `end` have not happened yet and are not in the log.

    Returns a `Simulation`: transactions in the contract column order (customer_id, timestamp, amount,
    order_id, category, quantity), sorted by customer then time (a return after its order); truth gains
    `affinity_<category>` columns, n_orders and n_returns; summary/params are those of the purchase process
    (the orders alone reproduce `simulate_bgnbd` with the same parameters and seed exactly).
    """
    names = check_categories(categories)
    k = len(names)
    weights = check_category_weights(np.full(k, 1.0 / k) if category_weights is None else category_weights, k)
    concentration = check_positive("affinity_concentration", affinity_concentration)
    if isinstance(mean_quantity, bool) or not isinstance(mean_quantity, numbers.Real) \
            or not math.isfinite(mean_quantity) or mean_quantity < 1:
        raise ConfigError(f"mean_quantity must be a number >= 1 (items per order), got {mean_quantity!r}")
    if isinstance(return_rate, bool) or not isinstance(return_rate, numbers.Real) \
            or not math.isfinite(return_rate) or not 0 <= return_rate < 1:
        raise ConfigError(f"return_rate must be a share in [0, 1) of orders returned, got {return_rate!r}")
    max_return_days = check_count("max_return_days", max_return_days)
    sim = simulate_bgnbd(n_customers, r=r, alpha=alpha, a=a, b=b, spend_p=spend_p, spend_q=spend_q,
                         spend_gamma=spend_gamma, start=start, end=end, period="D", seed=seed,
                         chunk_size=chunk_size)
    rngs = dict(zip(_RETAIL_STREAMS, (np.random.default_rng(s) for s in
                                      np.random.SeedSequence([seed, _RETAIL_KEY]).spawn(len(_RETAIL_STREAMS))),
                    strict=True))
    orders = sim.transactions
    n_orders = len(orders)
    customer = orders["customer_id"].to_numpy()
    owner = customer - 1  # simulate_bgnbd numbers customers 1..n, rows sorted by customer then time
    time_ns = orders["timestamp"].to_numpy().view(np.int64)
    amount = orders["amount"].to_numpy()

    affinity = rngs["affinity"].dirichlet(concentration * k * weights, size=sim.truth.shape[0])
    cumulative = np.cumsum(affinity, axis=1)
    u = rngs["category"].random(n_orders)
    category = np.minimum((u[:, None] >= cumulative[owner]).sum(axis=1), k - 1)  # inverse CDF per order
    quantity = 1 + rngs["quantity"].poisson(mean_quantity - 1.0, n_orders)

    returned = rngs["returned"].random(n_orders) < return_rate
    lag_days = rngs["return_lag"].integers(1, max_return_days + 1, n_orders)
    items = np.floor(rngs["return_items"].random(n_orders) * quantity).astype(np.int64) + 1  # Uniform{1..q}
    return_ns = time_ns + lag_days * NS_PER_DAY
    end_ns = int(np.datetime64(sim.observation_end, "ns").astype(np.int64))
    returned &= return_ns < end_ns
    ret = np.flatnonzero(returned)

    order_id = np.arange(1, n_orders + 1, dtype=np.int64)
    rows = {
        "customer_id": np.concatenate([customer, customer[ret]]),
        "timestamp": np.concatenate([time_ns, return_ns[ret]]),
        "amount": np.concatenate([amount, -amount[ret] * items[ret] / quantity[ret]]),
        "order_id": np.concatenate([order_id, order_id[ret]]),
        "category": np.concatenate([category, category[ret]]),
        "quantity": np.concatenate([quantity, -items[ret]]),
    }
    order = np.lexsort((rows["order_id"], rows["timestamp"], rows["customer_id"]))  # a return sorts after its order
    labels = pd.Categorical.from_codes(rows["category"][order], categories=list(names))
    transactions = pd.DataFrame({
        "customer_id": rows["customer_id"][order],
        "timestamp": rows["timestamp"][order].view("datetime64[ns]"),
        "amount": rows["amount"][order],
        "order_id": rows["order_id"][order],
        "category": pd.array(np.asarray(labels), dtype="string"),
        "quantity": rows["quantity"][order],
    })
    truth = sim.truth.copy()
    for j, name in enumerate(names):
        truth[f"affinity_{name}"] = affinity[:, j]
    truth["n_orders"] = np.bincount(owner, minlength=len(truth))
    truth["n_returns"] = np.bincount(owner[ret], minlength=len(truth))
    params = {**sim.params, "return_rate": float(return_rate), "affinity_concentration": concentration,
              "mean_quantity": float(mean_quantity)}
    return Simulation(transactions=transactions, truth=truth, summary=sim.summary, params=params,
                      observation_end=sim.observation_end, period=sim.period, start=sim.start, spend=True)
