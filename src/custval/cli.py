"""`custval` command line: parses arguments, calls a job, prints the result. A CustvalError becomes its message
on stderr and exit status 2."""

from __future__ import annotations

import functools
import logging
import os
import signal
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from custval.errors import CustvalError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Customer value modelling, tracked in MLflow.")
train_app = typer.Typer(no_args_is_help=True, help="Train a pipeline from a config (pipelines/*.yaml).")
app.add_typer(train_app, name="train")
tune_app = typer.Typer(no_args_is_help=True, help="Tune a pipeline's hyper-parameters with Optuna (resumable).")
app.add_typer(tune_app, name="tune")
config_app = typer.Typer(no_args_is_help=True, help="Show the settings of a pipeline config.")
app.add_typer(config_app, name="config")
scorer_app = typer.Typer(no_args_is_help=True, help="The composite scorer custval-scorer, served by custval serve.")
app.add_typer(scorer_app, name="scorer")

# Tables need room: when output is not a terminal (make, CI, a pipe) rich would fold them at 80 columns.
console = Console() if Console().is_terminal else Console(width=150)
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="pipeline YAML; defaults built in")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a config key: key=value (repeatable)")]
TrackingOption = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow store (default sqlite:///mlflow.db)")]
PromoteOption = Annotated[bool, typer.Option("--promote", help="make the new version champion even when the current "
                                             "champion is better on its holdout or cannot score it")]


def _quiet_mlflow() -> None:
    """MLflow's INFO lines and download progress bars drown the results a user ran the command for; jobs draw
    their plots into files only (no window: the non-interactive backend unless the user chose one)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, without the source file and line it was raised from."""
    text = " ".join(str(message).split())
    err_console.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True, markup=True)


