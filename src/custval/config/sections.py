"""The sections pipelines are built from: where the data is (`data`), the simulated business (`simulate`),
point-in-time snapshots (`snapshots`), the train/valid/test split (`split`), the models (`model`, `clv`), the
segment thresholds (`segments`) and test-and-rollout (`rollout`).

Settings of an estimator (the XGBoost keyword arguments, tree depth, penalizers, the calibration method) are
typed here but their rules belong to the estimator: the job checks them with the estimator's own
`check_params()` before any data is loaded.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from custval.config.loading import Section
from custval.config.types import (
    CANCELLATION_POLICIES,
    DUPLICATES_POLICIES,
    MISSING_ID_POLICIES,
    PRICE_POLICIES,
    RETURNS_POLICIES,
    UNMAPPED_POLICIES,
    ColumnMap,
    Date,
    Duration,
    FilePath,
    Flag,
    Fraction,
    Integer,
    Name,
    NonNegativeInt,
    Period,
    PositiveInt,
    PositiveReal,
    Real,
    SettingError,
    Share,
    one_of,
)
from custval.units import parse_date

SIMULATE = "simulate"
DEFAULT_XGBOOST = {"n_estimators": 2000, "learning_rate": 0.05, "max_depth": 4, "early_stopping_rounds": 50}
DEFAULT_LOGISTIC = {"C": 1.0, "transform": "log"}
DEFAULT_CANDIDATES = ("xgboost", "logistic", "average")


# ------------------------------------------------------------------------------------------------- data
class CancellationSettings(Section):
    """Cancelled order lines of an invoice export: lines whose order id starts with `prefix` and whose amount is
    negative (custval.data.prepare.match_cancellations)."""

    key = "data.cancellations"

    policy: Annotated[str, one_of(*CANCELLATION_POLICIES)] = "match"
    """match: remove a cancellation with the line it cancels (same customer, product and quantity, the latest
    earlier line not yet cancelled; unmatched ones are returns under data.returns) | returns: every cancellation
    is a return under data.returns."""
    prefix: Name = "C"
    """Order ids starting with this mark a cancellation (Online Retail: C536379)."""
    column: Name | None = None
    """Your column holding the prefixed order ids; null: the column mapped to order_id."""


class CategorySettings(Section):
    """A product master (one row per product and its category) joined on the log's product column."""

    key = "data.categories"

    file: FilePath | None = None
    """A CSV/Parquet product -> category file, joined on data.columns.product; null: no mapping."""
    product: Name | None = None
    """The file's product column; null: the same name as the log's product column."""
    category: Name = "category"
    """The file's category column."""
    unmapped: Annotated[str, one_of(*UNMAPPED_POLICIES)] = "warn"
    """Products of the log missing from the file: warn (their category is <NA>, with the share) | error."""

    @model_validator(mode="before")
    @classmethod
    def _file_alone(cls, value):
        """`data.categories: products.csv` is short for `data.categories: {file: products.csv}`."""
        return {"file": value} if isinstance(value, str) else value


class DataConfig(Section):
    """Where the transactions are and how to read them (an invoice export's policies included)."""

    key = "data"

    source: Name = "cdnow"
    """A transactions CSV/Parquet path, or a bundled dataset: cdnow (23,570 customers), cdnow-sample (2,357)."""
    columns: ColumnMap = {}
    """Contract name -> your column, e.g. {customer_id: cust_no, timestamp: order_date, amount: net_value}; an
    invoice export: {customer_id: CustomerID, timestamp: InvoiceDate, quantity: Quantity, unit_price: UnitPrice,
    order_id: InvoiceNo, product: StockCode} (amount = quantity x unit_price)."""
    returns: Annotated[str, one_of(*RETURNS_POLICIES)] = "exclude"
    """Negative amounts are returns: exclude (drop them, with a warning) | net (net into the same day) | error."""
    duplicates: Annotated[str, one_of(*DUPLICATES_POLICIES)] | None = None
    """Rows identical in every column: error | drop | keep | null (the source's default: error for files, keep
    for the CDNOW datasets)."""
    timestamp_format: Name | None = None
    """strptime format of text timestamps, e.g. '%d/%m/%Y %H:%M'; null: ISO 8601 or yyyymmdd only."""
    missing_ids: Annotated[str, one_of(*MISSING_ID_POLICIES)] = "error"
    """Rows without a customer id (guest checkouts): error | drop (with a warning giving the count and share)."""
    cancellations: CancellationSettings = Field(default_factory=CancellationSettings)
    """Cancelled order lines (order ids with a prefix)."""
    prices: Annotated[str, one_of(*PRICE_POLICIES)] = "drop"
    """Lines whose unit_price is zero or negative (free samples, adjustments): drop (with a warning) | keep | error."""
    categories: CategorySettings = Field(default_factory=CategorySettings)
    """A product -> category mapping file (a path alone is short for {file: path})."""

    @model_validator(mode="after")
    def _one_category_source(self):
        if self.categories.file is not None and "category" in self.columns:
            raise SettingError("categories.file", f"must be null when data.columns maps category (to "
                                                  f"{self.columns['category']!r}): the log has its categories")
        return self


