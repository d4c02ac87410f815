"""Train uplift for one randomised campaign: the campaign's customers (a transaction log + campaign log, the
simulated campaigns, or a campaign table) -> train / valid / test at random, stratified on arm x outcome ->
every configured learner compared by mean Qini over model.n_folds folds of train + valid (0: fitted on train,
scored on valid; `average` is the mean of the listed model.average learners) -> one chosen by model.choice
(stack: `average` weighted by stacking on the members' out-of-fold uplift; one_se: `average` within one standard
error of the best, else the best) -> with model.n_trials > 0, the chosen one's XGBoost settings tuned on the same
validation Qini (custval.models.uplift.tuning: the first trial is the untuned model.xgboost; each trial a nested
MLflow run of the job's run, which is open from the learner choice on) -> the chosen one refitted on train + valid
(refit_choice, with the tuned settings; stack: each member's refit averaged with its fold models, the refits only
when tuned)
-> test metrics (Qini, AUUC, uplift@k per arm; the off-policy value of contacting the top share; on simulated
data the Qini of the true uplift) -> the customers to rank (lapsed or active as of the day after the log, or
the campaign table's own) scored: uplift per arm, the value of a response (a margin, or the second lifetime
value learnt from customers who lapsed and came back), expected incremental profit, at most one arm each under
the budget -> one MLflow run -> registered as custval-uplift-<campaign> (challenger) -> the target list written
-> champion when its test Qini is at least the champion's on the same test customers.

The defaults are the simulated winback campaign (`pipelines/uplift_winback.yaml`); `pipelines/uplift_campaign.yaml`
is the simulated crosssell campaign with two treatment arms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from custval.config import PIPELINES, UpliftConfig, build_config, validate_config
from custval.errors import ConfigError, CustvalError
from custval.features.campaigns import campaign_population, load_campaign
from custval.features.winback import lapse_features, lapsed_customers, reactivations
from custval.jobs.sequence import Champion, Output, TrainedRun, check_settings, start_job
from custval.jobs.snapshot_jobs import check_kwargs, finite
from custval.metrics.uplift import policy_value
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.second_value import SecondLifetimeValue
from custval.models.uplift.selection import (
    arm_scores,
    average_pool,
    choose_learner,
    make_learner,
    refit_choice,
    split_campaign,
)
from custval.models.uplift.tuning import tune_learner
from custval.plots.uplift import plot_profit_curve, plot_qini, plot_uplift_by_decile
from custval.scoring.targeting import incremental_profit, select_targets
from custval.tracking import runs
from custval.tracking.models import load_uplift_model
from custval.tracking.registry import HoldoutScore, champion_version
from custval.tracking.tuning import log_trial
from custval.tracking.uplift_pyfunc import log_uplift_model

CHAMPION_METRIC = "test_qini"  # mean over treatment arms, higher is better
JOB_XGBOOST_KEYS = ("random_state", "callbacks", "scale_pos_weight")


def check_config(config: UpliftConfig) -> UpliftConfig:
    """The config re-validated and the learners' settings checked by the estimators' own rules, before any data."""
    config = validate_config(type(config), config.model_dump())
    check_kwargs("model.xgboost", config.model.xgboost, BoostedClassifier, JOB_XGBOOST_KEYS)
    check_kwargs("model.xgboost", config.model.xgboost, BoostedRegressor, JOB_XGBOOST_KEYS)
    continuous = config.model.target == "spend"
    members = average_pool(config.model.learners, config.model.average)
    for name in config.model.learners:
        if name == "class_transformation" and continuous:
            continue
        check_settings(lambda name=name: make_learner(name, xgboost=config.model.xgboost, continuous=continuous,
                                                      members=members).check_params(),
                       prefix="model.")
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                pipeline: str = "uplift_winback") -> UpliftConfig:
    """Defaults of `pipeline` (uplift_winback or uplift_campaign), updated by the YAML file at `path`, then by
    `key=value` overrides."""
    if pipeline not in ("uplift_winback", "uplift_campaign"):
        raise ConfigError(f"pipeline must be uplift_winback or uplift_campaign, got {pipeline!r}")
    return check_config(build_config(PIPELINES[pipeline], path, overrides))


@dataclass
class TrainUpliftResult(TrainedRun):
    kind: str  # "log" or "table"
    campaign: str | None
    arms: list[str]
    control: str
    metrics: dict[str, float]
    learners: pd.DataFrame  # one row per learner: valid_qini (mean over arms), per arm, chosen
    chosen: str
    model: Any  # the chosen learner refitted on train + valid
    test: pd.DataFrame  # customer_id, treatment, outcome, uplift_<arm>, value, target_arm (the profit rule's;
    # <NA>: not contacted), true_uplift_<arm> when simulated
    targets: pd.DataFrame  # the ranked customers: customer_id, arm, expected_profit, rank, uplift_<arm>, value
    plan: Any  # custval.scoring.targeting.TargetPlan
    policy: dict[str, Any]  # off-policy estimates on the test customers (custval.metrics.uplift.PolicyValue)
    plots: list[str]
    output: Path | None
    tuned_params: dict[str, Any] | None = None  # model.n_trials > 0: the tuned model.xgboost of the refit


def train_uplift(config: UpliftConfig, *, tracking_uri: str | None = None, promote: bool = False
                 ) -> TrainUpliftResult:
    """Run the uplift pipeline once (module docstring). promote: make the new version champion even when the
    current champion is better on this run's test customers or cannot score them."""
    config = check_config(config)
    with start_job(outputs={"output": config.output}, tracking_uri=tracking_uri,
                   experiment=config.experiment) as job:
        return _train(config, job, promote)


