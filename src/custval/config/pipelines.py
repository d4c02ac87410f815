"""One pydantic model per runnable pipeline, built from the shared sections. Their defaults are the demo
(`pipelines/*.yaml` spell them out, and a test keeps both equal); `custval config show <pipeline>` lists every
key with its default and description."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from custval.config.loading import Section
from custval.config.sections import (
    AUTO,
    LOG_SETTINGS,
    CampaignDataConfig,
    CampaignSettings,
    CampaignSimulateSettings,
    CLVModelSettings,
    CLVSource,
    CrossSellScoreSettings,
    DataConfig,
    LogDataConfig,
    ModelSettings,
    PropensityModelSettings,
    RetentionScoreSettings,
    RolloutSettings,
    ScoreModels,
    ScoringSettings,
    SegmentConfig,
    SimulateSettings,
    SnapshotSettings,
    SplitSettings,
    TableDataConfig,
    TargetingSettings,
    UpliftModelSettings,
    UpliftSplitSettings,
    WinbackScoreSettings,
    WinbackSettings,
)
from custval.config.types import (
    Date,
    Duration,
    Flag,
    ModelName,
    Name,
    NonNegativeInt,
    OutputPath,
    PositiveInt,
    SettingError,
    Share,
    one_of,
)
from custval.units import horizon_days, parse_date


def _yaml(value) -> str:
    return "null" if value is None else repr(list(value) if isinstance(value, tuple) else value)


class JobConfig(Section):
    """What every job has: its MLflow experiment, an optional run name and an output file."""

    experiment: Name = "custval"
    """MLflow experiment of the run."""
    run_name: str | None = None
    """MLflow run name (null: MLflow picks one)."""
    output: OutputPath | None = None
    """Output file (.parquet or .csv), written atomically; null: no file."""


class TrainingConfig(JobConfig):
    """A job that registers a model: the registry name and how many top customers it prints."""

    registered_model: ModelName | None = None
    """Registered model name (alias challenger; champion when at least as good on the same holdout); null: not
    registered."""
    top_n: PositiveInt = 10
    """Customers shown in the printed top list."""


# -------------------------------------------------------------------------------------------------- CLV
class CLVConfig(TrainingConfig, CLVModelSettings):
    """custval train clv: BG/NBD + Gamma-Gamma on a calibration period, checked on the holdout, refit on the whole
    window, registered as custval-clv (champion by holdout MAE)."""

    experiment: Name = "custval-clv"
    registered_model: ModelName | None = "custval-clv"
    output: OutputPath | None = "outputs/clv_scores.parquet"
    data: DataConfig = Field(default_factory=DataConfig)
    """The transaction log."""
    calibration_end: Date | None = "1997-09-30"
    """Last day (inclusive) of the calibration period; null: observation_end - holdout."""
    observation_end: Date | None = "1998-06-30"
    """Last day (inclusive) of the holdout; null: the day of the last transaction."""
    holdout: Duration | None = None
    """Holdout length before observation_end (e.g. 39W), used when calibration_end is null."""
    refit_full: Flag = True
    """Refit on the whole window for scoring and registration (the holdout metrics come from the calibration fit)."""

    @model_validator(mode="after")
    def _window(self):
        if self.calibration_end is None and self.holdout is None:
            raise SettingError("calibration_end", "is null and holdout too: give calibration_end (a date) or "
                                                  "holdout (a duration such as '39W')")
        if self.calibration_end is not None and self.holdout is not None:
            raise SettingError("holdout", f"={self.holdout!r} would be ignored: calibration_end is given "
                                          f"({self.calibration_end}); set calibration_end=null to use holdout")
        if self.calibration_end is not None and self.observation_end is not None and \
                parse_date(self.calibration_end) >= parse_date(self.observation_end):
            raise SettingError("calibration_end", f"must be before observation_end ({self.observation_end}), got "
                                                  f"{self.calibration_end}")
        if self.holdout is not None and horizon_days(self.holdout) < 1:
            raise SettingError("holdout", f"must be at least one day, got {self.holdout!r}")
        return self


# ------------------------------------------------------------------------------------ churn, propensity
class SnapshotJobConfig(TrainingConfig):
    """What the churn and propensity jobs share: the data, the simulated business, snapshots and the split."""

    data: TableDataConfig = Field(default_factory=TableDataConfig)
    """Transactions (or simulate), optional customer attributes, or a labelled customer table."""
    simulate: SimulateSettings = Field(default_factory=SimulateSettings)
    """The simulated business (data.source: simulate)."""
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    """Point-in-time features and labels."""
    split: SplitSettings = Field(default_factory=SplitSettings)
    """Train / valid / test."""
    seed: NonNegativeInt = 0
    """Seed of the models and of the random split of a customer table."""

    @model_validator(mode="after")
    def _nothing_ignored(self):
        """A setting the chosen kind of data would silently ignore is an error (non-default values only)."""
        data, default = self.data, TableDataConfig()
        changed = {k for k in type(data).model_fields if getattr(data, k) != getattr(default, k)}
        table = data.table is not None
        if table:
            ignored, why = {"source", *LOG_SETTINGS} & changed, \
                "data.table (a customer table) is used instead of transactions"
        elif data.simulated:
            ignored = {*LOG_SETTINGS, "customers", "customer_columns", "label", "id_column", "drop",
                       "keep"} & changed
            why = "data.source=simulate brings its own transactions and customers"
        else:
            ignored = {"label"} & changed
            if data.customers is None:
                ignored |= {"customer_columns", "id_column", "drop", "keep"} & changed
            why = ("data.label belongs to a customer table (data.table); data.customer_columns, data.id_column, "
                   "data.drop and data.keep to data.customers")
        if ignored:
            key = sorted(ignored)[0]
            value, default_value = getattr(data, key), getattr(default, key)
            if isinstance(value, Section):  # name the changed setting inside the section
                leaf = next(k for k in type(value).model_fields if getattr(value, k) != getattr(default_value, k))
                key, value, default_value = f"{key}.{leaf}", getattr(value, leaf), getattr(default_value, leaf)
            raise SettingError(f"data.{key}", f"={_yaml(value)} would be ignored: {why} (leave it at its "
                                              f"default {_yaml(default_value)})")
        for name, section, used, where in (
                ("simulate", self.simulate, data.simulated, "data.source=simulate"),
                ("snapshots", self.snapshots, not table, "transactions")):
            defaults = type(section)()
            changed = [k for k in type(section).model_fields if getattr(section, k) != getattr(defaults, k)]
            if changed and not used:
                raise SettingError(f"{name}.{changed[0]}", f"would be ignored: it applies only to {where}, not to "
                                   + ("data.table" if table else f"data.source={data.source}"))
        needed = self.split.n_valid + self.split.n_test + 1
        snapshots = self.snapshots
        auto = snapshots.n_cutoffs == AUTO
        count = "max_cutoffs" if auto else "n_cutoffs"
        if not table and getattr(snapshots, count) < needed:
            raise SettingError(f"snapshots.{count}", f"must be at least split.n_valid + split.n_test + 1 = {needed} "
                               f"(a training cutoff besides the valid and test ones), got {getattr(snapshots, count)}")
        if not auto:
            defaults = SnapshotSettings()
            unused = [k for k in ("min_history_days", "max_cutoffs") if getattr(snapshots, k) != getattr(defaults, k)]
            if unused:
                raise SettingError(f"snapshots.{unused[0]}", f"would be ignored: it applies to snapshots.n_cutoffs="
                                   f"{AUTO}, not to a fixed number of cutoffs ({snapshots.n_cutoffs})")
        defaults = SplitSettings()
        changed = [k for k in SplitSettings.model_fields if getattr(self.split, k) != getattr(defaults, k)]
        ignored = [k for k in changed if k.startswith("n_")] if table else [k for k in changed if "fraction" in k]
        if ignored:
            why = ("a customer table is split at random by split.valid_fraction and split.test_fraction, not by "
                   "cutoff" if table else "the fractions split a customer table (data.table); transactions are "
                   "split by cutoff (split.n_valid, split.n_test)")
            raise SettingError(f"split.{ignored[0]}", f"would be ignored: {why}")
        return self


class ChurnConfig(SnapshotJobConfig):
    """custval train churn / tune churn: a decision tree and a calibrated XGBoost on point-in-time snapshots,
    registered as custval-churn (champion by test ROC AUC)."""

    experiment: Name = "custval-churn"
    registered_model: ModelName | None = "custval-churn"
    output: OutputPath | None = "outputs/churn_scores.parquet"
    model: ModelSettings = Field(default_factory=ModelSettings)
    """The tree, XGBoost and their calibration."""


class PropensityConfig(SnapshotJobConfig):
    """custval train propensity: one calibrated XGBoost per category, registered together as
    custval-propensity (champion by mean test ROC AUC over the same categories)."""

    experiment: Name = "custval-propensity"
    registered_model: ModelName | None = "custval-propensity"
    output: OutputPath | None = "outputs/propensity_scores.parquet"
    model: PropensityModelSettings = Field(default_factory=PropensityModelSettings)
    """One XGBoost per category."""
    categories: Annotated[tuple[Name, ...], Field(min_length=1)] | None = None
    """Categories to model (each must occur in the transactions); null: every category."""
    cross_sell_new_only: Flag = True
    """Train and score each category among customers who never bought it."""

    @model_validator(mode="after")
    def _transactions_with_categories(self):
        if self.data.table is not None:
            raise SettingError("data.table", "must be null: propensity needs transactions with a category column, "
                                             "not a customer table; set data.source instead")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise SettingError("categories", f"must be distinct category names, got {list(self.categories)}")
        return self


# --------------------------------------------------------------------------------------------- segments
MIGRATION_BY = ("rfm_cell", "rfm_score", "r_score", "f_score", "m_score")


class SegmentJobConfig(JobConfig):
    """custval segment: RFM cells, CLV tiers, value x loyalty, purchase-cycle grid and lifecycle stage per
    customer as of `as_of`, with summaries, Pareto shares and RFM migration, logged to custval-segments."""

    experiment: Name = "custval-segments"
    output: OutputPath | None = "outputs/segments.parquet"
    data: DataConfig = Field(default_factory=DataConfig)
    """The transaction log."""
    as_of: Date | None = None
    """Last day included; null: the day of the last transaction."""
    clv: CLVSource = Field(default_factory=CLVSource)
    """Where clv and p_alive come from."""
    segments: SegmentConfig = Field(default_factory=lambda: SegmentConfig(lifecycle_method="cycle"))
    """Segment thresholds (lifecycle from the purchase cycle: BG/NBD gives every one-time buyer P(alive) = 1)."""
    rfm_period_months: PositiveInt | None = 6
    """Per-period RFM every this many calendar months (1, 2, 3, 4, 6 or 12) and the migration between the last
    two periods; null: off."""
    migration_by: Annotated[str, one_of(*MIGRATION_BY)] = "rfm_cell"
    """Column whose movement between the last two periods is tabulated."""
    pareto_tops: Annotated[tuple[Share, ...], Field(min_length=1)] = (0.01, 0.05, 0.1, 0.2, 0.5)
    """Shares of customers whose share of revenue and CLV is tabulated (the top 20% is always logged)."""
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    """Test-and-rollout of a test mailing."""

    @model_validator(mode="after")
    def _consistent(self):
        if self.clv.model_uri is not None:  # the model brings its own period, horizon and fitted parameters
            defaults = CLVModelSettings()
            changed = [k for k in CLVModelSettings.model_fields if getattr(self.clv, k) != getattr(defaults, k)]
            if changed:
                raise SettingError(f"clv.{changed[0]}", f"={getattr(self.clv, changed[0])!r} would be ignored: "
                                   "clv.model_uri's model brings its own period, horizon, discount rate and "
                                   "fitted parameters (leave the clv settings at their defaults)")
        months = self.rfm_period_months
        if months is not None and 12 % months:
            raise SettingError("rfm_period_months", f"must divide 12 (1, 2, 3, 4, 6 or 12) or be null, got {months}")
        return self


# ----------------------------------------------------------------------------------------------- uplift
UPLIFT_PREFIX = "custval-uplift-"


class UpliftConfig(TrainingConfig):
    """custval train uplift: the uplift learners fitted on one randomised campaign, the best on validation Qini
    refitted, evaluated on the test customers (Qini, AUUC, uplift@k, the off-policy value of targeting), the
    target list chosen for the most incremental profit, registered as custval-uplift-<campaign> (champion by test
    Qini on the same test customers)."""

    experiment: Name = "custval-uplift"
    registered_model: ModelName | None = AUTO
    """Registered model name (alias challenger; champion when its test Qini is at least the champion's on the same
    test customers); auto: custval-uplift-<campaign.id>; null: not registered."""
    output: OutputPath | None = "outputs/uplift_winback_targets.parquet"
    data: CampaignDataConfig = Field(default_factory=CampaignDataConfig)
    """The campaign: transactions + campaign log, the simulated campaigns, or a campaign table."""
    simulate: CampaignSimulateSettings = Field(default_factory=CampaignSimulateSettings)
    """The simulated campaigns (data.source: simulate)."""
    campaign: CampaignSettings = Field(default_factory=CampaignSettings)
    """Which campaign, its response window and design."""
    split: UpliftSplitSettings = Field(default_factory=UpliftSplitSettings)
    """Train / valid / test customers."""
    model: UpliftModelSettings = Field(default_factory=UpliftModelSettings)
    """The learners and their base settings."""
    targeting: TargetingSettings = Field(default_factory=TargetingSettings)
    """The economics of a contact and the budget."""
    winback: WinbackSettings = Field(default_factory=WinbackSettings)
    """Lapse and second lifetime value."""
    seed: NonNegativeInt = 0
    """Seed of the split and the models."""

    @model_validator(mode="after")
    def _consistent(self):
        data, targeting = self.data, self.targeting
        table = data.table is not None
        if self.registered_model == AUTO and self.campaign.id is None:
            raise SettingError("registered_model", "auto names the model after campaign.id, which is null: set "
                                                   "campaign.id or registered_model")
        population, value = self.population, self.response_value
        if data.simulated:
            defaults = CampaignDataConfig()
            changed = [k for k in ("campaigns", "campaign_columns", "customers", "customer_columns", "outcome",
                                   *LOG_SETTINGS) if getattr(data, k) != getattr(defaults, k)]
            if changed:
                raise SettingError(f"data.{changed[0]}", "would be ignored: data.source=simulate brings its own "
                                   "transactions, customers and campaign log")
            if self.campaign.id not in ("winback", "crosssell"):
                raise SettingError("campaign.id", f"must be winback or crosssell with data.source=simulate, got "
                                                  f"{self.campaign.id!r}")
        elif self.simulate != CampaignSimulateSettings():
            raise SettingError("simulate.n_customers" if self.simulate.n_customers != 20_000 else "simulate.seed",
                               "would be ignored: it applies only to data.source=simulate")
        if table and population != "campaign":
            raise SettingError("targeting.population", f"must be campaign with a campaign table (data.table): it "
                                                       f"has no transactions to find {targeting.population} "
                                                       f"customers in, got {population}")
        if not table:
            defaults = CampaignDataConfig()
            changed = [k for k in ("spend", "outcomes", "sent_at", "treatment") if getattr(data, k) !=
                       getattr(defaults, k)]
            if changed:
                raise SettingError(f"data.{changed[0]}", "would be ignored: it names a column of a campaign table "
                                   "(data.table); map the campaign log's columns with data.campaign_columns")
        if self.model.target == "spend" and table and data.spend is None:
            raise SettingError("data.spend", "must name the spend column of data.table for model.target=spend")
        if self.model.target == "spend" and not table and data.outcome is not None:
            raise SettingError("model.target", "spend needs the transactions of the response window: set "
                                               "data.outcome=null")
        if value == "second_lifetime_value" and (table or population != "lapsed"):
            raise SettingError("targeting.value", "second_lifetime_value needs lapsed customers of a transaction "
                                                  "log (targeting.population=lapsed); use margin")
        if value == "second_lifetime_value" and self.model.target == "spend":
            raise SettingError("targeting.value", "must be margin with model.target=spend (the uplift is already "
                                                  "in money: profit = margin_rate x spend uplift)")
        return self

    @property
    def population(self) -> str:
        """targeting.population resolved: auto is campaign for a campaign table, else lapsed."""
        if self.targeting.population != AUTO:
            return self.targeting.population
        return "campaign" if self.data.table is not None else "lapsed"

    @property
    def response_value(self) -> str:
        """targeting.value resolved: auto is second_lifetime_value for lapsed customers and a conversion target,
        else margin."""
        if self.targeting.value != AUTO:
            return self.targeting.value
        return "second_lifetime_value" if self.population == "lapsed" and self.model.target == "conversion" \
            else "margin"

    @property
    def model_name(self) -> str | None:
        """registered_model resolved: auto is custval-uplift-<campaign.id>."""
        return f"{UPLIFT_PREFIX}{self.campaign.id}" if self.registered_model == AUTO else self.registered_model


class UpliftCampaignConfig(UpliftConfig):
    """custval train uplift for a campaign to active customers (pipelines/uplift_campaign.yaml): the simulated
    crosssell campaign with two treatment arms, valued by a fixed margin per conversion."""

    output: OutputPath | None = "outputs/uplift_crosssell_targets.parquet"
    campaign: CampaignSettings = Field(default_factory=lambda: CampaignSettings(id="crosssell"))
    """Which campaign, its response window and design."""
    targeting: TargetingSettings = Field(default_factory=lambda: TargetingSettings(
        population="active", value="margin", cost={"email": 0.5, "discount": 4.0}))
    """The economics of a contact and the budget."""


# ---------------------------------------------------------------------------------------------- scoring
class ScoreConfig(JobConfig):
    """custval score: every customer of a transaction log scored as of a date with the registered models (CLV,
    churn, propensity, retention and win-back uplift), ranked for retention, win-back and cross-sell, and
    segmented; one row per customer written atomically, one MLflow run in custval-scoring."""

    experiment: Name = "custval-scoring"
    output: OutputPath | None = "outputs/scores.parquet"
    as_of: Date | None = None
    """Scoring date: features use the transactions before it (null: the day after the last transaction)."""
    data: LogDataConfig = Field(default_factory=LogDataConfig)
    """The customer base: transactions (or simulate) and optional customer attributes."""
    simulate: CampaignSimulateSettings = Field(default_factory=CampaignSimulateSettings)
    """The simulated customer base (data.source: simulate): the customers and campaigns the demo trains on."""
    models: ScoreModels = Field(default_factory=ScoreModels)
    """The registered models to score with."""
    retention: RetentionScoreSettings = Field(default_factory=RetentionScoreSettings)
    """The retention list."""
    winback: WinbackScoreSettings = Field(default_factory=WinbackScoreSettings)
    """The win-back list."""
    cross_sell: CrossSellScoreSettings = Field(default_factory=CrossSellScoreSettings)
    """The cross-sell list."""
    segments: SegmentConfig = Field(default_factory=SegmentConfig)
    """RFM cells, tiers, value x loyalty and lifecycle stages of the scored base."""
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    """Chunks, progress and the report."""
    top_n: PositiveInt = 10
    """Customers shown of each ranked list."""

    @model_validator(mode="after")
    def _consistent(self):
        models = self.models
        if all(getattr(models, k) is None for k in type(models).model_fields):
            raise SettingError("models", "are all null: name at least one registered model to score with, e.g. "
                                         "models.clv=models:/custval-clv@champion")
        if not self.data.simulated:
            defaults = CampaignSimulateSettings()
            changed = [k for k in type(self.simulate).model_fields if getattr(self.simulate, k) != getattr(defaults, k)]
            if changed:
                raise SettingError(f"simulate.{changed[0]}", "would be ignored: it applies only to data.source=simulate")
        else:
            defaults = LogDataConfig()
            changed = [k for k in ("customers", "customer_columns", "id_column", "drop", "keep", *LOG_SETTINGS)
                       if getattr(self.data, k) != getattr(defaults, k)]
            if changed:
                raise SettingError(f"data.{changed[0]}", "would be ignored: data.source=simulate brings its own "
                                   "transactions and customers")
        for section, model in (("retention", models.retention), ("winback", models.winback)):
            if model is None and getattr(self, section).arm is not None:
                raise SettingError(f"{section}.arm", f"would be ignored: models.{section} is null (no uplift model "
                                                     "whose arm to price)")
        if models.retention is not None and self.retention.save_rate != RetentionScoreSettings().save_rate:
            raise SettingError("retention.save_rate", "would be ignored: models.retention gives each customer's "
                                                      "uplift (set models.retention=null to use a save rate)")
        if models.winback is None:
            unused = [k for k in ("cost", "margin_rate") if getattr(self.winback, k) is not None]
            if unused:
                raise SettingError(f"winback.{unused[0]}", "would be ignored: models.winback is null (no win-back "
                                                           "list)")
        bad = {c: m for c, m in self.cross_sell.margins.items() if m < 0}
        if bad or self.cross_sell.default_margin < 0:
            key, value = next(iter(bad.items())) if bad else ("default_margin", self.cross_sell.default_margin)
            where = f"cross_sell.margins.{key}" if bad else "cross_sell.default_margin"
            raise SettingError(where, f"must be >= 0 (the margin of a sale), got {value}")
        if models.propensity is None and (self.cross_sell != CrossSellScoreSettings()):
            raise SettingError("cross_sell", "would be ignored: models.propensity is null (no cross-sell list)")
        if self.retention.cost < 0 or (self.winback.cost is not None and self.winback.cost < 0):
            key = "retention.cost" if self.retention.cost < 0 else "winback.cost"
            raise SettingError(key, "must be >= 0 (the cost of one contact)")
        return self


PIPELINES: dict[str, type[Section]] = {
    "clv": CLVConfig,
    "churn": ChurnConfig,
    "propensity": PropensityConfig,
    "segment": SegmentJobConfig,
    "uplift_winback": UpliftConfig,
    "uplift_campaign": UpliftCampaignConfig,
    "score": ScoreConfig,
}