# The data.* settings that apply to a transaction log (not to a customer table or the simulator).
LOG_SETTINGS = ("columns", "returns", "duplicates", "timestamp_format", "missing_ids", "cancellations", "prices",
                "categories")


class LogDataConfig(DataConfig):
    """A transaction log (or a simulated business) with optional customer attributes."""

    source: Name = SIMULATE
    """simulate (the `simulate` section), a transactions CSV/Parquet path or a bundled dataset (cdnow)."""
    customers: FilePath | None = None
    """Customer attributes for a transactions file (CSV/Parquet, one row per customer: id_column + any columns)."""
    customer_columns: ColumnMap = {}
    """Rename the columns of `customers` or `table`: our name -> source column."""
    id_column: Name = "customer_id"
    """The id column of `customers` (or `table`)."""
    drop: tuple[Name, ...] = ()
    """Columns of `customers` (or `table`) that are not features (names after customer_columns), e.g. [Surname]."""
    keep: tuple[Name, ...] = ()
    """Columns of `customers` (or `table`) kept as features even when they look like identifiers (row numbers,
    text with nearly all values distinct), which are otherwise dropped with a warning."""

    @property
    def simulated(self) -> bool:
        return self.source.strip().lower() == SIMULATE

    @model_validator(mode="after")
    def _columns_to_drop(self):
        for name in ("drop", "keep"):
            names = getattr(self, name)
            if len(set(names)) != len(names):
                raise SettingError(name, f"must be distinct column names, got {list(names)}")
            table = getattr(self, "table", None) is not None
            own = [c for c in names if c == self.id_column or (table and c == self.label)]
            if own:
                what = "data.id_column" if own[0] == self.id_column else "data.label"
                raise SettingError(name, f"must not name {what} ({own[0]!r}): it is never a feature")
        both = sorted(set(self.drop) & set(self.keep))
        if both:
            raise SettingError("keep", f"and data.drop both name {both[0]!r}: drop it or keep it")
        return self


class TableDataConfig(LogDataConfig):
    """Transactions (or a simulated business), optional customer attributes, or a plain labelled customer table."""

    table: FilePath | None = None
    """Instead of transactions: a customer table with a label column (e.g. a telecom churn export); its rows are
    split at random, stratified on the label, and all are scored."""
    label: Name = "churn"
    """The label column of `table` (1/0, yes/no, y/n, true/false)."""

    @property
    def simulated(self) -> bool:
        return self.table is None and self.source.strip().lower() == SIMULATE

    @model_validator(mode="after")
    def _one_customer_source(self):
        if self.table is not None and self.customers is not None:
            raise SettingError("customers", "must be null with a table: data.table already holds the customers")
        return self


class SimulateSettings(Section):
    """The simulated business used when data.source is simulate (custval.data.simulate_churn)."""

    key = "simulate"

    n_customers: PositiveInt = 20_000
    """Customers to simulate."""
    seed: NonNegativeInt = 0
    """Seed of the simulation."""
    start: Date = "2023-01-01"
    """First day of the simulated history."""
    end: Date = "2025-01-01"
    """Day after the last simulated day."""

    @model_validator(mode="after")
    def _ordered(self):
        if parse_date(self.start) >= parse_date(self.end):
            raise SettingError("start", f"must be before simulate.end ({self.end}), got {self.start!r}")
        return self