def _check_costs(config: UpliftConfig, arms: list[str]) -> None:
    cost = config.targeting.cost
    if isinstance(cost, dict):
        unknown = sorted(set(cost) - set(arms))
        missing = [a for a in arms if a not in cost]
        if unknown or missing:
            raise ConfigError(f"targeting.cost must give a cost per contact for every treatment arm {arms}, got "
                              f"{dict(cost)} (e.g. targeting.cost={{{', '.join(f'{a}: 1.0' for a in arms)}}})")


def _response_values(config: UpliftConfig, ids: pd.Series, lapses: pd.DataFrame | None,
                     value_model: SecondLifetimeValue | None) -> np.ndarray:
    """The profit of one response per customer: the margin, the margin rate x the second lifetime value, or
    the margin rate (model.target=spend: the uplift is already money)."""
    t = config.targeting
    if config.model.target == "spend":
        return np.full(len(ids), t.margin_rate)
    if config.response_value == "margin":
        return np.full(len(ids), t.margin)
    return t.margin_rate * value_model.predict(lapse_features(lapses))


def _value_recipe(config: UpliftConfig, arms: list[str], cost) -> dict[str, Any]:
    """The response value and targeting the model's recipe records (custval.features.snapshots.ResponseValue),
    as `_response_values` applies them."""
    t = config.targeting
    kind = "spend" if config.model.target == "spend" else config.response_value
    return {"response_value": kind, "margin": t.margin if kind == "margin" else None,
            "margin_rate": None if kind == "margin" else t.margin_rate, "lapse_days": config.winback.lapse_days,
            "population": config.population,
            "costs": dict(cost) if isinstance(cost, dict) else {arm: float(cost) for arm in arms},
            "horizon_days": config.winback.horizon_days}


def _lapses_at(transactions: pd.DataFrame, ids: pd.Series, when: pd.Series, lapse_days: int) -> pd.DataFrame:
    """The LAPSE_FEATURES of each (customer, date), from the rows before that date (send days of a campaign)."""
    parts = []
    days = pd.to_datetime(when).dt.normalize()
    for day in sorted(days.unique()):
        rows = (days == day).to_numpy()
        at = lapsed_customers(transactions, pd.Timestamp(day), lapse_days=1).set_index("customer_id")
        parts.append(at.reindex(ids[rows].to_numpy()).set_axis(np.flatnonzero(rows)))
    frame = pd.concat(parts).sort_index()
    return frame.fillna({"orders_before": 0.0, "mean_order_before": 0.0, "tenure_days": 0.0,
                         "lapse_days": float(lapse_days)})


