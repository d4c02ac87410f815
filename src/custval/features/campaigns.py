"""The per-customer uplift training set of one randomised campaign: features, arm and outcomes.

From a transaction log and a campaign log (`campaign_dataset`): for each contacted customer, the point-in-time
features of `custval.features.snapshots.build_snapshot` at the midnight of its send day (so only rows of earlier
days: a purchase on the send day, even before sent_at, is neither a feature nor an outcome), its arm, and the
outcomes of the response window [sent_at, sent_at + response_days): ``y`` = 1 when the window holds a sale
(a row with amount >= 0), ``spend`` = the net amount of the window's rows (returns included); or ``y`` from the
campaign log's own outcome column (outcome="column"). Every customer's
window must end by the observation end. The category list defaults to the categories sold before the first
send day, so nothing after it shapes the features.

From a campaign table (`campaign_table_dataset`): one row per customer with features, an arm column, outcome
columns and a spend column, named by a column map; the outcome and spend columns (and `outcomes`, e.g. a visit)
are never features.

Both check the campaign's guard rails (`custval.data.campaigns`): arms, the control, a binary outcome, enough
responders per arm, and the sample-ratio test against a `design` when given.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from custval.data.campaigns import (
    MIN_RESPONDERS,
    check_arms,
    check_binary_outcome,
    check_responders,
    sample_ratio_test,
    treatment_values,
    validate_campaigns,
)
from custval.data.fingerprint import frame_fingerprint
from custval.data.io import read_table
from custval.data.loaders import load_customer_table, load_log
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError
from custval.features import snapshots as snap
from custval.features.datasets import load_customers
from custval.features.identifiers import drop_columns

__all__ = ["OUTCOME_SOURCES", "RESPONSE_DAYS", "CampaignInput", "UpliftData", "campaign_dataset", "campaign_population",
           "campaign_table_dataset", "load_campaign"]

RESPONSE_DAYS = 30
OUTCOME_SOURCES = ("window", "column")
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class UpliftData:
    """An uplift training set, one row per contacted customer (RangeIndex, the same rows in every field).

    X: the features. y: the binary outcome (int8; from a table with `binary=False`, float64). treatment: the
    arm per row (names as string, or int64 for 0/1). spend: the window spend (float64), None for a table
    without a spend column. customer_id: the ids. arms: the treatment arms in column order; control: the
    control arm. campaign_id: the campaign (None for a table without one). sent_at: per row (None for a
    table). outcomes: every outcome column (y, spend and the table's `outcomes`), never features.
    """

    X: pd.DataFrame
    y: pd.Series
    treatment: pd.Series
    spend: pd.Series | None
    customer_id: pd.Series
    arms: tuple
    control: object
    campaign_id: str | None = None
    sent_at: pd.Series | None = None
    outcomes: pd.DataFrame | None = None

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.X.columns]

    def arm_rows(self, arm) -> tuple[np.ndarray, np.ndarray]:
        """(rows of `arm` or the control, 1 for `arm` / 0 for the control on those rows): one arm vs control."""
        if arm not in self.arms:
            raise ConfigError(f"arm must be one of the treatment arms {list(self.arms)}, got {arm!r}")
        t = self.treatment.to_numpy(dtype=object)
        rows = (t == arm) | (t == self.control)
        return rows, (t[rows] == arm).astype(np.int8)


def campaign_dataset(transactions: pd.DataFrame, campaigns: pd.DataFrame, *, campaign_id=None, control=None,
                     arms: Sequence | None = None, response_days: int = RESPONSE_DAYS,
                     customers: pd.DataFrame | None = None, windows=snap.WINDOWS, categories=None,
                     extra_features: Callable | None = None, history_start=None, observation_end=None,
                     design: Mapping | None = None, min_responders: int = MIN_RESPONDERS,
                     columns: Mapping[str, str] | None = None, outcome: str = "window") -> UpliftData:
    """The uplift set of `campaign_id` (default: the log's only campaign) from a validated transaction log
    and a campaign log (`custval.data.campaigns.validate_campaigns` is applied, with `columns`).

    Features: `build_snapshot` at each send day's midnight with every customer who bought before it
    (active_days=None), `customers`, `windows`, `categories`, `extra_features`; `history_start` defaults to the
    log's first day, `observation_end` (exclusive) to the day after its last row. A contacted customer with no
    purchase before the send day keeps missing features (CustvalWarning). Guard rails: see the module docstring.
    `outcome`: "window" (y and spend from the transactions of the response window) or "column" (y is the
    campaign log's binary `outcome` column, as recorded by the campaign tool; no spend, no window needed).
    """
    if outcome not in OUTCOME_SOURCES:
        raise ConfigError(f"outcome must be one of {list(OUTCOME_SOURCES)}, got {outcome!r}")
    if isinstance(response_days, bool) or not isinstance(response_days, (int, np.integer)) or response_days < 1:
        raise ConfigError(f"response_days must be an integer >= 1, got {response_days!r}")
    log = validate_campaigns(campaigns, columns=columns)
    log = _one_campaign(log, campaign_id)
    found = check_arms(log["treatment"], control=control, arms=arms, column="treatment")
    if design is not None:
        sample_ratio_test(log["treatment"], design)
    start = snap.history_start(transactions) if history_start is None else pd.Timestamp(history_start)
    ts = _naive(transactions["timestamp"])
    end = ts.max().normalize() + _DAY if observation_end is None else pd.Timestamp(observation_end)
    sent = log["sent_at"]
    if outcome == "column" and "outcome" not in log.columns:
        raise SchemaError("campaigns", "outcome", "the campaign log has no outcome column (outcome='column'); "
                          "map one with columns={'outcome': ...} or take it from the transactions (outcome='window')")
    late = (sent + response_days * _DAY > end).to_numpy() & (outcome == "window")
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise DataError("campaigns", "sent_at", f"the response window of response_days={response_days} days runs "
                        f"past the observation end {end.date()}: its outcome is not observed yet",
                        str(sent.iloc[i]))
    ids = _matching_ids(transactions, log)
    days = sent.dt.normalize()
    if categories is None and "category" in transactions.columns:
        early = transactions.loc[(ts < days.min()).to_numpy(), "category"].dropna().astype(str)
        categories = sorted(early.unique().tolist())
    parts = []
    for day in sorted(days.unique()):
        rows = (days == day).to_numpy()
        frame = snap.build_snapshot(transactions, pd.Timestamp(day), customers=customers, labels=False,
                                    windows=windows, active_days=None, categories=categories,
                                    extra_features=extra_features, history_start=start,
                                    observation_end=end)
        features = frame.set_index("customer_id").drop(columns=["cutoff"])
        parts.append(features.reindex(pd.Index(ids[rows], name="customer_id")).set_axis(np.flatnonzero(rows)))
    X = pd.concat(parts).sort_index()
    absent = X.isna().all(axis=1).to_numpy() if X.shape[1] else np.zeros(len(X), dtype=bool)
    if absent.any():
        warnings.warn(CustvalWarning(
            f"campaigns: {int(absent.sum())} contacted customers have no purchase before their send day (e.g. "
            f"{ids[np.flatnonzero(absent)[0]]!r}), so all their features are missing"), stacklevel=2)
    if outcome == "window":
        y, spend = _window_outcomes(transactions, ts, ids, sent.to_numpy(), response_days)
        outcomes = pd.DataFrame({"conversion": y, "spend": spend})
    else:
        outcomes = pd.DataFrame({"conversion": check_binary_outcome(log["outcome"], column="outcome").to_numpy()})
    check_responders(outcomes["conversion"], log["treatment"], found, min_responders=min_responders,
                     column="outcome")
    return UpliftData(X=X.reset_index(drop=True), y=outcomes["conversion"], treatment=log["treatment"],
                      spend=outcomes.get("spend"), customer_id=log["customer_id"], arms=found.treatments,
                      control=found.control, campaign_id=str(log["campaign_id"].iloc[0]), sent_at=sent,
                      outcomes=outcomes)


def campaign_table_dataset(source, *, treatment: str, outcome: str, control=None, spend: str | None = None,
                           id_column: str = "customer_id", columns: Mapping[str, str] | None = None,
                           outcomes: Sequence[str] = (), drop: Sequence[str] = (), keep: Sequence[str] = (),
                           sent_at: str | None = None, arms: Sequence | None = None,
                           design: Mapping | None = None, binary: bool = True,
                           min_responders: int = MIN_RESPONDERS) -> UpliftData:
    """The uplift set of a campaign table (a CSV/Parquet path or a DataFrame; `load_customer_table` rules,
    `columns` renames {name: source column}): features are every column but the id, `treatment`, `outcome`,
    `spend`, `outcomes` and `drop` (identifier-like columns dropped as for customer tables, unless in `keep`).
    `binary`: the outcome must be 0/1 (yes/no, ...) for a binary learner; else a number per row. `sent_at`:
    the send date column (ISO dates); it is not a feature, and every date column becomes ``days_since_<col>``
    = whole days from the date to the row's send date, as in the snapshots (models take no dates)."""
    names = {"treatment": treatment, "outcome": outcome, **({"spend": spend} if spend is not None else {}),
             **({"sent_at": sent_at} if sent_at is not None else {})}
    frame, _ = load_customer_table(source, id_column=id_column, columns=columns, table="campaigns")
    named = [*names.values(), *outcomes]
    for key, column in [*names.items(), *(("outcomes", c) for c in outcomes)]:
        if column not in frame.columns:
            raise SchemaError("campaigns", column, f"the {key} column is missing; available columns: "
                              f"{[id_column, *map(str, frame.columns)]}")
    if len(set(named)) != len(named):
        raise ConfigError(f"treatment, outcome, spend and outcomes must be different columns, got {named}")
    ids = pd.Series(frame.index.to_numpy(), name=id_column)
    frame = frame.reset_index(drop=True)
    t = treatment_values(frame[treatment], column=treatment)
    found = check_arms(t, control=control, arms=arms, column=treatment)
    if design is not None:
        sample_ratio_test(t, design, column=treatment)
    if binary:
        y = check_binary_outcome(frame[outcome], column=outcome)
    else:
        y = _numbers(frame[outcome], outcome)
    spend_values = _numbers(frame[spend], spend) if spend is not None else None
    check_responders(y, t, found, min_responders=min_responders, column=outcome)
    features = drop_columns(frame.drop(columns=named), drop=drop, keep=keep, table="campaigns")
    sent = None
    if sent_at is not None:
        sent = _dates(frame[sent_at], sent_at)
        features = _days_since(features, sent)
    if features.shape[1] == 0:
        raise SchemaError("campaigns", "*", f"no feature columns besides the id, arm and outcome columns {named}")
    kept = {outcome: y, **({spend: spend_values} if spend is not None else {}),
            **{c: frame[c] for c in outcomes}}
    return UpliftData(X=features.reset_index(drop=True), y=y.rename(outcome).reset_index(drop=True),
                      treatment=t.reset_index(drop=True), spend=spend_values, customer_id=ids,
                      arms=found.treatments, control=found.control, sent_at=sent, outcomes=pd.DataFrame(kept))


# ----------------------------------------------------------------------------------------------- helpers
def _one_campaign(log: pd.DataFrame, campaign_id) -> pd.DataFrame:
    present = sorted(log["campaign_id"].unique().tolist())
    if campaign_id is None:
        if len(present) > 1:
            raise ConfigError(f"campaign_id must name one campaign of the log: {present}")
        campaign_id = present[0]
    rows = (log["campaign_id"] == str(campaign_id)).to_numpy()
    if not rows.any():
        raise DataError("campaigns", "campaign_id", f"no row of campaign {str(campaign_id)!r}; campaigns present: "
                        f"{present}", str(campaign_id))
    return log[rows].reset_index(drop=True)


def _naive(ts: pd.Series) -> pd.Series:
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_localize(None)
    if not pd.api.types.is_datetime64_dtype(ts.dtype):
        raise SchemaError("transactions", "timestamp", f"must be datetime64 (got {ts.dtype}); run "
                          "custval.data.schemas.validate_transactions")
    return ts


def _matching_ids(transactions: pd.DataFrame, log: pd.DataFrame) -> np.ndarray:
    """The campaign's customer ids, checked to be of the transactions' kind (numbers or text)."""
    ids = log["customer_id"].to_numpy()
    tx_numeric = pd.api.types.is_numeric_dtype(transactions["customer_id"].dtype)
    if tx_numeric != pd.api.types.is_numeric_dtype(log["customer_id"].dtype):
        kinds = {True: "numbers", False: "text"}
        raise DataError("campaigns", "customer_id", f"ids are {kinds[not tx_numeric]} but the transactions' ids are "
                        f"{kinds[tx_numeric]}: they cannot match", repr(ids[0]))
    return ids


def _window_outcomes(transactions, ts: pd.Series, ids: np.ndarray, sent: np.ndarray,
                     response_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(any sale, net spend) per campaign row in [sent_at, sent_at + response_days)."""
    row = pd.Index(ids).get_indexer(transactions["customer_id"].to_numpy())
    mine = np.flatnonzero(row >= 0)
    r = row[mine]
    t = ts.to_numpy()[mine]
    inside = (t >= sent[r]) & (t < sent[r] + np.timedelta64(response_days, "D"))
    amount = transactions["amount"].to_numpy(dtype=float)[mine][inside]
    r = r[inside]
    n = len(ids)
    y = (np.bincount(r, weights=(amount >= 0).astype(float), minlength=n) > 0).astype(np.int8)
    return y, np.bincount(r, weights=amount, minlength=n)


def _numbers(values: pd.Series, column: str) -> pd.Series:
    number = pd.to_numeric(values, errors="coerce")
    bad = (number.isna() | ~np.isfinite(number.to_numpy(dtype=float, na_value=np.nan))).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("campaigns", column, "must be a finite number in every row", f"row {i}: {values.iloc[i]!r}")
    return pd.Series(number.to_numpy(dtype=float), name=column)


def _dates(values: pd.Series, column: str) -> pd.Series:
    if not pd.api.types.is_datetime64_dtype(values.dtype):
        raise DataError("campaigns", column, "the send date column must hold ISO dates (2024-06-03) in every row",
                        repr(values.iloc[0]))
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError("campaigns", column, "missing send date", f"row {int(np.flatnonzero(missing)[0])}")
    return values.reset_index(drop=True).rename("sent_at")


def _days_since(features: pd.DataFrame, sent: pd.Series) -> pd.DataFrame:
    """Date columns as days_since_<col> = whole days from the date to the send date (NaN when missing)."""
    out = {}
    for col in features.columns:
        s = features[col]
        if pd.api.types.is_datetime64_dtype(s.dtype):
            out[f"days_since_{col}"] = ((sent.dt.normalize() - s.dt.normalize()) / _DAY).to_numpy(dtype=float)
        else:
            out[col] = s
    return pd.DataFrame(out, index=features.index)


# ---------------------------------------------------------------------------------- from a configuration
@dataclass
class CampaignInput:
    """A configured campaign, loaded: the uplift set, and for a transaction log what scoring needs (the log, the
    customers, the scoring date = the day after the last transaction, the snapshot options of the features)."""

    data: UpliftData
    kind: str  # "log" or "table"
    fingerprint: str
    transactions: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    as_of: pd.Timestamp | None = None
    snapshot_options: dict | None = None
    truth: pd.DataFrame | None = None  # simulated: the campaign's truth per row of `data`
    design: dict | None = None


def load_campaign(config) -> CampaignInput:
    """The campaign of an UpliftConfig (`data`, `simulate`, `campaign`): the simulated campaigns, a transaction
    log with its campaign log, or a campaign table."""
    data, campaign = config.data, config.campaign
    design = dict(campaign.design) if campaign.design is not None else None
    if data.table is not None:
        frame, _ = load_customer_table(data.table, id_column=data.id_column, columns=data.customer_columns or None,
                                       table="campaigns")
        uplift = campaign_table_dataset(
            frame.reset_index(), treatment=data.treatment, outcome=data.outcome, control=data.control,
            spend=data.spend, id_column=data.id_column, outcomes=data.outcomes, drop=data.drop, keep=data.keep,
            sent_at=data.sent_at, design=design, binary=config.model.target == "conversion" or data.spend is None)
        return CampaignInput(uplift, "table", frame_fingerprint(frame.reset_index()), design=design)
    truth = None
    if data.simulated:
        from custval.data.simulate_campaign import simulate_campaigns

        sim = simulate_campaigns(config.simulate.n_customers, seed=config.simulate.seed,
                                 response_days=campaign.response_days)
        transactions, customers, log = sim.transactions, sim.customers, sim.campaigns
        design = design or sim.designs[campaign.id].design
        truth = sim.campaign_truth(campaign.id)
        arms = sim.designs[campaign.id].treatments
    else:
        transactions = load_log(data)
        log = read_table(data.campaigns)
        customers = load_customers(data)
        arms = None
    columns = dict(data.campaign_columns)
    if data.outcome is not None:
        columns["outcome"] = data.outcome
    start = snap.history_start(transactions)
    end = _naive(transactions["timestamp"]).max().normalize() + _DAY
    uplift = campaign_dataset(transactions, log, campaign_id=campaign.id, control=data.control, arms=arms,
                              response_days=campaign.response_days, customers=customers, history_start=start,
                              observation_end=end, design=design, columns=columns or None,
                              outcome="column" if data.outcome is not None else "window")
    if truth is not None:
        truth = truth.loc[uplift.customer_id.to_numpy()].reset_index()
    options = {"windows": snap.WINDOWS, "history_start": start, "observation_end": end,
               "categories": _feature_categories(uplift.X) or None}
    return CampaignInput(uplift, "log", frame_fingerprint(*(f for f in (transactions, customers, log)
                                                              if f is not None)),
                         transactions=transactions, customers=customers, as_of=end, snapshot_options=options,
                         truth=truth, design=design)


def _feature_categories(X: pd.DataFrame) -> list[str]:
    """The categories whose snapshot columns (share_<category>) are in X."""
    return sorted(c.removeprefix("share_") for c in X.columns if c.startswith("share_"))


def campaign_population(source: CampaignInput, who: str, *, lapse_days: int) -> tuple[pd.Series, pd.DataFrame]:
    """(customer ids, features as the uplift set's columns) of the customers to rank as of `source.as_of`:
    lapsed (no purchase in the `lapse_days` before it) or active (a purchase in them), with the features the
    campaign's set was built with, at the as_of midnight."""
    if source.kind != "log":
        raise ConfigError("targeting.population: lapsed and active customers need a transaction log, not a "
                          "campaign table (use targeting.population=campaign)")
    frame = snap.build_snapshot(source.transactions, source.as_of, customers=source.customers, labels=False,
                                active_days=None, **source.snapshot_options)
    recency = frame["recency_days"] if "recency_days" in frame.columns else None
    if recency is None:
        raise SchemaError("features", "recency_days", "the snapshot has no recency column to find lapsed customers")
    lapsed = (recency >= lapse_days).to_numpy()
    keep = lapsed if who == "lapsed" else ~lapsed
    missing = [c for c in source.data.X.columns if c not in frame.columns]
    if missing:
        raise SchemaError("features", missing[0], "is a feature of the campaign's uplift set but not of the "
                          f"customers as of {source.as_of.date()}")
    chosen = frame.loc[keep].reset_index(drop=True)
    if chosen.empty:
        raise DataError("customers", "recency_days", f"no {who} customers as of {source.as_of.date()} with "
                        f"winback.lapse_days={lapse_days}", None)
    return chosen["customer_id"], chosen[list(source.data.X.columns)]