AUTO = "auto"


def _cutoff_count(value: Any) -> Any:
    if value == AUTO and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError("", f"must be {AUTO} or an integer >= 1, got {value!r}")
    return value


CutoffCount = Annotated[int | str, BeforeValidator(_cutoff_count)]


class SnapshotSettings(Section):
    """Cutoffs and features: labels look horizon_days ahead of each cutoff; cutoffs every every_days, the latest
    horizon_days before the observation end (n_cutoffs of them, or with auto as many as the log allows);
    customers count when they bought in the active_days before a cutoff."""

    key = "snapshots"

    horizon_days: PositiveInt = 90
    """Label window after a cutoff: churn = no purchase in it."""
    windows: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (30, 90, 180, 365)
    """RFM windows (days before the cutoff)."""
    active_days: PositiveInt = 365
    """A customer is in a snapshot when they bought in this many days before its cutoff."""
    n_cutoffs: CutoffCount = AUTO
    """Cutoffs stacked into the training data: auto (as many as the log allows, up to max_cutoffs, each with
    min_history_days of transactions before it) or a number."""
    min_history_days: PositiveInt = 90
    """With n_cutoffs auto: days of transactions a cutoff needs before it."""
    max_cutoffs: PositiveInt = 6
    """With n_cutoffs auto: the most cutoffs taken (the latest ones)."""
    every_days: PositiveInt = 90
    """Days between cutoffs (= horizon_days, so that train, valid and test label windows do not overlap)."""
    clv_features: Flag = False
    """Add BG/NBD p_alive and expected purchases as features."""

    @model_validator(mode="after")
    def _distinct_windows(self):
        if len(set(self.windows)) != len(self.windows):
            raise SettingError("windows", f"must be distinct day counts, got {list(self.windows)}")
        return self


def check_fractions(valid_fraction: float, test_fraction: float, what: str) -> None:
    """The valid and test shares of a random split leave `what` to train on."""
    if valid_fraction + test_fraction >= 1:
        raise SettingError("test_fraction", f"must leave {what} to train on: split.valid_fraction + "
                                            f"split.test_fraction must be < 1, got {valid_fraction} + {test_fraction}")


class SplitSettings(Section):
    """Time split of the snapshots (the last n_test cutoffs are test, the n_valid before them valid); a plain
    customer table is split at random instead, stratified on the label, with the fractions."""

    key = "split"

    n_valid: PositiveInt = 1
    """Cutoffs for early stopping and calibration."""
    n_test: PositiveInt = 1
    """The latest cutoffs, for the test metrics."""
    valid_fraction: Fraction = 0.2
    """Customer table only: share of rows for validation."""
    test_fraction: Fraction = 0.2
    """Customer table only: share of rows for the test."""

    @model_validator(mode="after")
    def _leaves_training_rows(self):
        check_fractions(self.valid_fraction, self.test_fraction, "rows")
        return self


# ----------------------------------------------------------------------------------------------- models
class TreeSettings(Section):
    """The readable depth-limited decision tree (custval.models.classifiers.TreeClassifier)."""

    key = "model.tree"

    max_depth: Integer = 5
    """Depth of the tree; its rules are logged as tree_rules.txt."""
    min_samples_leaf: Integer = 100
    """Fewest training rows in a leaf."""


class BoostingSettings(Section):
    """The candidate models, chosen by cross-validation on the training rows (train and valid), the chosen one
    refitted on all of them and calibrated on the out-of-fold scores of valid
    (custval.models.classifiers.selection)."""

    key = "model"

    candidates: tuple[Name, ...] = DEFAULT_CANDIDATES
    """Models compared: xgboost | logistic | average (the mean log-odds of the two; needs both); the best mean
    CV ROC AUC wins."""
    cv_folds: Annotated[Integer, Field(ge=2)] = 5
    """Folds of the cross-validation (stratified on the label; snapshots by customer, all cutoffs in one fold)."""
    xgboost: dict[Name, Any] = Field(default_factory=lambda: dict(DEFAULT_XGBOOST))
    """BoostedClassifier keyword arguments (unknown keys and bad values are errors); the trees of the refit are
    the early-stopping point found by the cross-validation."""
    logistic: dict[Name, Any] = Field(default_factory=lambda: dict(DEFAULT_LOGISTIC))
    """LogisticClassifier keyword arguments: C, transform (log | none), class_weight, max_iter."""
    calibration: Name = "auto"
    """Calibration on the out-of-fold scores of valid: auto (chosen by out-of-fold log loss) | isotonic | sigmoid."""