def _train(config: UpliftConfig, job, promote: bool) -> TrainUpliftResult:
    source = load_campaign(config)
    data = source.data
    arms = [str(a) for a in data.arms]
    control = str(data.control)
    _check_costs(config, arms)
    continuous = config.model.target == "spend"
    y = (data.spend if continuous else data.y).to_numpy(dtype=float)
    treatment = data.treatment.astype(str).to_numpy(dtype=object)
    train, valid, test = split_campaign(treatment, y, valid_fraction=config.split.valid_fraction,
                                        test_fraction=config.split.test_fraction, seed=config.seed)
    X = data.X
    top = config.targeting.top_share
    provenance = {"custval.data_kind": source.kind, "custval.campaign": str(data.campaign_id or "table"),
                  "custval.arms": ",".join(arms), "custval.target": config.model.target}
    # the run is open while the learners are fitted, so the tuning trials are nested runs of it
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=source.fingerprint, tags=provenance) as run:
        choice = choose_learner(config.model.learners, X.iloc[train], y[train], treatment[train], X.iloc[valid],
                                y[valid], treatment[valid], arms=arms, control=control,
                                xgboost=config.model.xgboost, continuous=continuous, random_state=config.seed, k=top,
                                n_folds=config.model.n_folds, average=config.model.average,
                                rule=config.model.choice)
        mlflow.set_tag("custval.chosen_learner", choice.chosen)
        mlflow.log_param("chosen_learner", choice.chosen)
        if choice.weights:
            mlflow.log_params({f"stack_weight_{name}": round(w, 6) for name, w in choice.weights.items()})
        xgboost, tuned_metrics = dict(config.model.xgboost), {}
        if config.model.n_trials:
            tuning = tune_learner(choice.chosen, X.iloc[train], y[train], treatment[train], X.iloc[valid], y[valid],
                                  treatment[valid], arms=arms, control=control, continuous=continuous,
                                  base_params=xgboost, n_trials=config.model.n_trials, seed=config.seed,
                                  callbacks=[log_trial], members=choice.members, n_folds=config.model.n_folds)
            xgboost = tuning.best_params
            mlflow.log_params({f"tuned.{k}": v for k, v in xgboost.items()})
            tuned_metrics = {"n_trials": float(len(tuning.study.trials)), "valid_qini_tuned": tuning.best_value}
        fit_rows = np.concatenate([train, valid])
        model = refit_choice(choice, X.iloc[fit_rows], y[fit_rows], treatment[fit_rows], arms=arms, control=control,
                             xgboost=xgboost, continuous=continuous, random_state=config.seed,
                             bag=not config.model.n_trials)

        X_test, y_test, t_test = X.iloc[test], y[test], treatment[test]
        u_test = np.asarray(model.predict(X_test), dtype=float).reshape(len(test), -1)
        scores = arm_scores(y_test, u_test, t_test, arms, control, k=top)
        metrics: dict[str, float] = {"test_qini": float(scores["qini"].mean()),
                                     "test_auuc": float(scores["auuc"].mean()),
                                     "test_uplift_at_k": float(scores["uplift_at_k"].mean())}
        for arm, row in scores.iterrows():
            metrics |= {f"test_qini_{arm}": row["qini"], f"test_auuc_{arm}": row["auuc"],
                        f"test_uplift_at_k_{arm}": row["uplift_at_k"]}
        for name, row in choice.table.iterrows():
            metrics[f"{name}_valid_qini"] = row["valid_qini"]
            if "valid_qini_se" in row:
                metrics[f"{name}_valid_qini_se"] = row["valid_qini_se"]
        metrics |= tuned_metrics
        test_frame = pd.DataFrame({"customer_id": data.customer_id.iloc[test].to_numpy(), "treatment": t_test,
                                   "outcome": y_test, **{f"uplift_{a}": u_test[:, j] for j, a in enumerate(arms)}})
        if source.truth is not None:
            truth = source.truth.iloc[test]
            prefix = "spend_uplift_" if continuous else "uplift_"
            true = np.column_stack([truth[f"{prefix}{a}"].to_numpy(dtype=float) for a in arms])
            oracle = arm_scores(y_test, true, t_test, arms, control, k=top)
            metrics["oracle_test_qini"] = float(oracle["qini"].mean())
            for j, a in enumerate(arms):
                test_frame[f"true_uplift_{a}"] = true[:, j]
                metrics[f"oracle_test_qini_{a}"] = float(oracle.loc[a, "qini"])

        # the value of a response, for the test customers (the policy estimates) and for those to rank
        value_model = None
        t = config.targeting
        if config.response_value == "second_lifetime_value":
            returns = reactivations(source.transactions, source.as_of, lapse_days=config.winback.lapse_days,
                                    horizon_days=config.winback.horizon_days)
            value_model = SecondLifetimeValue().fit(lapse_features(returns), returns["value"].to_numpy())
            metrics["n_past_returns"] = float(value_model.n_returns_)
            metrics["mean_past_return_value"] = value_model.mean_value_
        test_ids = data.customer_id.iloc[test].reset_index(drop=True)
        test_lapses = (_lapses_at(source.transactions, test_ids, data.sent_at.iloc[test].reset_index(drop=True),
                                  config.winback.lapse_days) if value_model is not None else None)
        value_test = _response_values(config, test_ids, test_lapses, value_model)
        cost = dict(t.cost) if isinstance(t.cost, dict) else t.cost

        # off-policy value on the test customers: profit-based selection, contacting everyone, the top share
        profit_test = incremental_profit(u_test, value_test, cost, arms=arms)
        chosen_test = select_targets(profit_test, np.arange(len(test)), cost=cost)
        target_arm = chosen_test.customers.sort_values("customer_id")["arm"].fillna(control).to_numpy(dtype=object)
        test_frame["value"] = value_test
        test_frame["target_arm"] = pd.array(np.where(target_arm == control, None, target_arm), dtype="string")
        policies = {"profit": policy_value(y_test, t_test, target_arm=target_arm, control=control, value=value_test,
                                           cost=cost)}
        best_arm = np.asarray(arms, dtype=object)[np.argmax(u_test, axis=1)]
        everyone = np.asarray(arms, dtype=object)[int(np.argmax(profit_test.to_numpy().mean(axis=0)))]
        policies["everyone"] = policy_value(y_test, t_test, target_arm=np.full(len(test), everyone, dtype=object),
                                            control=control, value=value_test, cost=cost)
        n_top = int(np.floor(top * len(test)))
        order = np.argsort(-u_test.max(axis=1), kind="stable")
        top_arm = np.full(len(test), control, dtype=object)
        top_arm[order[:n_top]] = best_arm[order[:n_top]]
        policies["top_share"] = policy_value(y_test, t_test, target_arm=top_arm, control=control, value=value_test,
                                             cost=cost)
        for name, estimate in policies.items():
            metrics |= {f"policy_{name}_{k}": v for k, v in estimate.as_dict().items()
                        if k in ("incremental_responses", "incremental_profit", "ci_low", "ci_high", "contacts")}
        if source.truth is not None:  # realised with the simulator's true uplift: sum of true uplift x value - cost
            true_profit = incremental_profit(true, value_test, cost, arms=arms).to_numpy()
            for name, arm_of in (("profit", target_arm), ("everyone", np.full(len(test), everyone, dtype=object)),
                                 ("top_share", top_arm)):
                contacted = arm_of != control
                columns = np.array([arms.index(a) if a != control else 0 for a in arm_of])
                metrics[f"true_policy_{name}_incremental_profit"] = float(
                    true_profit[np.arange(len(test)), columns][contacted].sum())

        # the customers to rank
        if config.population == "campaign":
            ids, X_rank = data.customer_id.reset_index(drop=True), X.reset_index(drop=True)
            lapses = None
        else:
            ids, X_rank = campaign_population(source, config.population, lapse_days=config.winback.lapse_days)
            lapses = (lapsed_customers(source.transactions, source.as_of, lapse_days=config.winback.lapse_days)
                      .set_index("customer_id").loc[ids.to_numpy()].reset_index()) if value_model is not None else None
        u_rank = np.asarray(model.predict(X_rank), dtype=float).reshape(len(ids), -1)
        value_rank = _response_values(config, ids, lapses, value_model)
        profit = incremental_profit(u_rank, value_rank, cost, arms=arms)
        plan = select_targets(profit, ids.to_numpy(), cost=cost, max_contacts=t.max_contacts, budget=t.budget,
                              value=value_rank)
        details = pd.DataFrame({"customer_id": ids.to_numpy(), "value": value_rank,
                                **{f"uplift_{a}": u_rank[:, j] for j, a in enumerate(arms)}})
        targets = plan.customers.merge(details, on="customer_id", how="left", validate="one_to_one")
        metrics |= {"n_ranked": float(len(ids)), "n_targets": float(plan.contacts),
                    "expected_incremental_profit": plan.total_profit, "target_spend": plan.spend,
                    **{f"targets_{a}": float(n) for a, n in plan.arm_mix.items()},
                    **{f"break_even_rate_{a}": float(r) for a, r in plan.break_even.items() if np.isfinite(r)},
                    "n_train": float(len(train)), "n_valid": float(len(valid)), "n_test": float(len(test))}
        metrics = finite(metrics)

        mlflow.log_metrics(metrics)
        runs.log_frame(choice.table, "tables/learners.csv")
        runs.log_frame(scores, "tables/test_scores_by_arm.csv")
        runs.log_frame(pd.DataFrame({k: v.as_dict() for k, v in policies.items()}).T, "tables/policy_values.csv")
        runs.log_frame(plan.arm_mix.to_frame("contacts"), "tables/arm_mix.csv")
        runs.log_frame(targets.head(100), "tables/top_targets.csv")
        plots = _log_plots(y_test, u_test, t_test, arms, control, plan)
        on_holdout = _champion_on_holdout(config.model_name, X_test, y_test, t_test, arms, control, top)
        if on_holdout is not None and on_holdout.value is not None:
            metrics[f"champion_{CHAMPION_METRIC}"] = on_holdout.value
            mlflow.log_metric(f"champion_{CHAMPION_METRIC}", on_holdout.value)
        recipe = source.recipe(config.model.target, horizon_days=config.campaign.response_days,
                               value=_value_recipe(config, arms, cost))
        model_info = log_uplift_model(model, X_test, recipe=recipe, value_model=value_model)
        metadata = {"custval.as_of": str(source.as_of.date()) if source.as_of is not None else "",
                    "custval.campaign": provenance["custval.campaign"], "custval.arms": ",".join(arms)}
        done = job.finish(run, outputs=[Output("output", targets, metadata)], model=model_info,
                          registered_model=config.model_name,
                          champion=Champion(CHAMPION_METRIC, metrics[CHAMPION_METRIC], higher_is_better=True,
                                            comparable_tag="custval.campaign", champion_score=on_holdout,
                                            force=promote))
        return TrainUpliftResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=job.tracking_uri, model_uri=done.model_uri, registered_version=done.registered_version,
            promotion=done.promotion, kind=source.kind, campaign=data.campaign_id, arms=arms, control=control,
            metrics=metrics, learners=choice.table, chosen=choice.chosen, model=model, test=test_frame,
            targets=targets, plan=plan, policy=policies, plots=plots, output=done.output,
            tuned_params=xgboost if config.model.n_trials else None)


