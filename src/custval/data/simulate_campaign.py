"""Randomised marketing campaigns with a known, heterogeneous effect per customer, on the churn simulator's
customers and transactions (`custval.data.simulate_churn`), for uplift models and targeting.

Two campaigns, each sent once to a population defined from the log before its send day c (a midnight):
  * ``crosssell`` (sent first, default 2024-06-03) to the *active* customers (a purchase in [c - active_days, c)),
    arms ``control``, ``email`` and ``discount`` (design shares 0.34 / 0.33 / 0.33);
  * ``winback`` (default 2024-07-01) to the *lapsed* customers (a purchase before c, none in
    [c - lapsed_days, c)), arms ``control`` and ``offer`` (0.5 / 0.5).
Every customer gets at most one contact: a crosssell customer is never in the winback (with the defaults none
is lapsed by then anyway), so the winback population is read from rows the crosssell left untouched. Arms are drawn independently per customer with the design shares (complete randomisation).
Each contact is sent at c + 9:00 + a uniform time within three hours (`sent_at`).

Response model. The effect depends only on what the log and the customer table show at c (so a model of the
point-in-time features can learn it): recency r = c - last purchase day, frequency f = purchase days before c,
the mean spend per purchase day m, and the attributes (age, income, region, channel, plan; a missing age or
income counts as its mean). With z-scores of log r and log(1 + f) (fixed centres per campaign, see
`_standardised`), a conversion (>= 1 purchase in [sent_at, sent_at + response_days)) has probability
  P(convert | arm a) = sigmoid(b(x) + effect_scale x tau_a(x)),   tau_control = 0,
with b and tau_a in `_winback_logits` / `_crosssell_logits`. Some customers have tau_a < 0 ("sleeping dogs":
the contact makes them less likely to buy): in winback the store-channel customers, in crosssell the premium
plan and most store-channel customers for the e-mail, and high incomes for the discount (about 29% of the
winback and 45% of the crosssell customers are sleeping dogs for some arm, with the defaults). A converter makes 1 + Poisson(mu_a) purchases at uniform
times in the window, each of amount Gamma(shape 2, mean m x spend_a) (the discount lowers the amount, so it
can lose spend while it wins conversions), categories from the customer's taste. So
  E[spend in the window | arm a] = P(convert | a) x (1 + mu_a) x m x spend_a   (amounts rounded to cents).
The natural purchases of a contacted customer inside its window are replaced by these; those before sent_at are
untouched (the features never change). A winback converter then starts a *second life*: after the window it
buys at Poisson rate 0.8 x f / max(tenure, 30 days) for an exponential lifetime of mean `second_life_days`
(until observation_end), amounts of mean m, instead of its natural later purchases; truth gives its expected
value to observation_end. Non-converters keep their natural purchases after the window.

Truth (`CampaignSimulation.truth`, one row per contacted customer): the observables, the arm received, and per
arm of the campaign ``p_<arm>`` (conversion probability), ``spend_<arm>`` (expected window spend), per treatment
arm ``uplift_<arm>`` = p_arm - p_control and ``spend_uplift_<arm>``; arms of the other campaign are NaN.
Streams spawned from (seed, _CAMPAIGN_KEY): the base population is `simulate_churn(n_customers, seed=seed)`
exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from custval.data.simulate_checks import check_count, check_nonnegative, check_positive, check_seed
from custval.data.simulate_churn import (
    AGE_MEAN,
    AGE_SD,
    INCOME_MEDIAN,
    INCOME_SIGMA,
    NS_PER_DAY,
    NS_PER_SECOND,
    ChurnSimulation,
    simulate_churn,
)
from custval.errors import ConfigError

__all__ = ["CONTROL", "CROSSSELL", "TABLE_COLUMNS", "WINBACK", "CampaignDesign", "CampaignSimulation", "CampaignTable",
           "campaign_table", "simulate_campaign_table", "simulate_campaigns"]

CONTROL = "control"
WINBACK, CROSSSELL = "winback", "crosssell"
SEND_HOUR, SEND_SPREAD_SECONDS = 9, 3 * 3600
AMOUNT_SHAPE = 2.0
SECOND_LIFE_RATE = 0.8  # second-life purchase rate as a share of the first life's
VISIT_RATE = {CONTROL: 0.15, "treated": 0.35}  # P(visit | no conversion), by arm kind
_CAMPAIGN_KEY = 0xCA4B41
_TABLE_KEY = 0x7AB1E5
TABLE_COLUMNS = ("CustomerRef", "CampaignCode", "SendDate", "Group", "SignupDate", "LastOrderDate", "Orders",
                 "TotalSpend", "AvgOrderValue", "DaysSinceLastOrder", "Age", "Income", "Region", "Channel", "Plan",
                 "Visited", "Converted", "Revenue")
_STREAMS = ("arm", "send", "convert", "count", "time", "amount", "category", "life", "life_count", "life_time",
            "life_amount", "life_category")


@dataclass(frozen=True)
class CampaignDesign:
    """One randomised campaign: its arms in column order (control first) with their design shares, the
    send day, the population rule and the response parameters per arm (extra purchases mu, spend factor)."""

    campaign_id: str
    arms: tuple[str, ...]
    shares: tuple[float, ...]
    send_day: pd.Timestamp
    population: str
    extra_purchases: tuple[float, ...]
    spend_factor: tuple[float, ...]
    control: str = CONTROL

    @property
    def treatments(self) -> tuple[str, ...]:
        """The treatment arms (every arm but the control), in order."""
        return tuple(a for a in self.arms if a != self.control)

    @property
    def design(self) -> dict[str, float]:
        """Design share per arm, the split the sample-ratio test compares against."""
        return dict(zip(self.arms, self.shares, strict=True))


@dataclass(frozen=True)
class CampaignSimulation:
    """Campaigns on a simulated customer base, with their truth.

    transactions: the churn simulator's columns (customer_id, timestamp, amount, order_id, category), with the
        campaign responses in place of the contacted customers' natural purchases in their windows (and the
        winback converters' second lives); order_id renumbered 1, 2, ... in row order (customer, time).
    customers: the churn simulator's customer table. campaigns: the campaign log (customer_id, campaign_id,
        treatment = arm name, sent_at), one row per contacted customer, sorted by campaign then customer.
    truth: one row per campaign-log row (same order): customer_id, campaign_id, treatment, sent_at,
        recency_days, frequency, monetary_mean, tenure_days, then p_/spend_ per arm and uplift_/spend_uplift_
        per treatment arm (NaN for the other campaign's arms), converted (the realised outcome), spend
        (realised window spend), sleeping_dog (some treatment arm has uplift < 0) and, for winback,
        second_life_value (expected spend of the second life up to observation_end if the customer converts).
    designs: campaign_id -> CampaignDesign. base: the churn simulation the campaigns run on (its transactions
        without the campaigns).
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    campaigns: pd.DataFrame
    truth: pd.DataFrame
    designs: dict[str, CampaignDesign]
    response_days: int
    observation_end: pd.Timestamp
    base: ChurnSimulation

    def campaign_truth(self, campaign_id: str) -> pd.DataFrame:
        """The truth of one campaign, with only its arms' columns, indexed by customer_id."""
        design = self._design(campaign_id)
        rows = self.truth[self.truth["campaign_id"] == campaign_id]
        keep = [c for c in rows.columns if not _is_arm_column(c) or _arm_of(c) in design.arms]
        if campaign_id != WINBACK:
            keep.remove("second_life_value")
        return rows[keep].set_index("customer_id")

    def _design(self, campaign_id: str) -> CampaignDesign:
        if campaign_id not in self.designs:
            raise ConfigError(f"campaign_id must be one of {sorted(self.designs)}, got {campaign_id!r}")
        return self.designs[campaign_id]


_ARM_PREFIXES = ("spend_uplift_", "uplift_", "spend_", "p_")


def _is_arm_column(name: str) -> bool:
    return name.startswith(_ARM_PREFIXES)


def _arm_of(name: str) -> str:
    for prefix in _ARM_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _standardised(customers: pd.DataFrame, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Attribute terms of the response model for customer positions `rows` (missing age/income -> 0)."""
    age = customers["age"].to_numpy(dtype=float)[rows]
    income = customers["income"].to_numpy(dtype=float)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        z_income = (np.log(income) - math.log(INCOME_MEDIAN)) / INCOME_SIGMA
    channel = customers["channel"].astype("string").fillna("<NA>").to_numpy(dtype=object)[rows]
    plan = customers["plan"].astype("string").to_numpy(dtype=object)[rows]
    return {"age": np.nan_to_num((age - AGE_MEAN) / AGE_SD, nan=0.0), "income": np.nan_to_num(z_income, nan=0.0),
            "store": (channel == "store").astype(float), "app": (channel == "app").astype(float),
            "web": (channel == "web").astype(float), "basic": (plan == "basic").astype(float),
            "premium": (plan == "premium").astype(float)}


def _winback_logits(recency, frequency, attrs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Control logit and the offer's logit shift for lapsed customers (recency 120..550 days)."""
    zr = (np.log(recency) - math.log(200.0)) / 0.4
    zf = (np.log1p(frequency) - 1.4) / 0.6
    base = -2.1 - 0.6 * zr + 0.5 * zf
    offer = 1.9 + 0.8 * zf - 0.4 * zr + 0.5 * attrs["premium"] - 2.4 * attrs["store"]
    return base, {"offer": offer}


def _crosssell_logits(recency, frequency, attrs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Control logit and the e-mail's and discount's logit shifts for active customers (recency 1..90 days)."""
    zr = (np.log(recency) - math.log(20.0)) / 1.0
    zf = (np.log1p(frequency) - 2.0) / 0.7
    base = -0.2 - 0.7 * zr + 0.4 * zf
    email = -0.1 + 2.7 * attrs["app"] + 1.4 * attrs["web"] - 0.2 * attrs["age"] - 2.8 * attrs["premium"]
    discount = 0.9 - 0.9 * attrs["income"] + 0.5 * attrs["basic"] - 0.4 * zf
    return base, {"email": email, "discount": discount}


def simulate_campaigns(
    n_customers: int = 20_000,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2025-01-01",
    crosssell_day: str | pd.Timestamp = "2024-06-03",
    winback_day: str | pd.Timestamp = "2024-07-01",
    response_days: int = 30,
    active_days: int = 90,
    lapsed_days: int = 120,
    effect_scale: float = 1.0,
    second_life_days: float = 150.0,
) -> CampaignSimulation:
    """Simulate the crosssell and winback campaigns of the module docstring on `simulate_churn(n_customers,
    seed=seed, start=start, end=end)`.

    effect_scale multiplies every arm's logit shift (0: no arm has any effect, an A/A test). The send days are
    midnights with the crosssell first, lapsed_days > active_days, and both windows must end by `end`.
    """
    n_customers = check_count("n_customers", n_customers)
    seed = check_seed(seed)
    response_days = check_count("response_days", response_days)
    active_days = check_count("active_days", active_days)
    lapsed_days = check_count("lapsed_days", lapsed_days)
    effect_scale = check_nonnegative("effect_scale", effect_scale)
    second_life_days = check_positive("second_life_days", second_life_days)
    base = simulate_churn(n_customers, seed=seed, start=start, end=end)
    days = {}
    for name, value in (("crosssell_day", crosssell_day), ("winback_day", winback_day)):
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a date, got {value!r}") from None
        if pd.isna(stamp) or stamp.tzinfo is not None or stamp != stamp.normalize():
            raise ConfigError(f"{name} must be a timezone-naive midnight (a date), got {value!r}")
        if not base.start < stamp or stamp + pd.Timedelta(days=response_days + 1) > base.observation_end:
            raise ConfigError(f"{name} must lie after start and leave response_days={response_days} days (and the "
                              f"send day) before end ({base.observation_end.date()}), got {stamp.date()}")
        days[name] = stamp.as_unit("ns")
    if days["winback_day"] <= days["crosssell_day"]:
        raise ConfigError(f"winback_day must be after crosssell_day, got {days['winback_day'].date()} <= "
                          f"{days['crosssell_day'].date()}")
    if lapsed_days <= active_days:
        raise ConfigError(f"lapsed_days must be larger than active_days ({active_days}), got {lapsed_days}")

    designs = {
        CROSSSELL: CampaignDesign(CROSSSELL, (CONTROL, "email", "discount"), (0.34, 0.33, 0.33),
                                  days["crosssell_day"], f"a purchase in the {active_days} days before",
                                  extra_purchases=(0.5, 0.5, 0.8), spend_factor=(1.0, 1.0, 0.75)),
        WINBACK: CampaignDesign(WINBACK, (CONTROL, "offer"), (0.5, 0.5), days["winback_day"],
                                f"no purchase in the {lapsed_days} days before", extra_purchases=(0.3, 0.3),
                                spend_factor=(1.0, 0.9)),
    }
    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in
                               np.random.SeedSequence([seed, _CAMPAIGN_KEY]).spawn(len(_STREAMS))), strict=True))
    tx = base.transactions
    ids = base.customers["customer_id"].to_numpy(dtype=np.int64)
    pos = pd.Index(ids).get_indexer(tx["customer_id"].to_numpy())
    ts = tx["timestamp"].to_numpy().view(np.int64)
    start_ns = int(np.datetime64(base.start, "ns").astype(np.int64))
    end_ns = int(np.datetime64(base.observation_end, "ns").astype(np.int64))
    day = (ts - start_ns) // NS_PER_DAY
    amount = tx["amount"].to_numpy(dtype=float)
    theta_cum = np.cumsum(base.latent[[f"affinity_{k}" for k in base.categories]].to_numpy(), axis=1)
    drop = np.zeros(len(tx), dtype=bool)
    new_rows: list[dict[str, np.ndarray]] = []
    truths, logs = [], []
    window_ns = response_days * NS_PER_DAY
    contacted = np.zeros(len(ids), dtype=bool)
    for campaign_id in (CROSSSELL, WINBACK):
        design = designs[campaign_id]
        c = int((design.send_day - base.start) // pd.Timedelta(days=1))
        hist = _history(pos, day, amount, c, len(ids))
        if campaign_id == CROSSSELL:
            rows = np.flatnonzero(hist["last"] >= c - active_days)
        else:
            rows = np.flatnonzero((hist["last"] >= 0) & (hist["last"] < c - lapsed_days) & ~contacted)
        if rows.size == 0:
            raise ConfigError(f"the {campaign_id} campaign has no customers ({design.population} "
                              f"{design.send_day.date()}); simulate more customers")
        contacted[rows] = True
        recency = (c - hist["last"][rows]).astype(float)
        frequency = hist["days"][rows].astype(float)
        monetary = hist["spend"][rows] / frequency
        tenure = (c - hist["first"][rows]).astype(float)
        attrs = _standardised(base.customers, rows)
        logits = (_crosssell_logits if campaign_id == CROSSSELL else _winback_logits)(recency, frequency, attrs)
        b, shifts = logits
        p = {CONTROL: _sigmoid(b), **{a: _sigmoid(b + effect_scale * shifts[a]) for a in design.treatments}}
        m = rows.size
        arm = rngs["arm"].choice(len(design.arms), size=m, p=np.asarray(design.shares) / sum(design.shares))
        day_ns = int(np.datetime64(design.send_day, "ns").astype(np.int64))
        sent = day_ns + SEND_HOUR * 3600 * NS_PER_SECOND \
            + rngs["send"].integers(0, SEND_SPREAD_SECONDS, m) * NS_PER_SECOND
        p_arm = np.column_stack([p[a] for a in design.arms])[np.arange(m), arm]
        converted = rngs["convert"].random(m) < p_arm
        mu = np.asarray(design.extra_purchases)[arm]
        factor = np.asarray(design.spend_factor)[arm]
        # the contacted customers' natural purchases in their windows give way to the response
        tx_sent = np.full(len(ids), -1, dtype=np.int64)
        tx_sent[rows] = sent
        in_window = (tx_sent[pos] >= 0) & (ts >= tx_sent[pos]) & (ts < tx_sent[pos] + window_ns)
        drop |= in_window
        buyers = np.flatnonzero(converted)
        n_buys = 1 + rngs["count"].poisson(mu[buyers])
        owner = np.repeat(buyers, n_buys)
        times = sent[owner] + rngs["time"].integers(0, window_ns // NS_PER_SECOND, owner.size) * NS_PER_SECOND
        means = monetary[owner] * factor[owner]
        amounts = np.maximum(np.round(rngs["amount"].standard_gamma(AMOUNT_SHAPE, owner.size) * means
                                      / AMOUNT_SHAPE, 2), 0.01)
        new_rows.append({"pos": rows[owner], "ts": times, "amount": amounts,
                         "category": _categories(rngs["category"], theta_cum[rows[owner]])})
        truth = {"customer_id": ids[rows], "campaign_id": campaign_id,
                 "treatment": np.asarray(design.arms, dtype=object)[arm], "sent_at": sent.view("datetime64[ns]"),
                 "recency_days": recency, "frequency": frequency, "monetary_mean": monetary,
                 "tenure_days": tenure}
        mus = dict(zip(design.arms, design.extra_purchases, strict=True))
        factors = dict(zip(design.arms, design.spend_factor, strict=True))
        spend = {a: p[a] * (1 + mus[a]) * monetary * factors[a] for a in design.arms}
        for a in design.arms:
            truth[f"p_{a}"] = p[a]
            truth[f"spend_{a}"] = spend[a]
        for a in design.treatments:
            truth[f"uplift_{a}"] = p[a] - p[CONTROL]
            truth[f"spend_uplift_{a}"] = spend[a] - spend[CONTROL]
        truth["converted"] = converted.astype(np.int8)
        truth["spend"] = np.bincount(owner, weights=amounts, minlength=m)
        truth["sleeping_dog"] = np.column_stack([p[a] - p[CONTROL] for a in design.treatments]).min(axis=1) < 0
        if campaign_id == WINBACK:
            rate = SECOND_LIFE_RATE * frequency / np.maximum(tenure, 30.0)
            life_start = sent + window_ns
            remaining = (end_ns - life_start) / NS_PER_DAY
            truth["second_life_value"] = rate * monetary * second_life_days \
                * (1 - np.exp(-remaining / second_life_days))
            later = (tx_sent[pos] >= 0) & (ts >= tx_sent[pos] + window_ns)
            converter = np.zeros(len(ids), dtype=bool)
            converter[rows[buyers]] = True
            drop |= later & converter[pos]
            new_rows.append(_second_life(rngs, buyers, rows, rate, life_start, end_ns, second_life_days,
                                         monetary, theta_cum))
        truths.append(pd.DataFrame(truth))
        logs.append(pd.DataFrame({"customer_id": ids[rows], "campaign_id": campaign_id,
                                  "treatment": pd.array(truth["treatment"], dtype="string"),
                                  "sent_at": truth["sent_at"]}))
    transactions = _rebuild(base, pos, ts, amount, drop, new_rows, ids)
    truth_frame = pd.concat(truths, ignore_index=True)
    arm_cols = [c for c in truth_frame.columns if _is_arm_column(c)]
    lead = [c for c in truth_frame.columns if c not in arm_cols and c not in ("converted", "spend",
                                                                              "sleeping_dog", "second_life_value")]
    truth_frame = truth_frame[[*lead, *arm_cols, "converted", "spend", "sleeping_dog", "second_life_value"]]
    truth_frame["campaign_id"] = truth_frame["campaign_id"].astype("string")
    truth_frame["treatment"] = truth_frame["treatment"].astype("string")
    log = pd.concat(logs, ignore_index=True)
    log["campaign_id"] = log["campaign_id"].astype("string")
    return CampaignSimulation(transactions=transactions, customers=base.customers, campaigns=log,
                              truth=truth_frame, designs=designs, response_days=response_days,
                              observation_end=base.observation_end, base=base)


def _history(pos, day, amount, c, n) -> dict[str, np.ndarray]:
    """Per customer position, from the rows on days before c: first and last purchase day (-1 without one),
    purchase days and total spend (the churn simulator has no returns: every row is a sale)."""
    before = day < c
    p, d, a = pos[before], day[before], amount[before]
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, p, d)
    first_days = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_days, p, d)
    has = last >= 0
    first[has] = first_days[has]
    key = p.astype(np.int64) * (int(d.max(initial=0)) + 1) + d
    distinct = np.unique(key)
    n_days = np.bincount(distinct // (int(d.max(initial=0)) + 1), minlength=n)
    return {"first": first, "last": last, "days": n_days, "spend": np.bincount(p, weights=a, minlength=n)}


def _categories(rng, theta_cum: np.ndarray) -> np.ndarray:
    """A category code per row from the rows' cumulative taste vectors (inverse CDF)."""
    k = theta_cum.shape[1]
    if theta_cum.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.minimum((rng.random(theta_cum.shape[0])[:, None] >= theta_cum).sum(axis=1), k - 1)


def _second_life(rngs, buyers, rows, rate, life_start, end_ns, mean_days, monetary, theta_cum):
    """Purchases of the winback converters after their windows: Poisson(rate) over an exponential lifetime of
    mean `mean_days`, cut at the observation end."""
    life_days = rngs["life"].exponential(mean_days, buyers.size)
    span_days = np.clip(np.minimum(life_days, (end_ns - life_start[buyers]) / NS_PER_DAY), 0.0, None)
    counts = rngs["life_count"].poisson(rate[buyers] * span_days)
    owner = np.repeat(buyers, counts)
    offset = rngs["life_time"].random(owner.size) * np.repeat(span_days, counts) * 86_400
    times = np.minimum(life_start[owner] + np.floor(offset).astype(np.int64) * NS_PER_SECOND, end_ns - 1)
    amounts = np.maximum(np.round(rngs["life_amount"].standard_gamma(AMOUNT_SHAPE, owner.size) * monetary[owner]
                                  / AMOUNT_SHAPE, 2), 0.01)
    return {"pos": rows[owner], "ts": times, "amount": amounts,
            "category": _categories(rngs["life_category"], theta_cum[rows[owner]])}


def _rebuild(base: ChurnSimulation, pos, ts, amount, drop, new_rows, ids) -> pd.DataFrame:
    """The log with the dropped rows removed and the new ones added, sorted by customer then time, order ids
    renumbered in row order."""
    names = np.asarray(base.categories, dtype=object)
    old_cat = pd.Categorical(base.transactions["category"].astype(object), categories=list(base.categories)).codes
    keep = ~drop
    all_pos = np.concatenate([pos[keep], *(r["pos"] for r in new_rows)])
    all_ts = np.concatenate([ts[keep], *(r["ts"] for r in new_rows)])
    all_amount = np.concatenate([amount[keep], *(r["amount"] for r in new_rows)])
    all_cat = np.concatenate([old_cat[keep], *(r["category"] for r in new_rows)])
    order = np.lexsort((all_ts, all_pos))
    return pd.DataFrame({
        "customer_id": ids[all_pos[order]],
        "timestamp": all_ts[order].view("datetime64[ns]"),
        "amount": all_amount[order],
        "order_id": np.arange(1, order.size + 1, dtype=np.int64),
        "category": pd.array(names[all_cat[order]], dtype="string"),
    })


# ------------------------------------------------------------------------------------------ campaign table
@dataclass(frozen=True)
class CampaignTable:
    """One campaign as a campaign-table export, with its truth and the column map that reads it.

    table: one row per contacted customer, columns `TABLE_COLUMNS`: CustomerRef ("CU-000123" text ids),
        CampaignCode, SendDate / SignupDate / LastOrderDate (ISO date text), Group (the arm name), Orders
        (purchase days before the send day, int64), TotalSpend / AvgOrderValue (float64), DaysSinceLastOrder
        (int64), Age (float64, NaN), Income (text, " " when unknown), Region, Channel ("" when unknown), Plan,
        Visited ("Yes"/"No"), Converted (int64 0/1: the window's conversion), Revenue (the window's spend).
    truth: index CustomerRef: the campaign's truth columns (`CampaignSimulation.campaign_truth`), plus
        p_visit_<arm> = p_<arm> + (1 - p_<arm>) x the visit rate of a non-converter.
    Keyword arguments of `custval.features.campaigns.campaign_table_dataset`: `reader` (id_column, treatment,
    control, outcome, spend, outcomes, sent_at).
    """

    table: pd.DataFrame
    truth: pd.DataFrame
    campaign_id: str
    arms: tuple[str, ...]
    control: str = CONTROL

    @property
    def reader(self) -> dict:
        return {"id_column": "CustomerRef", "treatment": "Group", "control": self.control, "outcome": "Converted",
                "spend": "Revenue", "outcomes": ("Visited",), "sent_at": "SendDate"}


def campaign_table(simulation: CampaignSimulation, campaign_id: str = CROSSSELL, *, seed: int = 0) -> CampaignTable:
    """The campaign `campaign_id` of `simulation` written as a campaign-table export (see `CampaignTable`); the
    outcomes are those of the simulated log, the visits drawn from `seed`."""
    design = simulation._design(campaign_id)
    seed = check_seed(seed)
    truth = simulation.campaign_truth(campaign_id)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _TABLE_KEY]))
    customers = simulation.customers.set_index("customer_id").loc[truth.index]
    treated = (truth["treatment"] != design.control).to_numpy()
    rate = np.where(treated, VISIT_RATE["treated"], VISIT_RATE[CONTROL])
    converted = truth["converted"].to_numpy().astype(bool)
    visited = converted | (rng.random(len(truth)) < rate)
    for arm in design.arms:
        visit = VISIT_RATE[CONTROL] if arm == design.control else VISIT_RATE["treated"]
        truth[f"p_visit_{arm}"] = truth[f"p_{arm}"] + (1 - truth[f"p_{arm}"]) * visit
    send_day = design.send_day
    last = send_day - pd.to_timedelta(truth["recency_days"].to_numpy(), unit="D")
    income = customers["income"].to_numpy(dtype=float)
    income_text = np.array([" " if np.isnan(v) else f"{v:.0f}" for v in income], dtype=object)
    yes_no = np.array(["No", "Yes"], dtype=object)
    refs = np.array([f"CU-{i:06d}" for i in truth.index.to_numpy()], dtype=object)
    table = pd.DataFrame({
        "CustomerRef": pd.array(refs, dtype="string"),
        "CampaignCode": pd.array(np.full(len(truth), f"{campaign_id.upper()}-{send_day:%Y%m}"), dtype="string"),
        "SendDate": pd.array(np.full(len(truth), f"{send_day:%Y-%m-%d}"), dtype="string"),
        "Group": pd.array(truth["treatment"].to_numpy(dtype=object), dtype="string"),
        "SignupDate": pd.array(customers["signup_date"].dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
                               dtype="string"),
        "LastOrderDate": pd.array(pd.DatetimeIndex(last).strftime("%Y-%m-%d").to_numpy(dtype=object),
                                  dtype="string"),
        "Orders": truth["frequency"].to_numpy().astype(np.int64),
        "TotalSpend": np.round(truth["frequency"].to_numpy() * truth["monetary_mean"].to_numpy(), 2),
        "AvgOrderValue": np.round(truth["monetary_mean"].to_numpy(), 2),
        "DaysSinceLastOrder": truth["recency_days"].to_numpy().astype(np.int64),
        "Age": customers["age"].to_numpy(dtype=float),
        "Income": pd.array(income_text, dtype="string"),
        "Region": pd.array(customers["region"].to_numpy(dtype=object), dtype="string"),
        "Channel": pd.array(customers["channel"].fillna("").to_numpy(dtype=object), dtype="string"),
        "Plan": pd.array(customers["plan"].to_numpy(dtype=object), dtype="string"),
        "Visited": pd.array(yes_no[visited.astype(int)], dtype="string"),
        "Converted": converted.astype(np.int64),
        "Revenue": np.round(truth["spend"].to_numpy(), 2),
    })
    truth.index = pd.Index(refs, name="CustomerRef")
    return CampaignTable(table=table, truth=truth, campaign_id=campaign_id, arms=design.treatments,
                         control=design.control)


def simulate_campaign_table(n_customers: int = 20_000, *, seed: int = 0, campaign_id: str = CROSSSELL,
                            **kwargs) -> CampaignTable:
    """`campaign_table(simulate_campaigns(n_customers, seed=seed, **kwargs), campaign_id, seed=seed)`."""
    return campaign_table(simulate_campaigns(n_customers, seed=seed, **kwargs), campaign_id, seed=seed)