class ModelSettings(BoostingSettings):
    """The churn models: the readable tree (fitted on train, calibrated on valid) beside the chosen model."""

    tree: TreeSettings = Field(default_factory=TreeSettings)
    """The readable model."""


class PropensityModelSettings(BoostingSettings):
    """One model per category (these settings shared; each category's choice, tree count and calibration are
    its own)."""


class CLVModelSettings(Section):
    """BG/NBD purchases + Gamma-Gamma spend (custval.models.clv.CustomerValue)."""

    period: Period = "W"
    """Model period: D, W (7 days) or M (30.4375 days)."""
    horizon: Duration = "12M"
    """CLV horizon, with its unit (90D, 26W, 12M, 1Y)."""
    annual_discount_rate: Real = 0.10
    """Compound annual discount rate of the CLV cash flows."""
    penalizer: Real = 0.0
    """BG/NBD L2 penalizer (lifetimes' convention: penalizer * sum(params^2))."""
    spend_penalizer: Real = 0.0
    """Gamma-Gamma L2 penalizer, kept separate: gamma is large, so the penalty bites hard."""

    def clv_settings(self) -> dict[str, Any]:
        """These settings as keyword arguments of custval.models.clv.value.customer_value."""
        return {name: getattr(self, name) for name in CLVModelSettings.model_fields}


class CLVSource(CLVModelSettings):
    """Where clv and p_alive come from: a registered CLV model, or a model fitted on the spot."""

    key = "clv"

    model_uri: Name | None = None
    """A logged CLV model, e.g. models:/custval-clv@champion (fed RFM in its own period); null: fit one here
    with the settings below."""


# --------------------------------------------------------------------------------------------- segments
DEFAULT_TIER_CUTS = (0.5, 0.8, 0.95)
DEFAULT_TIER_NAMES = ("lead", "iron", "gold", "platinum")
# rows: purchase cycle short / medium / long (short = buys most often); columns: order value high / medium / low
DEFAULT_GRID = (("platinum", "gold", "develop"), ("gold", "silver", "develop"), ("silver", "optimise", "optimise"))
Row3 = tuple[Name, Name, Name]


class SegmentConfig(Section):
    """Every threshold of custval.features.value_segments.segment_customers."""

    key = "segments"
    model_config = {"frozen": True}

    bins: Annotated[Integer, Field(ge=2)] = 5
    """RFM scores 1..bins by quantiles (bins = best); R on the time since the last purchase."""
    ties: Annotated[str, one_of("shared", "first")] = "shared"
    """shared: tied values get one score | first: ties broken by customer order."""
    monetary: Annotated[str, one_of("monetary_value", "revenue")] = "monetary_value"
    """Spend column of the M score and the grid: monetary_value (mean repeat spend) | revenue."""
    rfm_weights: tuple[Real, Real, Real] = (1, 1, 1)
    """rfm_score = weighted sum of the R, F and M scores."""
    tier_cuts: Annotated[tuple[Fraction, ...], Field(min_length=1)] = DEFAULT_TIER_CUTS
    """CLV quantiles between tiers (strictly increasing, in (0, 1))."""
    tier_names: Annotated[tuple[Name, ...], Field(min_length=2)] = DEFAULT_TIER_NAMES
    """Tier names, lowest first: one more than tier_cuts."""
    value_threshold: Real | None = None
    """Value x loyalty: high value if clv >= this; null: the value_quantile of clv."""
    value_quantile: Fraction = 0.5
    """Quantile of clv used when value_threshold is null."""
    loyalty: Annotated[str, one_of("p_alive", "expected_purchases", "frequency", "purchases")] = "p_alive"
    """Loyalty column of the value x loyalty matrix (a column of the segmented base)."""
    loyalty_threshold: Real = 0.5
    """High loyalty if the loyalty column is >= this."""
    cycle_thresholds: tuple[Real, Real] | None = None
    """Purchase-cycle grid: two inter-purchase times (model periods); null: tertiles."""
    spend_thresholds: tuple[Real, Real] | None = None
    """Purchase-cycle grid: two order values; null: tertiles of repeat buyers."""
    grid: tuple[Row3, Row3, Row3] = DEFAULT_GRID
    """Grid classes: rows short / medium / long cycle, columns high / medium / low spend."""
    lifecycle_method: Annotated[str, one_of("auto", "cycle", "p_alive")] = "auto"
    """Lifecycle stages from the purchase cycle | p_alive | auto (p_alive when the frame has it, else cycle)."""
    new_within: Real | None = None
    """New if the first purchase is within this many periods; null: the median purchase cycle."""
    at_risk_after: PositiveReal = 2.0
    """Cycle method: at risk after this many own purchase cycles without a purchase."""
    lapsed_after: PositiveReal = 4.0
    """Cycle method: lapsed after this many own purchase cycles without a purchase."""
    active_p_alive: Share = 0.5
    """p_alive method: active if P(alive) >= this."""
    lapsed_p_alive: Share = 0.2
    """p_alive method: lapsed below this (at risk in between)."""