def _champion_on_holdout(name, X_test, y_test, t_test, arms, control, top) -> HoldoutScore | None:
    """The current champion, loaded as data and scored by its Qini on this run's test customers."""
    version = champion_version(name) if name else None
    if version is None:
        return None
    try:
        champion, _ = load_uplift_model(f"models:/{name}/{version}", setting="registered_model")
        champion_arms = [str(a) for a in champion.model.arms_]
        if champion_arms != list(arms):
            return HoldoutScore(version, None, f"its arms {champion_arms} differ from {list(arms)}")
        u = champion.score(X_test)[[f"uplift_{a}" for a in arms]].to_numpy(dtype=float)
        return HoldoutScore(version, float(arm_scores(y_test, u, t_test, arms, control, k=top)["qini"].mean()))
    except CustvalError as exc:
        return HoldoutScore(version, None, str(exc))


def _log_plots(y, uplift, treatment, arms, control, plan) -> list[str]:
    paths = []
    for j, arm in enumerate(arms):
        mask = (treatment == arm) | (treatment == control)
        indicator = (treatment[mask] == arm).astype(int)
        runs.log_figure(plot_qini(y[mask], {"model": uplift[mask, j]}, indicator), f"plots/qini_{arm}.png")
        runs.log_figure(plot_uplift_by_decile(y[mask], uplift[mask, j], indicator), f"plots/uplift_by_decile_{arm}.png")
        paths += [f"plots/qini_{arm}.png", f"plots/uplift_by_decile_{arm}.png"]
    curve = plan.curve
    runs.log_figure(plot_profit_curve(curve["share"], curve["expected_profit"]), "plots/profit_curve.png")
    return [*paths, "plots/profit_curve.png"]


__all__ = ["TrainUpliftResult", "check_config", "load_config", "train_uplift"]
