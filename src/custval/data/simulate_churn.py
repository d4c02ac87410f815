"""Churn and cross-sell simulator with an exact Bayes ground truth.

`simulate_churn` runs a discrete daily process on [start, end) for customers with observed attributes and
latent heterogeneity; `ChurnSimulation.churn_probability` is the exact posterior probability of no purchase in
[cutoff, cutoff + H days) given everything observable before the cutoff (the Bayes classifier, whose ROC AUC is
the ceiling for any churn model trained on snapshots); `category_probability` is the per-category purchase
probability by Monte Carlo from the same posterior.

Process, per customer i (days t are whole days since `start`):
  attributes (observed): age (float, ~8% NaN), income (float, lognormal, ~15% NaN), region (4 levels),
    channel ("web"/"store"/"app", ~5% <NA>), plan ("basic"/"plus"/"premium"). They enter through a design
    vector x_i of the OBSERVED values (standardised age and log income, 0 when missing, plus a missing
    indicator with its own effect; one-hot levels, <NA> its own level), so the process depends on nothing
    about a customer that the data do not show, except the latents below.
  latents: purchase-rate multiplier g_i ~ Gamma(shape s, rate s) (mean 1); category affinity
    theta_i ~ Dirichlet(concentration x K x w_i), w_i = softmax(log category_weights + x_i . T) (attributes tilt
    tastes); spend level (lognormal, income-dependent).
  signup day b_i ~ Uniform{0 .. floor(signup_fraction x days) - 1}; exactly one order that day (first purchase).
  on each day t > b_i while alive: orders N_it ~ Poisson(g_i e_i(t)),
    e_i(t) = exp(beta0 + beta . x_i + kappa min(recent_i(t), 3) + season(t)),
    recent_i(t) = number of purchase days in [t - 30, t); season = weekly + annual cosine (mild).
  at the end of each day t >= b_i an alive customer drops out with hazard
    q_i(t) = sigmoid(d0 + delta . x_i + zeta log(1 + t - L_i(t))), L_i(t) = last purchase day <= t,
    so dropout grows with time since the last purchase. Dead customers never buy again.
  each order: category from a carry-over chain (in time order): with probability rho from the row
    C[previous category] (cross-sell, e.g. electronics -> home), else from theta_i (the first order: theta_i);
    amount ~ Gamma(shape 2, mean = category mean x spend level); timestamp = day + uniform whole seconds.

Exact churn truth at cutoff day c (everything before midnight of c observed). e_i(t), q_i(t) for t < c are
functions of the observed history, and so are their values after the last purchase L on the no-purchase path.
With n = orders on days b+1 .. c-1, E(tau) = sum_{t=b+1}^{tau} e(t) and S(t) = prod_{u=b}^{t} (1 - q(u)),
integrating g against its Gamma(s, s) prior gives the weight of "died at the end of day tau" (tau in [L, c-1])
  W(tau) = (s + E(tau))^-(s+n) S(tau-1) q(tau),   and of "alive at c"   W_a = (s + E(c-1))^-(s+n) S(c-1)
(common factors cancel). Given alive at c, g ~ Gamma(s + n, rate R = s + E(c-1)); on the no-purchase path
the window's e'(t), q'(t) are known, and with X_j = e'(c) + ... + e'(c+j)
  P(no purchase in [c, c+H) | alive) = sum_j w_j (R / (R + X_j))^(s+n),
w_j = P(the dropout clock stops at the end of day c+j) (the last term: survives to day c+H-1). Then
  P(churn) = (1 - p_alive) + p_alive P(no purchase | alive),   p_alive = W_a / (W_a + sum_tau W(tau)).
It is computed in log space on a (customers x days) grid, in chunks of `_GRID_CHUNK` customers, from the
transaction log and the customer table only (never from latents): a simulation whose transactions after the
cutoff are removed, or whose latents are scrambled, gives the same churn truth.

Category truth: `category_probability` draws (alive at c, g) from that exact posterior and forward-simulates
the window (purchases, the carry-over chain from the last observed category, dropout) per draw, vectorised
over customers x draws with a loop over the H days. It conditions on the latent affinity theta_i (known to
the simulator, not to any model), so it is P(buys category k | observed history, theta_i): it uses more than
the data show, so its AUC / Brier score bound from above what any model (even the Bayes classifier on the
observables) can reach, rather than being the Bayes probability itself. The churn truth is exactly Bayes.

Memory and time: the simulation keeps one uint8 order count per customer-day while running (200k customers x
731 days = 146 MB); the truth builds per-chunk grids of a few float64 arrays of 2,048 x (cutoff + H) days
(~15 MB each). Measured on a busy 2-core box with the defaults (20k customers, 2023-01-01..2025-01-01, ~310k
orders): simulate_churn ~1.2 s, churn_probability ~1.7 s, category_probability with 256 draws ~14 s. At
cutoff 2024-10-03, H = 90, among customers active in the prior 365 days: churn rate ~45%, oracle ROC AUC
~0.88; per-category purchase rates 19-36%.
Random quantities come from independent streams spawned from `seed` (SeedSequence.spawn), so the same seed
gives identical output (category_probability has its own `seed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from custval.data.simulate_checks import (
    check_categories,
    check_category_weights,
    check_count,
    check_day_window,
    check_nonnegative,
    check_positive,
    check_real,
    check_seed,
    check_unit,
)
from custval.errors import ConfigError

NS_PER_DAY = 86_400 * 10**9
NS_PER_SECOND = 10**9
RECENT_DAYS = 30  # window of `recent` purchase days
RECENT_CAP = 3  # recent purchase days beyond this add nothing to the rate

CHURN_CATEGORIES = ("grocery", "home", "electronics", "fashion", "beauty")
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("web", "store", "app")
PLANS = ("basic", "plus", "premium")

# Design vector of the observed attributes (baselines: region north, channel web, plan basic).
FEATURES = ("age", "age_missing", "log_income", "income_missing", "region=south", "region=east", "region=west",
            "channel=store", "channel=app", "channel=<NA>", "plan=plus", "plan=premium")
AGE_MEAN, AGE_SD = 42.0, 14.0
INCOME_MEDIAN, INCOME_SIGMA = 45_000.0, 0.55
_REGION_P = (0.30, 0.25, 0.25, 0.20)
_CHANNEL_P = (0.50, 0.30, 0.20)
_PLAN_P = (0.55, 0.30, 0.15)
AGE_MISSING, INCOME_MISSING, CHANNEL_MISSING = 0.08, 0.15, 0.05

# Effects on log purchase rate and on dropout log-odds (multiplied by `attribute_effects`).
PURCHASE_EFFECTS = {"age": 0.10, "age_missing": -0.20, "log_income": 0.20, "income_missing": -0.15,
                    "region=south": -0.10, "region=east": 0.05, "region=west": 0.15, "channel=store": -0.25,
                    "channel=app": 0.35, "channel=<NA>": -0.20, "plan=plus": 0.35, "plan=premium": 0.70}
DROPOUT_EFFECTS = {"age": -0.30, "age_missing": 0.30, "log_income": -0.15, "income_missing": 0.25,
                   "region=south": 0.20, "region=east": 0.00, "region=west": -0.15, "channel=store": 0.15,
                   "channel=app": -0.35, "channel=<NA>": 0.40, "plan=plus": -0.50, "plan=premium": -1.00}
# Attribute tilts of the category tastes (log-weight shifts), for the default categories.
_DEFAULT_TILTS = {
    "age": (0.0, 0.35, -0.25, -0.30, 0.0), "log_income": (-0.25, 0.10, 0.45, 0.10, 0.0),
    "region=south": (0.25, 0.0, 0.0, 0.0, 0.0), "region=west": (0.0, 0.0, 0.0, 0.35, 0.0),
    "channel=store": (0.45, 0.10, 0.0, 0.0, 0.0), "channel=app": (0.0, 0.0, 0.0, 0.35, 0.25),
    "plan=premium": (0.0, 0.0, 0.35, 0.0, 0.30),
}
DEFAULT_CATEGORY_WEIGHTS = (0.35, 0.20, 0.10, 0.20, 0.15)
# Carry-over rows: previous category -> next (electronics -> home accessories, fashion <-> beauty, ...).
DEFAULT_CARRYOVER = ((0.55, 0.20, 0.05, 0.05, 0.15),
                     (0.25, 0.35, 0.25, 0.10, 0.05),
                     (0.05, 0.50, 0.25, 0.10, 0.10),
                     (0.10, 0.05, 0.05, 0.40, 0.40),
                     (0.25, 0.05, 0.05, 0.40, 0.25))
_DEFAULT_CATEGORY_MEAN = (35.0, 60.0, 150.0, 70.0, 30.0)
AMOUNT_SHAPE = 2.0
WEEKLY_AMPLITUDE, ANNUAL_AMPLITUDE = 0.10, 0.15  # x `seasonality`; peaks on Saturdays and in mid December

_STREAMS = ("signup", "age", "income", "region", "channel", "plan", "missing", "g", "theta", "spend",
            "poisson", "dropout", "seconds", "chain", "amount", "structure")
_GRID_CHUNK = 2_048
_MC_PAIRS = 2**18


@dataclass(frozen=True)
class ChurnSimulation:
    """A simulated customer base with churn and propensity ground truth.

    transactions: customer_id int64, timestamp datetime64[ns], amount float64, order_id int64 (unique,
        numbered 1, 2, ... in row order, i.e. by customer then time, not in global time order), category
        string; sorted by customer then time. No row at or after observation_end.
    customers: customer_id int64, signup_date datetime64[ns] (midnight of the first purchase day), age,
        income (float64 with NaN), region, channel (string, <NA>), plan (string).
    latent: index customer_id: g (rate multiplier), spend (spend level), dropout_date (the day at whose end
        the customer dropped out; NaT if alive at the end), alive_at_end, affinity_<category>.
    params: every number the process uses (see the module docstring); `start`: the first day.
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    latent: pd.DataFrame
    params: dict
    start: pd.Timestamp
    observation_end: pd.Timestamp
    categories: tuple[str, ...]

    # ------------------------------------------------------------------------------------------ public truth
    def churn_probability(self, cutoff, horizon_days: int = 90) -> pd.Series:
        """Exact P(no purchase in [cutoff, cutoff + horizon_days) | everything observable before cutoff), for
        every customer with a purchase before `cutoff` (a midnight in (start, observation_end]). Index
        customer_id, name "churn_probability". The window may run past observation_end (the process is
        defined there; only the labels are not observable)."""
        post = self.posterior(cutoff, horizon_days)
        return post["churn_probability"]

    def posterior(self, cutoff, horizon_days: int = 90) -> pd.DataFrame:
        """Per active customer: p_alive (P(alive at cutoff | history)), g_shape and g_rate (the Gamma posterior
        of g given alive), churn_probability. Computed from transactions and customers only."""
        c, h = self._check_cutoff(cutoff, horizon_days)
        parts = [chunk for chunk in self._posterior_chunks(c, h, keep_paths=False)]
        ids = np.concatenate([p["ids"] for p in parts])
        cols = {name: np.concatenate([p[name] for p in parts])
                for name in ("p_alive", "g_shape", "g_rate", "churn_probability")}
        return pd.DataFrame(cols, index=pd.Index(ids, name="customer_id")).sort_index()

    def category_probability(self, cutoff, horizon_days: int = 90, *, n_draws: int = 256,
                             seed: int = 0) -> pd.DataFrame:
        """P(buys category k in [cutoff, cutoff + horizon_days)) for every customer with a purchase before
        `cutoff`, one float64 column per category, by Monte Carlo with `n_draws` draws per customer from the
        exact posterior (conditional on the latent affinity theta: see the module docstring)."""
        bought, _ = self._forward_window(cutoff, horizon_days, n_draws=n_draws, seed=seed)
        return bought

    # ------------------------------------------------------------------------------------------- internals
    def _check_cutoff(self, cutoff, horizon_days) -> tuple[int, int]:
        try:
            stamp = pd.Timestamp(cutoff)
        except (TypeError, ValueError):
            raise ConfigError(f"cutoff must be a date, got {cutoff!r}") from None
        if stamp is pd.NaT or pd.isna(stamp) or stamp.tzinfo is not None:
            raise ConfigError(f"cutoff must be a timezone-naive date, got {cutoff!r}")
        if stamp != stamp.normalize():
            raise ConfigError(f"cutoff must be a midnight (a date), got {stamp}")
        if not self.start < stamp <= self.observation_end:
            raise ConfigError(f"cutoff must lie in ({self.start.date()}, {self.observation_end.date()}], "
                              f"got {stamp.date()}")
        h = check_count("horizon_days", horizon_days)
        return int((stamp - self.start) // pd.Timedelta(days=1)), h

    def _arrays(self):
        """Customer-level arrays from the OBSERVED tables: ids, signup day, purchase and dropout linear terms,
        and per transaction: customer position, day, category code (sorted by position, time, order_id)."""
        p = self.params
        cust = self.customers
        ids = cust["customer_id"].to_numpy(dtype=np.int64)
        signup = ((cust["signup_date"] - self.start) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
        x = design_matrix(cust)
        a = p["beta0"] + x @ np.array([p["purchase_effects"][f] for f in FEATURES])
        d = p["d0"] + x @ np.array([p["dropout_effects"][f] for f in FEATURES])
        tx = self.transactions
        pos = pd.Index(ids).get_indexer(tx["customer_id"].to_numpy())
        if (pos < 0).any():
            raise ConfigError("transactions hold a customer_id that is not in customers")
        ts = tx["timestamp"].to_numpy().astype("datetime64[ns]").view(np.int64)
        start_ns = int(np.datetime64(self.start, "ns").astype(np.int64))
        day = (ts - start_ns) // NS_PER_DAY
        cat = pd.Categorical(tx["category"].astype(object), categories=list(self.categories)).codes.astype(np.int64)
        oid = tx["order_id"].to_numpy(dtype=np.int64) if "order_id" in tx else np.arange(len(tx))
        order = np.lexsort((oid, ts, pos))
        return ids, signup, a, d, pos[order], day[order], cat[order]

    def _posterior_chunks(self, c: int, h: int, *, keep_paths: bool):
        """Yield the exact posterior per chunk of active customers (in signup order), on a grid of the days
        from the chunk's earliest signup to c + h - 1 (see the module docstring for the formulas)."""
        p = self.params
        s, kappa, zeta = p["rate_shape"], p["recent_effect"], p["recency_effect"]
        ids, signup, a_all, d_all, tx_pos, tx_day, tx_cat = self._arrays()
        # active customers in signup order (chunks then span few signup days: the grid starts at the earliest)
        active = np.flatnonzero(signup < c)
        if active.size == 0:
            raise ConfigError(f"no customer has a purchase before the cutoff (day {c} after {self.start.date()})")
        active = active[np.argsort(signup[active], kind="stable")]
        rank = np.full(signup.size, -1, dtype=np.int64)
        rank[active] = np.arange(active.size)
        tx_rank = rank[tx_pos]
        keep = (tx_day < c) & (tx_rank >= 0)
        by_rank = np.argsort(tx_rank[keep], kind="stable")  # keeps time order within customer
        tx_rank, tx_day, tx_cat = tx_rank[keep][by_rank], tx_day[keep][by_rank], tx_cat[keep][by_rank]
        season_all = _season(self.start, c + h, p["seasonality"])
        log1p_table = np.log1p(np.arange(c + h + 1))
        for lo in range(0, active.size, _GRID_CHUNK):
            rows = active[lo:lo + _GRID_CHUNK]
            m = rows.size
            b = signup[rows]
            first = int(b.min())
            width, past = c + h - first, c - first  # grid days first .. c+h-1; the past is the first `past`
            t_abs = np.arange(first, c + h)
            a, d = a_all[rows], d_all[rows]
            r_lo, r_hi = np.searchsorted(tx_rank, [lo, lo + m])
            local, days = tx_rank[r_lo:r_hi] - lo, tx_day[r_lo:r_hi] - first
            counts = np.bincount(local * past + days, minlength=m * past).reshape(m, past)
            ind = np.zeros((m, width), dtype=bool)
            ind[:, :past] = counts > 0
            cum = np.zeros((m, width + 1), dtype=np.int32)
            np.cumsum(ind, axis=1, out=cum[:, 1:])
            recent = cum[:, :width] - cum[:, np.maximum(np.arange(width) - RECENT_DAYS, 0)]
            last = np.maximum.accumulate(np.where(ind, t_abs, first), axis=1)
            after = t_abs > b[:, None]
            from_signup = t_abs >= b[:, None]
            e = np.exp(a[:, None] + kappa * np.minimum(recent, RECENT_CAP) + season_all[first:])
            e[~after] = 0.0
            z = d[:, None] + zeta * log1p_table[t_abs - last]
            softplus = np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)  # log(1 + e^z)
            log_1mq = np.where(from_signup, -softplus, 0.0)  # log(1 - q)
            log_q = np.where(from_signup, z - softplus, -np.inf)  # log q
            n = counts.sum(axis=1) - counts[np.arange(m), b - first]
            shape = s + n
            e_cum = np.cumsum(e[:, :past], axis=1)
            log_s = np.cumsum(log_1mq[:, :past], axis=1)
            last_c = last[:, past - 1]
            log_w = -shape[:, None] * np.log(s + e_cum) + (log_s - log_1mq[:, :past]) + log_q[:, :past]
            log_w[t_abs[:past] < last_c[:, None]] = -np.inf  # death before the last purchase: impossible
            rate = s + e_cum[:, -1]
            log_wa = -shape * np.log(rate) + log_s[:, -1]
            log_dead = logsumexp(log_w, axis=1)
            p_alive = np.exp(log_wa - np.logaddexp(log_dead, log_wa))
            # window: P(no purchase | alive at c) = sum_j w_j (R / (R + X_j))^shape
            x_cum = np.cumsum(e[:, past:], axis=1)
            l1 = log_1mq[:, past:]
            prefix = np.cumsum(l1, axis=1) - l1
            log_wj = prefix + log_q[:, past:]
            log_wj[:, -1] = prefix[:, -1]
            log_np = logsumexp(log_wj - shape[:, None] * np.log1p(x_cum / rate[:, None]), axis=1)
            churn = (1.0 - p_alive) + p_alive * np.exp(np.minimum(log_np, 0.0))
            out = {"ids": ids[rows], "p_alive": p_alive, "g_shape": shape.astype(float), "g_rate": rate,
                   "churn_probability": np.clip(churn, 0.0, 1.0)}
            if keep_paths:
                last_row = r_lo + np.searchsorted(local, np.arange(m), side="right") - 1  # last order before c
                # the last 3 purchase days before c (-inf-like when fewer): enough for min(recent, 3)
                rr, cc = np.nonzero(ind[:, :past])
                row_start = np.searchsorted(rr, np.arange(m))
                row_end = np.searchsorted(rr, np.arange(m), side="right")
                recent_days = np.full((m, RECENT_CAP), -(10**9), dtype=np.int64)
                for i in range(RECENT_CAP):
                    ok = row_end - 1 - i >= row_start
                    recent_days[ok, i] = cc[row_end[ok] - 1 - i] + first
                out.update(rows=rows, a=a, d=d, last_day=last_c, recent_days=recent_days,
                           e_window=e[:, past:], hazard_window=-log_1mq[:, past:],
                           last_cat=tx_cat[last_row], season=season_all[c:])
            yield out

    def _forward_window(self, cutoff, horizon_days, *, n_draws, seed):
        """Monte Carlo of the window from the exact posterior: (per-category purchase probabilities, P(any
        purchase)) per active customer; P(any) estimates 1 - churn_probability (a check of the closed form).

        Per draw: alive at c with probability p_alive, then g ~ Gamma(g_shape, g_rate). Purchases use the
        time change of a Poisson process: a draw keeps its integrated intensity and its next unit-rate arrival
        (an Exp(1) threshold), so a day on which the threshold is crossed holds 1 + Poisson(excess) orders
        (exactly Poisson(intensity) per day). Dropout likewise: the draw dies at the end of the day its
        cumulative -log(1 - q) passes an Exp(1) threshold. Until its first purchase in the window a draw
        follows its customer's no-purchase path, whose intensities and hazards the posterior grid already
        holds, so the first purchase day and any earlier death come from a binary search; only draws that
        buy are then simulated day by day (`recent` needs only the last 3 purchase days: it is capped at 3).
        """
        c, h = self._check_cutoff(cutoff, horizon_days)
        n_draws = check_count("n_draws", n_draws)
        seed = check_seed(seed)
        p = self.params
        kappa, zeta, rho = p["recent_effect"], p["recency_effect"], p["carryover"]
        carry_cum = np.cumsum(np.asarray(p["carryover_matrix"], dtype=float), axis=1)
        k = len(self.categories)
        theta_all = self.latent[[f"affinity_{name}" for name in self.categories]].to_numpy()
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA7E]))
        mult = np.exp(kappa * np.arange(RECENT_CAP + 1))
        log1p_table = np.log1p(np.arange(c + h + 1))
        mc_chunk = max(1, min(_GRID_CHUNK, _MC_PAIRS // n_draws))  # customers per batch of ~_MC_PAIRS draws
        ids_out, bought_out, any_out = [], [], []
        for chunk in self._posterior_chunks(c, h, keep_paths=True):
            sea = np.exp(chunk["season"])
            for lo in range(0, chunk["ids"].size, mc_chunk):
                sl = slice(lo, lo + mc_chunk)
                m = chunk["ids"][sl].size
                theta_cum = np.cumsum(theta_all[chunk["rows"][sl]], axis=1)
                last_c = chunk["last_day"][sl]
                e_cum = np.cumsum(chunk["e_window"][sl], axis=1)  # no-purchase path, per unit of g
                hz_cum = np.cumsum(chunk["hazard_window"][sl], axis=1)
                # softplus(z) = -log(1 - q) per customer and days since the last purchase (after a purchase)
                span = c + h - int(last_c.min())
                z = chunk["d"][sl][:, None] + zeta * log1p_table[:span]
                hazard = (np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)).ravel()

                alive = rng.random((m, n_draws)) < chunk["p_alive"][sl, None]
                pair = np.flatnonzero(alive.ravel())
                cust = pair // n_draws
                g = rng.standard_gamma(chunk["g_shape"][sl][cust]) / chunk["g_rate"][sl][cust]
                first_arrival = rng.standard_exponential(pair.size)
                death_at = rng.standard_exponential(pair.size)
                j1 = _first_reaching(e_cum, cust, first_arrival / g)  # first purchase day (h: none)
                jd = _first_reaching(hz_cum, cust, death_at)  # death at the end of day jd without buying
                buys = (j1 < h) & (j1 <= jd)
                bought = np.zeros((m * n_draws, k), dtype=bool)
                anyb = np.zeros(m * n_draws, dtype=bool)
                anyb[pair[buys]] = True
                # the buyers, in order of their first purchase day, enter the daily simulation that day
                order = np.flatnonzero(buys)[np.argsort(j1[buys], kind="stable")]
                pair, cust, g, j1, next_arrival, death_at = (arr[order] for arr in (pair, cust, g, j1,
                                                                                     first_arrival, death_at))
                enter = np.searchsorted(j1, np.arange(h + 1))  # pairs [enter[j], enter[j+1]) enter on day j
                base = g * np.exp(chunk["a"][sl][cust])
                intensity = g * e_cum[cust, j1]
                cum_hazard = np.where(j1 > 0, hz_cum[cust, np.maximum(j1 - 1, 0)], 0.0)
                last = last_c[cust].astype(np.int64)
                r1, r2, r3 = (chunk["recent_days"][sl, i][cust] for i in range(3))
                prev = chunk["last_cat"][sl][cust].astype(np.int64)
                hazard_row = cust * span
                removed = 0  # dead pairs dropped from the front part so far
                for j in range(h):
                    t = c + j
                    old, hi = enter[j] - removed, enter[j + 1] - removed  # [0, old) in; [old, hi) enter today
                    if hi == 0:
                        continue
                    if old:
                        recent = ((r1[:old] >= t - RECENT_DAYS).view(np.int8)
                                  + (r2[:old] >= t - RECENT_DAYS).view(np.int8)
                                  + (r3[:old] >= t - RECENT_DAYS).view(np.int8))
                        intensity[:old] += base[:old] * mult[recent] * sea[j]
                    buyers = np.flatnonzero(intensity[:hi] >= next_arrival[:hi])
                    n_orders = 1 + rng.poisson(intensity[buyers] - next_arrival[buyers])
                    next_arrival[buyers] = intensity[buyers] + rng.standard_exponential(buyers.size)
                    for slot in range(1, int(n_orders.max(initial=0)) + 1):
                        sel = buyers[n_orders >= slot]
                        cross = np.flatnonzero(rng.random(sel.size) < rho)
                        cum = theta_cum[cust[sel]]
                        cum[cross] = carry_cum[prev[sel[cross]]]
                        cat = np.minimum((rng.random(sel.size)[:, None] >= cum).sum(axis=1), k - 1)
                        prev[sel] = cat
                        bought[pair[sel], cat] = True
                    r3[buyers], r2[buyers], r1[buyers] = r2[buyers], r1[buyers], t
                    last[buyers] = t
                    cum_hazard[:hi] += hazard[hazard_row[:hi] + (t - last[:hi])]
                    dead = np.flatnonzero(cum_hazard[:hi] >= death_at[:hi])
                    if dead.size:
                        base[dead], death_at[dead] = 0.0, np.inf  # never buys again, never dies again
                        next_arrival[dead] = np.inf
                        if dead.size > 0.3 * hi:  # drop the dead from the front part
                            keep = np.ones(pair.size, dtype=bool)
                            keep[:hi] = base[:hi] > 0
                            removed += int(hi - keep[:hi].sum())
                            (pair, cust, base, intensity, next_arrival, cum_hazard, death_at, last, r1, r2, r3,
                             prev, hazard_row) = (arr[keep] for arr in (pair, cust, base, intensity, next_arrival,
                                                                        cum_hazard, death_at, last, r1, r2, r3,
                                                                        prev, hazard_row))
                ids_out.append(chunk["ids"][sl])
                bought_out.append(bought.reshape(m, n_draws, k).mean(axis=1))
                any_out.append(anyb.reshape(m, n_draws).mean(axis=1))
        index = pd.Index(np.concatenate(ids_out), name="customer_id")
        frame = pd.DataFrame(np.concatenate(bought_out), index=index, columns=list(self.categories))
        return frame.sort_index(), pd.Series(np.concatenate(any_out), index=index, name="p_any").sort_index()


def _first_reaching(cum: np.ndarray, rows: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Smallest j with cum[rows, j] >= threshold (cum nondecreasing along axis 1), cum.shape[1] if none:
    a vectorised binary search."""
    lo = np.zeros(rows.size, dtype=np.int64)
    hi = np.full(rows.size, cum.shape[1], dtype=np.int64)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        reached = cum[rows, np.minimum(mid, cum.shape[1] - 1)] >= threshold
        hi = np.where(open_ & reached, mid, hi)
        lo = np.where(open_ & ~reached, mid + 1, lo)


def design_matrix(customers: pd.DataFrame) -> np.ndarray:
    """The design vector x_i (columns FEATURES) of the observed attributes: standardised age and log income
    (0 when missing) with missing indicators, one-hot region/channel/plan (channel <NA> is its own level)."""
    age = customers["age"].to_numpy(dtype=float)
    income = customers["income"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_income = (np.log(income) - math.log(INCOME_MEDIAN)) / INCOME_SIGMA
    region, channel, plan = (customers[col].astype("string").fillna("<NA>").to_numpy(dtype=object)
                             for col in ("region", "channel", "plan"))
    channel_na = channel == "<NA>"
    cols = [np.nan_to_num((age - AGE_MEAN) / AGE_SD, nan=0.0), np.isnan(age),
            np.nan_to_num(z_income, nan=0.0), np.isnan(income),
            region == "south", region == "east", region == "west",
            channel == "store", channel == "app", channel_na,
            plan == "plus", plan == "premium"]
    return np.column_stack([np.asarray(col, dtype=float) for col in cols])


def simulate_churn(
    n_customers: int = 20_000,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2025-01-01",
    categories: tuple[str, ...] = CHURN_CATEGORIES,
    category_weights=None,
    signup_fraction: float = 0.75,
    base_rate: float = 0.018,
    rate_shape: float = 1.0,
    recent_effect: float = 0.25,
    base_dropout: float = 0.0006,
    recency_effect: float = 0.2,
    attribute_effects: float = 1.0,
    carryover: float = 0.4,
    affinity_concentration: float = 1.0,
    seasonality: float = 1.0,
) -> ChurnSimulation:
    """Simulate `n_customers` over [start, end) (midnights) with the process of the module docstring.

    base_rate: daily order rate e at the baseline (x = 0, no recent purchase, g = 1); rate_shape: s of
    g ~ Gamma(s, s) (smaller = more heterogeneous); recent_effect: kappa; base_dropout: daily dropout hazard at
    the baseline on a purchase day; recency_effect: zeta (log-odds per unit of log(1 + days since last
    purchase)); attribute_effects scales every attribute effect (0 = attributes irrelevant, tastes included);
    carryover: rho; affinity_concentration: Dirichlet concentration per category (larger = customers alike);
    seasonality scales the weekly and annual cosines (0 = none). With other `categories` than the default,
    attribute tilts and the carry-over matrix are drawn at random from `seed`.
    """
    n_customers = check_count("n_customers", n_customers)
    seed = check_seed(seed)
    start_ts, end_ts = check_day_window(start, end)
    names = check_categories(categories, at_least=2)
    k = len(names)
    default_cats = names == CHURN_CATEGORIES
    if category_weights is None:
        category_weights = DEFAULT_CATEGORY_WEIGHTS if default_cats else np.full(k, 1.0 / k)
    weights = check_category_weights(category_weights, k)
    signup_fraction = check_unit("signup_fraction", signup_fraction, low_open=True, high_closed=True)
    base_rate = check_positive("base_rate", base_rate)
    rate_shape = check_positive("rate_shape", rate_shape)
    recent_effect = check_real("recent_effect", recent_effect)
    base_dropout = check_unit("base_dropout", base_dropout, low_open=True, high_closed=False)
    recency_effect = check_real("recency_effect", recency_effect)
    attribute_effects = check_nonnegative("attribute_effects", attribute_effects)
    carryover = check_unit("carryover", carryover, low_open=False, high_closed=True)
    concentration = check_positive("affinity_concentration", affinity_concentration)
    seasonality = check_nonnegative("seasonality", seasonality)
    n_days = int((end_ts - start_ts) // pd.Timedelta(days=1))
    signup_days = int(math.floor(signup_fraction * n_days))
    if signup_days < 1:
        raise ConfigError(f"signup_fraction x days must leave at least one signup day, got {signup_fraction}")
    if base_rate * math.exp(recent_effect * RECENT_CAP + 3 * attribute_effects) > 5:
        raise ConfigError(f"base_rate too large for a daily order process, got {base_rate!r}")

    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS))),
                    strict=True))
    n = n_customers
    # ---- observed attributes
    age = np.clip(rngs["age"].normal(AGE_MEAN, AGE_SD, n), 18, 90).round()
    income = np.round(np.exp(rngs["income"].normal(math.log(INCOME_MEDIAN), INCOME_SIGMA, n)), -2)
    missing = rngs["missing"].random((n, 3))
    age[missing[:, 0] < AGE_MISSING] = np.nan
    income[missing[:, 1] < INCOME_MISSING] = np.nan
    region = np.asarray(REGIONS, dtype=object)[rngs["region"].choice(len(REGIONS), n, p=_REGION_P)]
    channel = np.asarray(CHANNELS, dtype=object)[rngs["channel"].choice(len(CHANNELS), n, p=_CHANNEL_P)]
    channel[missing[:, 2] < CHANNEL_MISSING] = None
    plan = np.asarray(PLANS, dtype=object)[rngs["plan"].choice(len(PLANS), n, p=_PLAN_P)]
    signup = np.sort(rngs["signup"].integers(0, signup_days, n))
    ids = np.arange(1, n + 1, dtype=np.int64)
    customers = pd.DataFrame({
        "customer_id": ids,
        "signup_date": (np.datetime64(start_ts, "ns") + signup.astype("timedelta64[D]")).astype("datetime64[ns]"),
        "age": age, "income": income,
        "region": pd.array(region, dtype="string"), "channel": pd.array(channel, dtype="string"),
        "plan": pd.array(plan, dtype="string"),
    })
    x = design_matrix(customers)
    purchase_effects = {f: attribute_effects * PURCHASE_EFFECTS[f] for f in FEATURES}
    dropout_effects = {f: attribute_effects * DROPOUT_EFFECTS[f] for f in FEATURES}
    beta0, d0 = math.log(base_rate), math.log(base_dropout / (1 - base_dropout))
    a = beta0 + x @ np.array([purchase_effects[f] for f in FEATURES])
    d = d0 + x @ np.array([dropout_effects[f] for f in FEATURES])

    # ---- tastes and carry-over
    if default_cats:
        tilts = np.array([_DEFAULT_TILTS.get(f, (0.0,) * k) for f in FEATURES])
        carry = np.asarray(DEFAULT_CARRYOVER, dtype=float)
    else:
        tilts = rngs["structure"].normal(0.0, 0.3, (len(FEATURES), k))
        carry = rngs["structure"].dirichlet(np.full(k, 1.0), size=k)
    logits = np.log(weights) + attribute_effects * (x @ tilts)
    w_i = np.exp(logits - logits.max(axis=1, keepdims=True))
    w_i /= w_i.sum(axis=1, keepdims=True)
    theta = _dirichlet_rows(rngs["theta"], concentration * k * w_i)
    g = rngs["g"].standard_gamma(rate_shape, n) / rate_shape
    spend = np.exp(0.25 * x[:, FEATURES.index("log_income")] + rngs["spend"].normal(0.0, 0.3, n))

    # ---- daily process (customers are sorted by signup day)
    season = _season(start_ts, n_days, seasonality)
    counts = np.zeros((n_days, n), dtype=np.uint8)
    alive = np.zeros(n, dtype=bool)
    last = np.full(n, -1, dtype=np.int64)
    recent = np.zeros(n, dtype=np.int64)
    dropout_day = np.full(n, -1, dtype=np.int64)
    first_of_day = np.searchsorted(signup, np.arange(n_days + 1))
    log_g_a = np.log(g) + a
    for t in range(n_days):
        if t >= 1:
            recent += counts[t - 1] > 0
        if t > RECENT_DAYS:
            recent -= counts[t - 1 - RECENT_DAYS] > 0
        act = np.flatnonzero(alive)
        lam = np.exp(log_g_a[act] + recent_effect * np.minimum(recent[act], RECENT_CAP) + season[t])
        k_orders = rngs["poisson"].poisson(lam)
        if k_orders.size and k_orders.max() > 255:
            raise ConfigError("order rates too large: more than 255 orders in a day; lower base_rate")
        counts[t, act] = k_orders
        last[act[k_orders > 0]] = t
        new = np.arange(first_of_day[t], first_of_day[t + 1])
        alive[new] = True
        counts[t, new] = 1
        last[new] = t
        live = np.flatnonzero(alive)
        z = d[live] + recency_effect * np.log1p(t - last[live])
        dies = rngs["dropout"].random(live.size) < 1.0 / (1.0 + np.exp(-z))
        alive[live[dies]] = False
        dropout_day[live[dies]] = t

    # ---- orders: one row per order, sorted by customer then time; categories along the chain in time order
    by_customer = np.ascontiguousarray(counts.T)
    del counts
    cust_pos, day = np.nonzero(by_customer)
    reps = by_customer[cust_pos, day].astype(np.int64)
    cust_pos, day = np.repeat(cust_pos, reps), np.repeat(day, reps)
    n_orders = cust_pos.size
    seconds = rngs["seconds"].integers(0, 86_400, n_orders)
    start_ns = int(np.datetime64(start_ts, "ns").astype(np.int64))
    ts = start_ns + day * NS_PER_DAY + seconds * NS_PER_SECOND
    order = np.lexsort((ts, cust_pos))
    cust_pos, ts = cust_pos[order], ts[order]
    chain_u = rngs["chain"].random((n_orders, 2))
    category = _category_chain(cust_pos, chain_u, np.cumsum(theta, axis=1), np.cumsum(carry, axis=1), carryover)
    cat_mean = np.asarray(_DEFAULT_CATEGORY_MEAN if default_cats else np.full(k, 60.0))
    mean_amount = cat_mean[category] * spend[cust_pos]
    amount = np.round(rngs["amount"].standard_gamma(AMOUNT_SHAPE, n_orders) * mean_amount / AMOUNT_SHAPE, 2)
    amount = np.maximum(amount, 0.01)
    transactions = pd.DataFrame({
        "customer_id": ids[cust_pos],
        "timestamp": ts.view("datetime64[ns]"),
        "amount": amount,
        "order_id": np.arange(1, n_orders + 1, dtype=np.int64),
        "category": pd.array(np.asarray(names, dtype=object)[category], dtype="string"),
    })
    dropped = dropout_day >= 0
    dropout_date = np.where(dropped, np.datetime64(start_ts, "ns") + dropout_day.astype("timedelta64[D]"),
                            np.datetime64("NaT", "ns")).astype("datetime64[ns]")
    latent = pd.DataFrame({"g": g, "spend": spend, "dropout_date": dropout_date, "alive_at_end": ~dropped},
                          index=pd.Index(ids, name="customer_id"))
    for j, name in enumerate(names):
        latent[f"affinity_{name}"] = theta[:, j]
    params = {"rate_shape": rate_shape, "beta0": beta0, "recent_effect": recent_effect, "d0": d0,
              "recency_effect": recency_effect, "purchase_effects": purchase_effects,
              "dropout_effects": dropout_effects, "seasonality": seasonality, "carryover": carryover,
              "carryover_matrix": carry.tolist(), "category_weights": weights.tolist(),
              "affinity_concentration": concentration, "category_tilts": tilts.tolist(),
              "signup_days": signup_days, "n_days": n_days}
    return ChurnSimulation(transactions=transactions, customers=customers, latent=latent, params=params,
                           start=start_ts, observation_end=end_ts, categories=names)


def _category_chain(cust_pos, u, theta_cum, carry_cum, rho) -> np.ndarray:
    """Categories of time-ordered orders: the first of each customer from theta, each later one with
    probability rho from the carry-over row of the previous category, else from theta. Loops over the order
    rank within customer (vectorised over customers)."""
    n = cust_pos.size
    k = theta_cum.shape[1]
    category = np.zeros(n, dtype=np.int64)
    if n == 0:
        return category
    starts = np.flatnonzero(np.r_[True, cust_pos[1:] != cust_pos[:-1]])
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
    for r in range(rank.max() + 1):
        rows = by_rank[bounds[r]:bounds[r + 1]]
        cum = theta_cum[cust_pos[rows]]
        if r > 0:
            cross = u[rows, 0] < rho
            cum = np.where(cross[:, None], carry_cum[category[rows - 1]], cum)
        category[rows] = np.minimum((u[rows, 1][:, None] >= cum).sum(axis=1), k - 1)
    return category


def _dirichlet_rows(rng, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of `alpha` (per-row concentrations) via normalised Gamma draws."""
    draws = rng.standard_gamma(alpha)
    draws = np.maximum(draws, np.finfo(float).tiny)
    return draws / draws.sum(axis=1, keepdims=True)


def _season(start: pd.Timestamp, n_days: int, scale: float) -> np.ndarray:
    """Additive log-rate seasonality per day since `start`: weekly (peak Saturday) + annual (peak ~Dec 15)."""
    dates = pd.date_range(start, periods=n_days, freq="D")
    dow = dates.day_of_week.to_numpy()
    doy = dates.day_of_year.to_numpy()
    return scale * (WEEKLY_AMPLITUDE * np.cos(2 * np.pi * (dow - 5) / 7)
                    + ANNUAL_AMPLITUDE * np.cos(2 * np.pi * (doy - 349) / 365.25))