SEGMENT_COLUMNS = ("rfm_cell", "rfm_score", "r_score", "f_score", "m_score", "tier", "value_loyalty", "cycle_class",
                   "lifecycle_stage")


class RolloutSettings(Section):
    """Test and rollout: the cells of a test mailing whose response rate reaches the break-even rate
    cost_per_contact / net_profit_per_response are rolled out to the customers not tested."""

    key = "rollout"

    responses: FilePath | None = None
    """A CSV/Parquet file of a test mailing: customer_id and a 0/1 response column."""
    response_column: Name = "responded"
    """The 0/1 response column of `responses`."""
    cell: Annotated[str, one_of(*SEGMENT_COLUMNS)] = "rfm_cell"
    """The segment column whose cells are tested and rolled out."""
    cost_per_contact: PositiveReal | None = None
    """Cost of one contact."""
    net_profit_per_response: PositiveReal | None = None
    """Net profit of one response."""

    @model_validator(mode="after")
    def _economics(self):
        given = [v is not None for v in (self.cost_per_contact, self.net_profit_per_response)]
        if any(given) and not all(given):
            raise SettingError("cost_per_contact", "and rollout.net_profit_per_response must be given together")
        if self.responses is not None and not all(given):
            raise SettingError("responses", "needs rollout.cost_per_contact and rollout.net_profit_per_response")
        return self


# ----------------------------------------------------------------------------------------------- uplift
UPLIFT_LEARNERS = ("s", "t", "x", "dr", "class_transformation", "average")
# the outcome-model learners: the DR-learner and the class transformation fit noisier pseudo-outcomes and score
# lowest on the simulated campaigns, in the folds and on test rows alike, so averaging them in dilutes the mean
AVERAGE_MEMBERS = ("s", "t", "x")
UPLIFT_CHOICES = ("stack", "one_se", "best")
# no row or column subsampling: an uplift is a difference of predictions, which sampling noise swamps
DEFAULT_UPLIFT_XGBOOST = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3, "subsample": 1.0,
                          "colsample_bytree": 1.0}