def _custval_errors(func):
    """Turn CustvalError into a one-line message and exit status 2; SIGINT / SIGTERM into one line and exit
    status 130 / 143 (the job's MLflow run is then FAILED and its outputs and aliases as they were)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        _quiet_mlflow()
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            # other libraries' deprecation notices are for custval's developers, not for its users
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category)
            try:
                return func(*args, **kwargs)
            except CustvalError as exc:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(code=2) from None
            except KeyboardInterrupt as exc:
                signum = getattr(exc, "signum", signal.SIGINT)
                err_console.print(f"[bold red]interrupted[/] by {signal.Signals(signum).name}: nothing was promoted; "
                                  "the MLflow run is marked FAILED and earlier outputs are unchanged",
                                  highlight=False, soft_wrap=True)
                raise typer.Exit(code=128 + int(signum)) from None

    return wrapper


@train_app.command("clv")
@_custval_errors
def train_clv_command(config: ConfigOption = None, set_: SetOption = None, tracking_uri: TrackingOption = None,
                      promote: PromoteOption = False):
    """BG/NBD + Gamma-Gamma CLV: fit, check on the holdout, log to MLflow, register as custval-clv."""
    from custval.jobs.train_clv import load_config, train_clv

    result = train_clv(load_config(config, set_ or []), tracking_uri=tracking_uri, promote=promote)
    _print_clv_result(result)


@train_app.command("churn")
@_custval_errors
def train_churn_command(config: ConfigOption = None, set_: SetOption = None, tracking_uri: TrackingOption = None,
                        promote: PromoteOption = False):
    """Churn: decision tree + calibrated XGBoost on point-in-time snapshots, registered as custval-churn."""
    from custval.jobs.train_churn import load_config, train_churn

    _print_churn_result(train_churn(load_config(config, set_ or []), tracking_uri=tracking_uri, promote=promote))


@train_app.command("propensity")
@_custval_errors
def train_propensity_command(config: ConfigOption = None, set_: SetOption = None,
                             tracking_uri: TrackingOption = None, promote: PromoteOption = False):
    """Cross-sell: one calibrated XGBoost per category, registered together as custval-propensity."""
    from custval.jobs.train_propensity import load_config, train_propensity

    _print_propensity_result(train_propensity(load_config(config, set_ or []), tracking_uri=tracking_uri,
                                              promote=promote))


@train_app.command("uplift")
@_custval_errors
def train_uplift_command(config: ConfigOption = None, set_: SetOption = None, tracking_uri: TrackingOption = None,
                         promote: PromoteOption = False):
    """Uplift of one randomised campaign: learners compared on validation Qini, the target list chosen for the
    most incremental profit, registered as custval-uplift-<campaign>."""
    from custval.jobs.train_uplift import load_config, train_uplift

    _print_uplift_result(train_uplift(load_config(config, set_ or []), tracking_uri=tracking_uri, promote=promote))


@app.command("score")
@_custval_errors
def score_command(
    as_of: Annotated[str | None, typer.Option("--as-of", help="scoring date (features use rows before it); "
                                              "default: the config's as_of")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="output file (.parquet or .csv); default: the "
                                            "config's output")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    tracking_uri: TrackingOption = None,
):
    """Score every customer as of a date with the registered models; rank for retention, win-back, cross-sell."""
    from custval.jobs.score import load_config, score

    overrides = list(set_ or [])
    if as_of is not None:
        overrides.append(f"as_of={as_of}")
    if out is not None:
        overrides.append(f"output={out}")
    _print_score_result(score(load_config(config, overrides), tracking_uri=tracking_uri))


@scorer_app.command("register")
@_custval_errors
def scorer_register_command(config: ConfigOption = None, set_: SetOption = None, tracking_uri: TrackingOption = None,
                            promote: Annotated[bool, typer.Option("--promote", help="make the new version champion "
                                                                  "even when a component is not its model's "
                                                                  "champion")] = False):
    """Build the scorer from the models of a score config (pipelines/score.yaml), log it in custval-scoring and
    register it as custval-scorer (champion when every component is a champion)."""
    from custval.jobs.register_scorer import register_scorer
    from custval.jobs.score import load_config

    _print_scorer_result(register_scorer(load_config(config, set_ or []), tracking_uri=tracking_uri,
                                         promote=promote))


@scorer_app.command("refresh")
@_custval_errors
def scorer_refresh_command(config: ConfigOption = None, set_: SetOption = None, tracking_uri: TrackingOption = None):
    """Re-register custval-scorer only when a component's champion has moved since the scorer champion; prints
    what moved. Restart `custval serve` to serve the new version."""
    from custval.jobs.register_scorer import register_scorer
    from custval.jobs.score import load_config

    _print_scorer_result(register_scorer(load_config(config, set_ or []), tracking_uri=tracking_uri,
                                         only_if_moved=True))


@app.command("serve")
@_custval_errors
def serve_command(
    model: Annotated[str, typer.Option("--model", "-m", help="registered model URI, e.g. "
                                       "models:/custval-scorer@champion")] = "models:/custval-scorer@champion",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="TCP port on 127.0.0.1")] = 5001,
    workers: Annotated[int, typer.Option("--workers", min=1, help="server worker processes")] = 1,
    tracking_uri: TrackingOption = None,
):
    """MLflow's scoring server for a registered custval model on 127.0.0.1 (env-manager local); the alias is
    resolved once at start: re-register and restart to roll a new version."""
    from custval.jobs.serve import serve

    def started(pinned: str, address: str) -> None:
        console.print(f"serving {pinned} at {address} (POST /invocations, GET /ping); Ctrl-C stops")

    status = serve(model, port, tracking_uri=tracking_uri, workers=workers, started=started)
    if status:
        raise typer.Exit(code=status)


@tune_app.command("churn")
@_custval_errors
def tune_churn_command(
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="trials to add to the study")] = 20,
    timeout: Annotated[float | None, typer.Option("--timeout", help="stop starting trials after S seconds")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    tracking_uri: TrackingOption = None,
    promote: PromoteOption = False,
):
    """Optuna TPE search of the churn XGBoost (nested MLflow runs; the study resumes), then refit and register."""
    from custval.jobs.train_churn import load_config
    from custval.jobs.tune_churn import tune_churn

    result = tune_churn(load_config(config, set_ or []), n_trials=trials, timeout=timeout, tracking_uri=tracking_uri,
                        promote=promote)
    console.rule(f"custval tune churn: study {result.study_name}")
    console.print(f"{result.n_trials} trials in the study ({result.n_complete} complete, {result.n_pruned} pruned); "
                  f"best validation ROC AUC {result.best_value:.4f}")
    best = Table(title="Best XGBoost parameters")
    best.add_column("parameter")
    best.add_column("value", justify="right")
    for key, value in result.best_params.items():
        best.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(best)
    console.print(f"tuning run {result.tune_run_id} (trials nested under it); Optuna storage {result.storage}")
    _print_churn_result(result.train)


@app.command()
@_custval_errors
def demo(tracking_uri: TrackingOption = None):
    """The main job on built-in defaults: CLV on the CDNOW log shipped with lifetimes, tracked in SQLite."""
    from custval.jobs.train_clv import CLVConfig, train_clv

    console.rule("custval demo: CLV on CDNOW (23,570 customers, Jan 1997 - Jun 1998)")
    _print_clv_result(train_clv(CLVConfig(), tracking_uri=tracking_uri))


@app.command()
@_custval_errors
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="transactions file to write (.csv or .parquet)")],
    customers: Annotated[int, typer.Option(help="number of customers")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    truth: Annotated[Path | None, typer.Option(help="also write the ground truth table here (bgnbd)")] = None,
    kind: Annotated[str, typer.Option(help="bgnbd (a CDNOW-like log) or retail-export (an Online-Retail-like "
                                           "invoice export)")] = "bgnbd",
    products: Annotated[Path | None, typer.Option(help="also write the product master here (retail-export)")] = None,
):
    """Simulate a customer base: a BG/NBD + Gamma-Gamma log (CDNOW-like, daily) and its ground truth, or an
    invoice export shaped like the public Online Retail file (text dates, float ids with gaps, cancellations,
    zero prices, duplicates) and its product master."""
    from custval.jobs.simulate import simulate as run_simulate

    result = run_simulate(out=out, customers=customers, seed=seed, truth=truth, kind=kind, products=products)
    console.print(f"wrote {result.n_transactions:,} rows of {result.n_customers:,} customers to "
                  f"{result.outputs['--out']}")
    for setting, what in (("--truth", "the ground truth"), ("--products", "the product master")):
        if setting in result.outputs:
            console.print(f"wrote {what} to {result.outputs[setting]}")


@config_app.command("show")
@_custval_errors
def config_show(
    pipeline: Annotated[str, typer.Argument(help="clv, churn, propensity or segment")],
    config: ConfigOption = None,
    set_: SetOption = None,
):
    """Every key of a pipeline config with its value (the built-in default unless --config/--set change it)
    and a one-line description."""
    from custval.config import describe
    from custval.jobs.inspect import PIPELINE_JOBS, load_config

    if pipeline not in PIPELINE_JOBS:
        raise CustvalError(f"pipeline must be one of {sorted(PIPELINE_JOBS)}, got {pipeline!r}")
    # the job's own load_config: the estimators check their settings, as `custval train` would
    resolved = load_config(pipeline, config, set_ or [])
    title = "defaults" if config is None and not set_ else "resolved settings"
    table = Table(title=f"custval {pipeline} config: {title}", show_lines=False)
    for column in ("key", "value", "description"):
        table.add_column(column, overflow="fold")
    for key, value, description in describe(resolved):
        table.add_row(key, value, description)
    console.print(table)


@app.command()
@_custval_errors
def segment(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="per-customer segments file (.parquet or .csv); "
                                              "default: `output` of the config")] = None,
    tracking_uri: TrackingOption = None,
):
    """RFM cells, CLV tiers, value x loyalty, purchase-cycle grid and lifecycle stage per customer, logged to MLflow."""
    from custval.jobs.segment import load_config
    from custval.jobs.segment import segment as run_segment

    _print_segment_result(run_segment(load_config(config, set_ or []), out=out, tracking_uri=tracking_uri))


@app.command("inspect")
@_custval_errors
def inspect_command(
    config: ConfigOption = None,
    set_: SetOption = None,
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="whose config: clv, churn, propensity or "
                                          "segment")] = "clv",
):
    """Data-quality summary of the transaction log as the config maps it, and the settings it suggests; reads
    the log once and writes nothing."""
    import shlex

    from custval.jobs.inspect import inspect_data, load_config

    quality = inspect_data(load_config(pipeline, config, set_ or []))
    console.rule(f"custval inspect: {quality.source} ({pipeline} config)")
    overview = Table(title="The log as mapped")
    overview.add_column("item")
    overview.add_column("value", overflow="fold")
    for item, row in quality.overview().iterrows():
        overview.add_row(item, row.value)
    console.print(overview)
    issues = Table(title="What the data.* policies find (share of the rows read)")
    for column in ("issue", "rows", "share"):
        issues.add_column(column, justify="left" if column == "issue" else "right")
    for item, row in quality.issues().iterrows():
        issues.add_row(item, "n/a" if row.rows != row.rows else f"{row.rows:,.0f}",
                       "" if row.share != row.share else f"{row.share:.2%}")
    console.print(issues)
    if len(quality.purchase_days):
        history = Table(title=f"Purchase days per customer ({quality.customers:,} customers)")
        history.add_column("statistic")
        history.add_column("purchase days", justify="right")
        for item, value in quality.history().iloc[:, 0].items():
            history.add_row(item, f"{value:.1%}" if "share" in item else f"{value:,.2f}".rstrip("0").rstrip("."))
        console.print(history)
    if quality.categories is not None:
        categories = Table(title="Categories")
        for column in ("category", "rows", "share", "customers"):
            categories.add_column(column, justify="left" if column == "category" else "right")
        for name, row in quality.categories.iterrows():
            categories.add_row(str(name), f"{row.rows:,.0f}", f"{row.share:.1%}", f"{row.customers:,.0f}")
        console.print(categories)
    if not quality.suggestions:
        console.print("no setting to suggest: the log loads as configured")
        return
    suggested = Table(title="Suggested settings")
    for column in ("setting", "value", "why"):
        suggested.add_column(column, overflow="fold")
    for s in quality.suggestions:
        suggested.add_row(s.setting, s.value, s.reason)
    console.print(suggested)
    sets = " ".join(f"--set {shlex.quote(f'{s.setting}={s.value}')}" for s in quality.suggestions
                    if " or " not in s.value)
    if sets:
        console.print(f"as options: {sets}", highlight=False, soft_wrap=True)


SEGMENT_TITLES = {
    "tier": "CLV tiers (customer pyramid)",
    "value_loyalty": "Value x loyalty matrix",
    "cycle_class": "Purchase cycle x spend grid",
    "lifecycle_stage": "Lifecycle stages",
    "rfm_score": "Combined RFM score",
}


def _print_segment_result(result) -> None:
    n = len(result.customers)
    console.rule(f"custval segment: {n:,} customers as of {result.as_of.date()} "
                 f"(CLV: {result.clv_source}, period {result.clv_period})")
    for kind, title in SEGMENT_TITLES.items():
        summary = result.summaries.get(kind)
        if summary is None:
            continue
        table = Table(title=title)
        table.add_column(kind)
        for column in ("customers", "% customers", "revenue", "% revenue", "mean CLV", "% CLV"):
            table.add_column(column, justify="right")
        for label, row in summary.iterrows():
            table.add_row(str(label), f"{row.customers:,.0f}", f"{row.customer_share:.1%}", f"{row.revenue:,.0f}",
                          f"{row.revenue_share:.1%}", f"{row.mean_clv:,.2f}", f"{row.clv_share:.1%}")
        console.print(table)
    pareto = Table(title="Concentration: share held by the top customers")
    for column in ("top customers", "revenue share", "CLV share"):
        pareto.add_column(column, justify="right")
    for top, row in result.pareto.iterrows():
        pareto.add_row(f"{top:.0%}" if top >= 0.01 else f"{top:.1%}", f"{row.revenue:.1%}", f"{row.clv:.1%}")
    console.print(pareto)
    m = result.metrics
    if result.migration_periods is not None:
        first, last = result.migration_periods
        console.print(f"RFM migration {first.date()} -> {last.date()} ({m['migration_customers']:,.0f} customers): "
                      f"{m['migration_up_share']:.1%} up, {m['migration_same_share']:.1%} same combined score, "
                      f"{m['migration_down_share']:.1%} down")
    if result.rollout is not None:
        plan = result.rollout
        console.print(f"rollout: break-even response rate {plan.break_even_rate:.2%}; mail {len(plan.selected_cells)} "
                      f"cells ({plan.contacts_rollout:,} contacts), expected profit {plan.expected_profit_rollout:,.2f} "
                      f"vs {plan.expected_profit_all:,.2f} mailing all {plan.contacts_all:,}")
    console.print(f"MLflow run {result.run_id} (experiment id {result.experiment_id}) in {result.tracking_uri}")
    console.print(f"tables: {result.artifact_uri}/tables/ ({len(result.tables)} CSV files)")
    console.print(f"plots: {result.artifact_uri}/plots/ ({', '.join(Path(p).name for p in result.plots)})")
    if result.output is not None:
        console.print(f"segments for {n:,} customers: {result.output}")
    console.print(f"browse: mlflow ui --backend-store-uri {result.tracking_uri}")


def _print_clv_result(result) -> None:
    params = Table(title="Fitted parameters (whole window)", show_lines=False)
    for column in ("model", "parameter", "estimate", "std. error"):
        params.add_column(column, justify="right" if column in ("estimate", "std. error") else "left")
    for key, value in result.params.items():
        if key.endswith("_se") or key.endswith("log_likelihood"):
            continue
        model, name = key.split("_", 1)
        params.add_row("BG/NBD" if model == "bgnbd" else "Gamma-Gamma", name, f"{value:.4f}",
                       f"{result.params[key + '_se']:.4f}")
    console.print(params)

    as_of = result.scores["as_of"].iloc[0].date()
    top = Table(title=f"Top {len(result.top_customers)} customers by CLV (as of {as_of})")
    for column in ("customer_id", "frequency", "recency", "T", "monetary_value", "expected_purchases", "p_alive",
                   "expected_spend", "clv"):
        top.add_column(column, justify="right")
    for customer_id, row in result.top_customers.iterrows():
        top.add_row(str(customer_id), f"{row.frequency:.0f}", f"{row.recency:.1f}", f"{row['T']:.1f}",
                    f"{row.monetary_value:.2f}", f"{row.expected_purchases:.2f}", f"{row.p_alive:.3f}",
                    f"{row.expected_spend:.2f}", f"{row.clv:.2f}")
    console.print(top)

    check = Table(title=f"Holdout check: repeat purchases {result.calibration_end.date()} -> "
                        f"{result.observation_end.date()} (model fitted on the calibration period)")
    for column in ("purchases in calibration", "customers", "actual (mean)", "predicted (mean)"):
        check.add_column(column, justify="right")
    for label, row in result.by_frequency.iterrows():
        check.add_row(str(label), f"{row.customers:,.0f}", f"{row.actual:.3f}", f"{row.predicted:.3f}")
    console.print(check)
    m = result.metrics
    console.print(
        f"holdout total: actual {m['holdout_actual_total']:,.0f}, predicted {m['holdout_predicted_total']:,.1f} "
        f"({m['holdout_total_rel_error']:+.2%}); per customer MAE {m['holdout_mae']:.3f}, RMSE {m['holdout_rmse']:.3f}"
    )
    _print_registration(result)
    console.print(f"artifacts and plots: {result.artifact_uri}/plots/ ({', '.join(Path(p).name for p in result.plots)})")
    if result.output is not None:
        console.print(f"scores for {len(result.scores):,} customers: {result.output}")
    console.print(f"browse: mlflow ui --backend-store-uri {result.tracking_uri}")


CHURN_METRICS = (("roc_auc", "ROC AUC"), ("pr_auc", "PR AUC"), ("log_loss", "log loss"), ("brier", "Brier"),
                 ("lift_10", "lift at 10%"), ("capture_10", "capture at 10%"), ("base_rate", "churn rate"))
MODEL_NAMES = {"xgboost": "XGBoost", "logistic": "logistic regression", "average": "average (XGBoost + logistic)"}


def _fmt(value) -> str:
    return "" if value is None or value != value else f"{value:.4f}"


def _cell(value) -> str:
    """A table cell of any type: floats to 4 significant digits, missing values as blanks."""
    text = _text(value)
    return f"{value:,.4g}" if text and isinstance(value, float) else text


def _text(value) -> str:
    """A table cell: missing values (None, NaN, <NA>) as blanks."""
    import pandas as pd

    return "" if pd.isna(value) else str(value)


def _print_registration(result) -> None:
    if result.promotion is not None:
        p = result.promotion
        status = "champion" if p.promoted else "challenger (champion kept)"
        console.print(f"registered model: {p.name} v{p.version} -> {status}; {p.reason}")
    console.print(f"MLflow run {result.run_id} (experiment id {result.experiment_id}) in {result.tracking_uri}")


def _print_churn_result(result) -> None:
    m = result.metrics
    where = (f"{len(result.cutoffs)} cutoffs {result.cutoffs[0].date()} .. {result.cutoffs[-1].date()}"
             if result.kind == "snapshots" else "customer table, stratified random split")
    console.rule(f"custval train churn: {m['n_train']:,.0f} train / {m['n_valid']:,.0f} valid / "
                 f"{m['n_test']:,.0f} test rows ({where})")
    choice = Table(title=f"Model choice: {m['n_cv_folds']:.0f}-fold cross-validation on train + valid")
    for column in ("candidate", "CV ROC AUC", "(sd)", "CV log loss", "trees", ""):
        choice.add_column(column, justify="left" if column in ("candidate", "") else "right")
    for name, row in result.model_choice.iterrows():
        choice.add_row(MODEL_NAMES.get(name, name), _fmt(row.cv_roc_auc), _fmt(row.cv_roc_auc_std),
                       _fmt(row.cv_log_loss), "" if row.n_trees != row.n_trees else f"{row.n_trees:.0f}",
                       "chosen" if row.chosen else "")
    console.print(choice)
    chosen = MODEL_NAMES.get(result.chosen, result.chosen)
    table = Table(title=f"Test metrics ({chosen} refitted on train + valid; the tree on train; both calibrated)")
    table.add_column("metric")
    columns = [(chosen, "test_"), ("tree", "tree_test_")]
    if "oracle_test_roc_auc" in m:
        columns.append(("oracle (simulator)", "oracle_test_"))
    for name, _ in columns:
        table.add_column(name, justify="right")
    for key, label in CHURN_METRICS:
        table.add_row(label, *(_fmt(m.get(prefix + key)) for _, prefix in columns))
    console.print(table)
    trees = f"; XGBoost {result.best_iteration + 1} trees (early stopping in the folds, scaled to the refit)" \
        if result.best_iteration is not None else ""
    console.print(f"{chosen}: calibration {result.calibration[result.chosen]}{trees}; tree calibration "
                  f"{result.calibration['tree']}")
    as_of = f" as of {result.as_of.date()}" if result.as_of is not None else ""
    top = Table(title=f"{len(result.top_customers)} customers most at risk{as_of}")
    top.add_column("customer_id")
    top.add_column("churn probability", justify="right")
    reasons = [c for c in result.top_customers.columns if c.startswith("reason_")]
    for column in reasons:
        top.add_column(column.replace("_", " "))
    for _, row in result.top_customers.iterrows():
        top.add_row(str(row["customer_id"]), f"{row['churn_probability']:.3f}",
                    *(_text(row[c]) for c in reasons))
    console.print(top)
    _print_registration(result)
    console.print(f"plots: {result.artifact_uri}/plots/ ({', '.join(Path(p).name for p in result.plots)})")
    if result.output is not None:
        console.print(f"churn scores for {len(result.scores):,} customers: {result.output}")
    console.print(f"browse: mlflow ui --backend-store-uri {result.tracking_uri}")


LEARNER_NAMES = {"s": "S-learner", "t": "T-learner", "x": "X-learner", "dr": "DR-learner",
                 "class_transformation": "class transformation"}


def _print_uplift_result(result) -> None:
    m = result.metrics
    console.rule(f"custval train uplift: campaign {result.campaign or 'table'}, arms {', '.join(result.arms)} vs "
                 f"{result.control}; {m['n_train']:,.0f} train / {m['n_valid']:,.0f} valid / {m['n_test']:,.0f} test")
    learners = Table(title="Learners by validation Qini (mean over arms)")
    folds = "valid_qini_se" in result.learners  # model.n_folds >= 2: the standard error over folds
    for column in ("learner", "valid Qini", *(("± SE",) if folds else ()), "valid uplift@k", ""):
        learners.add_column(column, justify="left" if column in ("learner", "") else "right")
    for name, row in result.learners.iterrows():
        learners.add_row(LEARNER_NAMES.get(name, name), _fmt(row.valid_qini),
                         *((_fmt(row.valid_qini_se),) if folds else ()), _fmt(row.valid_uplift_at_k),
                         "chosen" if row.chosen else "")
    console.print(learners)
    if "valid_qini_tuned" in m:
        console.print(f"tuned its XGBoost settings in {m['n_trials']:,.0f} trials (model.n_trials): validation Qini "
                      f"{_fmt(m['valid_qini_tuned'])}, untuned {_fmt(m[f'{result.chosen}_valid_qini'])}")
    test = Table(title=f"Test ({LEARNER_NAMES.get(result.chosen, result.chosen)} refitted on train + valid)")
    for column in ("arm", "Qini", "AUUC", "uplift@k", "Qini of the true uplift"):
        test.add_column(column, justify="left" if column == "arm" else "right")
    for arm in result.arms:
        test.add_row(arm, _fmt(m.get(f"test_qini_{arm}")), _fmt(m.get(f"test_auuc_{arm}")),
                     _fmt(m.get(f"test_uplift_at_k_{arm}")), _fmt(m.get(f"oracle_test_qini_{arm}")))
    console.print(test)
    policy = Table(title="Off-policy value on the test customers (incremental profit, 95% interval)")
    for column in ("policy", "contacts", "incremental conversions", "incremental profit", "interval"):
        policy.add_column(column, justify="left" if column == "policy" else "right")
    for name, label in (("profit", "profit-based selection"), ("top_share", "top share by uplift"),
                        ("everyone", "contact everyone")):
        p = result.policy[name]
        policy.add_row(label, f"{p.contacts:,.0f}", f"{p.incremental_responses:,.1f}",
                       f"{p.incremental_profit:,.0f}", f"[{p.ci_low:,.0f}, {p.ci_high:,.0f}]")
    console.print(policy)
    plan = result.plan
    mix = ", ".join(f"{arm} {n:,}" for arm, n in plan.arm_mix.items())
    console.print(f"target list: {plan.contacts:,} of {len(plan.customers):,} customers ({mix}); expected "
                  f"incremental profit {plan.total_profit:,.0f} for a spend of {plan.spend:,.0f}")
    head = Table(title="Top targets")
    columns = ["customer_id", "arm", "expected_profit", "value", *[f"uplift_{a}" for a in result.arms]]
    for column in columns:
        head.add_column(column, justify="left" if column in ("customer_id", "arm") else "right")
    for _, row in result.targets.head(10).iterrows():
        head.add_row(*(str(row[c]) if c in ("customer_id", "arm") else _fmt(row[c]) for c in columns))
    console.print(head)
    _print_registration(result)
    if result.output is not None:
        console.print(f"wrote the target list to {result.output}")


def _print_scorer_result(result) -> None:
    if result.moved and result.champion is not None:
        for role, (before, now) in result.moved.items():
            console.print(f"moved: models.{role} {before} -> {now}")
    if result.version is None:
        console.print(result.reason)
        return
    alias = "champion" if result.promoted else "challenger"
    console.rule(f"custval scorer: custval-scorer v{result.version} ({alias})")
    for role, label in result.components.items():
        console.print(f"  {role:<11} {label}")
    console.print(f"{result.reason}; default history_start {result.history_start.date()}; run {result.run_id}")
    console.print("serve it with: custval serve --model models:/custval-scorer@champion --port 5001")


def _print_score_result(result) -> None:
    s = result.summary
    console.rule(f"custval score: {int(s['n_customers']):,} customers as of {result.as_of.date()}")
    for role, ref in result.models.items():
        console.print(f"{role}: {ref['name']} v{ref['version']}" if ref["name"] else f"{role}: {ref['uri']}")
    console.print(f"retention uplift: {result.metadata['custval.retention_uplift']}; "
                  f"lapsed customers: {int(s['n_lapsed']):,} (no purchase in {result.metadata['custval.lapse_days']} "
                  "days)")
    if "value_at_risk" in s:
        console.print(f"value at risk (churn probability x CLV): {s['value_at_risk']:,.0f} of total CLV "
                      f"{s['total_clv']:,.0f}")
    for name, head in result.lists.items():
        profit = s.get(f"{name}_expected_profit")
        title = f"{name}: {int(s[f'{name}_listed']):,} customers listed" + (
            f", expected profit {profit:,.0f}" if profit is not None else "")
        table = Table(title=title)
        for column in head.columns:  # short headings: the list's name is the title
            table.add_column(column.removeprefix(f"{name}_").replace("churn_probability", "p_churn"),
                             justify="left" if column.startswith(("reason", "cross_sell_category")) else "right")
        for row in head.itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
    if result.output is not None:
        console.print(f"scores: {result.output}")
    if result.report is not None:
        console.print(f"report: {result.report}")
    console.print(f"MLflow run {result.run_id} in {result.tracking_uri}")


def _print_propensity_result(result) -> None:
    console.rule(f"custval train propensity: {len(result.categories)} categories, cutoffs "
                 f"{result.cutoffs[0].date()} .. {result.cutoffs[-1].date()}")
    table = Table(title="Per-category test metrics (each category's model chosen by cross-validation, calibrated)")
    by = result.by_category
    columns = ["category", "model", "train rows", "test rate", "ROC AUC", "PR AUC", "Brier", "calibration"]
    has_oracle = "oracle_test_roc_auc" in by.columns
    if has_oracle:
        columns[7:7] = ["oracle ROC AUC", "oracle Brier"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("category", "model", "calibration") else "right")
    for category, row in by.iterrows():
        cells = [str(category), MODEL_NAMES.get(row.model, row.model), f"{row.n_train:,.0f}", f"{row.test_rate:.3f}",
                 f"{row.test_roc_auc:.4f}", f"{row.test_pr_auc:.4f}", f"{row.test_brier:.4f}"]
        if has_oracle:
            cells += [f"{row.oracle_test_roc_auc:.4f}", f"{row.oracle_test_brier:.4f}"]
        table.add_row(*cells, str(row.calibration))
    console.print(table)
    m = result.metrics
    line = f"mean test ROC AUC {m['mean_test_roc_auc']:.4f}"
    if "mean_oracle_test_roc_auc" in m:
        line += f" (oracle {m['mean_oracle_test_roc_auc']:.4f})"
    console.print(line)
    console.print(f"cross-sell as of {result.as_of.date()}: each customer's most likely category among those "
                  "not bought yet")
    top = Table(title=f"Top {len(result.top_customers)} cross-sell suggestions")
    for column in ("customer_id", "category", "probability"):
        top.add_column(column, justify="right" if column == "probability" else "left")
    for _, row in result.top_customers.iterrows():
        top.add_row(str(row["customer_id"]), _text(row["cross_sell_category"]), _fmt(row["cross_sell_score"]))
    console.print(top)
    _print_registration(result)
    if result.output is not None:
        console.print(f"propensity scores for {len(result.scores):,} customers: {result.output}")
    console.print(f"browse: mlflow ui --backend-store-uri {result.tracking_uri}")


def main() -> None:  # pragma: no cover - console entry point (tested through a subprocess)
    """The `custval` command: a usage error (unknown option, missing argument, a value of the wrong type) is
    one `error:` line and exit status 2 too, like every other malformed input."""
    command = typer.main.get_command(app)
    try:
        status = command.main(prog_name="custval", standalone_mode=False)
    except typer.TyperException as exc:  # typer's click exceptions (usage errors among them)
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        message = " ".join((exc.format_message() if hasattr(exc, "format_message") else str(exc)).split())
        if message:  # (a command given without its subcommand has printed its help instead)
            err_console.print(f"[bold red]error:[/] {message}{where}", highlight=False, soft_wrap=True)
        raise SystemExit(getattr(exc, "exit_code", 2) or 2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    raise SystemExit(status if isinstance(status, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