class CampaignDataConfig(DataConfig):
    """A randomised campaign: transactions (or the simulated campaigns) with a campaign log, or a campaign table
    (one row per contacted customer: features, arm, outcomes)."""

    source: Name = SIMULATE
    """simulate (custval.data.simulate_campaign, the `simulate` section) or a transactions CSV/Parquet path."""
    campaigns: FilePath | None = None
    """The campaign log for a transactions file (CSV/Parquet: customer_id, campaign_id, treatment = arm name,
    sent_at)."""
    campaign_columns: ColumnMap = {}
    """Contract name -> your column of the campaign log, e.g. {treatment: group, sent_at: send_time}."""
    customers: FilePath | None = None
    """Customer attributes for a transactions file (one row per customer: id_column + any columns)."""
    customer_columns: ColumnMap = {}
    """Rename the columns of `customers` or `table`: our name -> source column."""
    table: FilePath | None = None
    """Instead of transactions: a campaign table (one row per contacted customer: features, the arm column
    `treatment`, the 0/1 column `outcome`, optionally `spend`)."""
    id_column: Name = "customer_id"
    """The id column of `table` or `customers`."""
    treatment: Name = "treatment"
    """The arm column of `table` (arm names; one of them is `control`)."""
    control: Name = "control"
    """The control arm's name (in the campaign log or `table`)."""
    outcome: Name | None = None
    """The 0/1 outcome column of `table` (e.g. Converted), or of the campaign log; null for a log: a sale in the
    response window of the transactions (campaign.response_days)."""
    spend: Name | None = None
    """The spend column of `table` (needed for model.target=spend)."""
    outcomes: tuple[Name, ...] = ()
    """Other outcome columns of `table` (e.g. Visited): never features."""
    sent_at: Name | None = None
    """The send-date column of `table`: not a feature; other date columns become days before it."""
    drop: tuple[Name, ...] = ()
    """Columns of `table` or `customers` that are not features, e.g. [CampaignCode]."""
    keep: tuple[Name, ...] = ()
    """Columns kept as features even when they look like identifiers (otherwise dropped with a warning)."""

    @property
    def simulated(self) -> bool:
        return self.table is None and self.source.strip().lower() == SIMULATE

    @model_validator(mode="after")
    def _sources(self):
        if self.table is not None:
            if self.outcome is None:
                raise SettingError("outcome", "must name the 0/1 outcome column of data.table, e.g. Converted")
            if self.campaigns is not None or self.customers is not None:
                name = "campaigns" if self.campaigns is not None else "customers"
                raise SettingError(name, "must be null with a table: data.table already holds the campaign")
        elif not self.simulated and self.campaigns is None:
            raise SettingError("campaigns", "must name the campaign log (customer_id, campaign_id, treatment, "
                                            "sent_at) of the transactions in data.source, e.g. campaigns.csv")
        return self


class CampaignSimulateSettings(Section):
    """The simulated campaigns of data.source=simulate (custval.data.simulate_campaign.simulate_campaigns:
    crosssell with arms email and discount, winback with arm offer)."""

    key = "simulate"

    n_customers: PositiveInt = 20_000
    """Customers of the simulated base."""
    seed: NonNegativeInt = 0
    """Seed of the simulation."""


class CampaignSettings(Section):
    """Which campaign and how its response is read."""

    key = "campaign"

    id: Name | None = "winback"
    """The campaign_id in the campaign log (null: the log's only campaign); with a campaign table, the name of
    its campaign. The model is registered as custval-uplift-<id> (registered_model: auto)."""
    response_days: PositiveInt = 30
    """Response window after sent_at: a sale in it is a conversion, its net amount the spend."""
    design: dict[Name, Fraction] | None = None
    """The planned share of each arm, e.g. {control: 0.5, offer: 0.5}: a sample-ratio mismatch warns; null: not
    tested (the simulator's design with data.source=simulate)."""


class UpliftModelSettings(Section):
    """The uplift learners, compared on validation Qini; the best is refitted on train + valid."""

    key = "model"

    learners: tuple[Name, ...] = UPLIFT_LEARNERS
    """Learners tried: s | t | x | dr | class_transformation (binary target, one treatment arm only) | average
    (the mean of the listed learners of model.average that apply)."""
    average: tuple[Name, ...] = AVERAGE_MEMBERS
    """Which learners `average` is the equally weighted mean of, among those listed in model.learners that
    apply: s | t | x | dr | class_transformation."""
    choice: Annotated[str, one_of(*UPLIFT_CHOICES)] = "one_se"
    """How the learner is picked from its mean Qini over the folds: one_se, the default (the one-standard-error
    rule: `average` when its mean is within one standard error over folds of the best learner's, else the best;
    with n_folds 0, as best) | stack (`average` of model.average, weighted by a non-negative least-squares fit
    of the transformed outcome on their out-of-fold uplift, each member's refit averaged with its fold models;
    needs n_folds >= 2; up to 4x the fits to score) | best (the highest mean)."""
    target: Annotated[str, one_of("conversion", "spend")] = "conversion"
    """The uplift of: conversion (P(convert)) | spend (revenue in the response window)."""
    xgboost: dict[Name, Any] = Field(default_factory=lambda: dict(DEFAULT_UPLIFT_XGBOOST))
    """Base learner settings (BoostedClassifier / BoostedRegressor keyword arguments) of every learner."""
    n_trials: NonNegativeInt = 0
    """Optuna trials tuning the chosen learner's base settings on validation Qini (with model.n_folds, its mean
    over the same folds; 0: none); trials are nested MLflow runs."""
    n_folds: NonNegativeInt = 3
    """Folds of train + valid (stratified on arm x outcome) the learners are compared on by mean Qini; 0: the
    one validation split."""

    @model_validator(mode="after")
    def _learners(self):
        if self.n_folds == 1:
            raise SettingError("n_folds", "must be 0 (one validation split) or >= 2, got 1")
        if self.choice == "stack" and self.n_folds == 0:
            raise SettingError("choice", "must be one_se or best with model.n_folds 0: stack weights the "
                                         "learners on out-of-fold predictions (model.n_folds >= 2)")
        unknown = [name for name in self.learners if name not in UPLIFT_LEARNERS]
        if unknown or not self.learners:
            raise SettingError("learners", f"must be a non-empty list of {list(UPLIFT_LEARNERS)}, got "
                                           f"{list(self.learners)}")
        if len(set(self.learners)) != len(self.learners):
            raise SettingError("learners", f"must be distinct, got {list(self.learners)}")
        members = [name for name in UPLIFT_LEARNERS if name != "average"]
        if (not self.average or len(set(self.average)) != len(self.average)
                or any(name not in members for name in self.average)):
            raise SettingError("average", f"must be a non-empty list of distinct learners of {members}, got "
                                          f"{list(self.average)}")
        if not set(self.learners) - {"average", "class_transformation"} and (
                self.target == "spend" or "average" in self.learners):
            raise SettingError("learners", f"{list(self.learners)} models nothing here (class_transformation: a "
                                           "0/1 outcome; average: the mean of other learners): add s, t, x or dr")
        usable = [name for name in self.average if name in self.learners
                  and not (name == "class_transformation" and self.target == "spend")]
        if ("average" in self.learners or self.choice == "stack") and not usable:
            raise SettingError("average", f"{list(self.average)}: average needs one of them in model.learners "
                                          f"{list(self.learners)} (class_transformation: a 0/1 target only)")
        return self


class UpliftSplitSettings(Section):
    """Customers split at random, stratified on arm x outcome."""

    key = "split"

    valid_fraction: Fraction = 0.2
    """Share of customers for choosing the learner (and tuning)."""
    test_fraction: Fraction = 0.3
    """Share of customers for the test metrics (never used to fit or choose)."""

    @model_validator(mode="after")
    def _leaves_training_rows(self):
        check_fractions(self.valid_fraction, self.test_fraction, "customers")
        return self


def _costs(value: Any) -> Any:
    """A cost per contact: a finite number >= 0, or a mapping arm name -> such a number."""
    def one(cost: Any, where: str) -> float:
        if isinstance(cost, bool) or not isinstance(cost, int | float) or not cost >= 0 or cost == float("inf"):
            raise SettingError(where, f"must be a finite number >= 0 (a cost per contact), got {cost!r}")
        return float(cost)

    if isinstance(value, dict):
        if not value:
            raise SettingError("", "must be a number or {arm: number, ...}, got {}")
        return {str(arm): one(cost, str(arm)) for arm, cost in value.items()}
    return one(value, "")


Costs = Annotated[float | dict[str, float], BeforeValidator(_costs)]


class TargetingSettings(Section):
    """Whom to contact with which arm: expected incremental profit = uplift x value of a response - cost
    (custval.scoring.targeting), at most one arm per customer, under the budget."""

    key = "targeting"

    population: Annotated[str, one_of("auto", "lapsed", "active", "campaign")] = "auto"
    """Who is ranked: lapsed (no purchase in winback.lapse_days before the scoring date) | active (a purchase in
    them) | campaign (the campaign's own customers) | auto (campaign for a campaign table, else lapsed)."""
    value: Annotated[str, one_of("auto", "margin", "second_lifetime_value")] = "auto"
    """Value of a conversion: margin (the fixed `margin`) | second_lifetime_value (margin_rate x the spend
    expected after a return, learnt from customers who lapsed and came back) | auto (second_lifetime_value for
    lapsed customers, else margin)."""
    margin: PositiveReal = 30.0
    """Net profit of one conversion (value: margin)."""
    margin_rate: Share = 0.3
    """Profit share of spend (value: second_lifetime_value, and model.target: spend)."""
    cost: Costs = 10.0
    """Cost of one contact (the offer included): one number, or one per treatment arm, e.g. {email: 0.5,
    discount: 4.0}."""
    max_contacts: PositiveInt | None = None
    """At most this many contacts (null: no limit)."""
    budget: PositiveReal | None = None
    """At most this much spent on contacts (null: no limit)."""
    top_share: Share = 0.3
    """The off-policy estimate reported for contacting the top share by predicted uplift."""


class WinbackSettings(Section):
    """Lapse and second lifetime value."""

    key = "winback"

    lapse_days: PositiveInt = 120
    """A customer is lapsed after this many days without a purchase."""
    horizon_days: PositiveInt = 365
    """The second lifetime value is the spend in this many days after a return."""


# ---------------------------------------------------------------------------------------------- scoring
class ScoreModels(Section):
    """The registered models to score with, by URI (an alias such as @champion is resolved once, at the start;
    null: that model's columns are left out)."""

    key = "models"

    clv: Name | None = "models:/custval-clv@champion"
    """The CLV model (custval train clv): p_alive, expected purchases and spend, clv, in its own period."""
    churn: Name | None = "models:/custval-churn@champion"
    """The churn model (custval train churn): churn_probability and reasons."""
    propensity: Name | None = "models:/custval-propensity@champion"
    """The cross-sell propensity model (custval train propensity): p_<category>."""
    retention: Name | None = None
    """An uplift model of a retention offer to active customers (custval train uplift); null: the uplift is
    retention.save_rate."""
    winback: Name | None = "models:/custval-uplift-winback@champion"
    """The win-back uplift model of lapsed customers (custval train uplift, pipelines/uplift_winback.yaml), with
    its second-lifetime-value model."""


class RetentionScoreSettings(Section):
    """Retention priority = churn_probability x clv x retention uplift - cost, for customers who are not lapsed."""

    key = "retention"

    arm: Name | None = None
    """The treatment arm of models.retention to price (null: its only arm)."""
    save_rate: Share = 0.2
    """Without models.retention: the share of would-be churners a contact keeps (stated in the output)."""
    cost: Real = 5.0
    """Cost of one retention contact (the offer included)."""
    top: NonNegativeInt = 100
    """Reasons (reason_1..3) are computed for this many customers at the head of the retention list."""


class WinbackScoreSettings(Section):
    """Win-back priority = uplift x margin_rate x second lifetime value - cost, for lapsed customers."""

    key = "winback"

    arm: Name | None = None
    """The treatment arm of models.winback to price (null: its only arm)."""
    lapse_days: PositiveInt | None = None
    """Lapsed after this many days without a purchase; null: the win-back model's own (120 without a model)."""
    cost: Real | None = None
    """Cost of one win-back contact; null: the one the win-back model was trained with."""
    margin_rate: Share | None = None
    """Profit share of the second lifetime value; null: the win-back model's own."""


class CrossSellScoreSettings(Section):
    """The best cross-sell category per customer: propensity x category margin."""

    key = "cross_sell"

    margins: dict[Name, Real] = {}
    """Margin of a sale per category, e.g. {grocery: 3.0, electronics: 40.0}; categories not listed take
    default_margin."""
    default_margin: Real = 1.0
    """Margin of the categories not in margins (1.0 everywhere: rank by propensity)."""
    new_only: Flag = True
    """Offer only categories the customer has not bought before the scoring date."""


class ScoringSettings(Section):
    """How the population is processed."""

    key = "scoring"

    chunk_size: PositiveInt = 250_000
    """Customers scored at a time (memory grows with it, not with the population)."""
    progress: Flag = True
    """Show a progress bar on stderr."""
    report: Flag = True
    """Write the HTML report next to the output (<output stem>.html) and log it to MLflow."""
