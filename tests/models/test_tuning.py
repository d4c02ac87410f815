"""Optuna tuning of the classifiers: real Optuna (SQLite storage) and real MLflow (SQLite store) in tmp_path.

The data are synthetic with a known P(y=1 | x), so the tuned model is checked against the Bayes (oracle) AUC
on a separate test set, not only against other trials.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
import xgboost as xgb
from optuna.trial import TrialState
from sklearn.metrics import roc_auc_score

from custval.config import optuna_storage
from custval.errors import ConfigError, CustvalWarning, DataError
from custval.models.classifiers import BoostedClassifier, TreeClassifier
from custval.models.classifiers.selection import boosted_cv, cv_folds
from custval.models.tuning import (
    METRICS,
    OptunaPruningCallback,
    TuneResult,
    tree_space,
    tune,
    xgboost_space,
)
from custval.tracking import runs
from custval.tracking.tuning import TRIAL_STATE_TAG, log_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
XGB_BASE = {"n_jobs": 1, "n_estimators": 400}  # a cap on rounds keeps the file fast


def _make(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """Features with an interaction, a threshold, a categorical effect and missing values; returns the
    true P(y=1 | x) as well."""
    z = rng.normal(size=(n, 5))
    region = rng.choice(np.array(["north", "south", "east", "west"]), size=n)
    logit = (-1.4 + 1.2 * z[:, 0] - 0.8 * z[:, 1] + 0.5 * z[:, 2] * z[:, 3] + 1.0 * (z[:, 4] > 0.5)
             + np.select([region == "north", region == "south"], [0.7, -0.5], 0.0))
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    X = pd.DataFrame(z, columns=[f"x{i}" for i in range(5)])
    X["x5_noise"] = rng.normal(size=n)
    X.loc[rng.random(n) < 0.05, "x1"] = np.nan  # missing values the classifiers must take
    X["region"] = pd.array(region, dtype="string")
    return X, pd.Series(y, name="churn"), p


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(12345)
    train, valid, test = _make(3000, rng), _make(2000, rng), _make(6000, rng)
    return {"train": train[:2], "valid": valid[:2], "test": test, "valid_p": valid[2]}


def _args(data):
    (Xt, yt), (Xv, yv) = data["train"], data["valid"]
    return Xt, yt, Xv, yv


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store for the module (creating one takes seconds); tests use their own experiments."""
    uri = runs.configure(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def logged_search(data, store):
    """One XGBoost search (12 trials, seed 0) run inside an active MLflow run; several tests read it."""
    experiment_id = runs.ensure_experiment("custval-test-tuning")
    with mlflow.start_run(experiment_id=experiment_id) as parent:
        result = tune("xgboost", *_args(data), n_trials=12, seed=0, base_params=XGB_BASE,
                      callbacks=[log_trial])
        active = mlflow.active_run().info.run_id
    return {"result": result, "parent": parent.info.run_id, "experiment_id": experiment_id,
            "active_after": active}


def _refit(kind, params, data):
    Xt, yt, Xv, yv = _args(data)
    if kind == "xgboost":
        return BoostedClassifier(**params).fit(Xt, yt, eval_set=(Xv, yv))
    return TreeClassifier(**params).fit(Xt, yt)


# ------------------------------------------------------------------------------------------------ quality
def test_tuned_xgboost_beats_defaults_and_nears_the_oracle(data, logged_search):
    result = logged_search["result"]
    assert isinstance(result, TuneResult) and result.metric == "roc_auc" and result.kind == "xgboost"
    Xv, yv = data["valid"]
    default = BoostedClassifier(random_state=0, n_jobs=1).fit(*data["train"], eval_set=(Xv, yv))
    assert result.best_value >= roc_auc_score(yv, default.predict_proba(Xv)[:, 1])
    assert result.best_value <= roc_auc_score(yv, data["valid_p"]) + 0.01  # not above the Bayes AUC (+ noise)

    # best_params are complete constructor kwargs: the refit reproduces the best trial's validation AUC
    params = result.best_params
    assert params["n_jobs"] == 1 and params["random_state"] == 0 and params["n_estimators"] == 400  # base
    assert params["early_stopping_rounds"] == 50 and params["eval_metric"] == "auc"  # early stopping on AUC
    assert set(result.study.best_trial.params) <= set(params)
    tuned = _refit("xgboost", params, data)
    assert roc_auc_score(yv, tuned.predict_proba(Xv)[:, 1]) == pytest.approx(result.best_value, abs=1e-12)
    # on unseen test data: within 4% of the Bayes (oracle) AUC, and no worse than the defaults (beyond noise)
    Xs, ys, ps = data["test"]
    tuned_test = roc_auc_score(ys, tuned.predict_proba(Xs)[:, 1])
    assert tuned_test >= 0.96 * roc_auc_score(ys, ps)
    assert tuned_test >= roc_auc_score(ys, default.predict_proba(Xs)[:, 1]) - 0.005


def test_tuned_tree_is_the_best_trial_and_refits_exactly(data):
    result = tune("tree", *_args(data), n_trials=10, seed=1)
    values = [t.value for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert result.n_complete == len(values) == 10 and result.n_pruned == 0
    assert result.best_value == max(values)
    assert len(set(np.round(values, 12))) > 1  # the search actually varied the tree
    Xv, yv = data["valid"]
    tree = _refit("tree", result.best_params, data)
    assert roc_auc_score(yv, tree.predict_proba(Xv)[:, 1]) == pytest.approx(result.best_value, abs=1e-12)
    default = TreeClassifier(random_state=0).fit(*data["train"])
    assert result.best_value >= roc_auc_score(yv, default.predict_proba(Xv)[:, 1]) - 0.01


@pytest.mark.parametrize("metric", ["log_loss", "brier", "pr_auc"])
def test_other_metrics_set_the_direction(data, metric):
    result = tune("tree", *_args(data), n_trials=4, seed=0, metric=metric)
    values = [t.value for t in result.study.trials if t.state == TrialState.COMPLETE]
    direction = METRICS[metric][0]
    assert result.study.direction.name.lower() == direction
    assert result.best_value == (max(values) if direction == "maximize" else min(values))
    # the value is the metric itself, recomputed independently
    Xv, yv = data["valid"]
    p = _refit("tree", result.best_params, data).predict_proba(Xv)[:, 1]
    p_clip = np.clip(p, 1e-15, 1 - 1e-15)
    independent = {"log_loss": -np.mean(yv * np.log(p_clip) + (1 - yv) * np.log(1 - p_clip)),
                   "brier": np.mean((p - yv) ** 2)}
    if metric in independent:
        assert result.best_value == pytest.approx(independent[metric], rel=1e-9)
    else:
        assert 0 < result.best_value <= 1


# ------------------------------------------------------------------------------------------- search spaces
def test_search_spaces_sample_within_their_ranges():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):
        trial = study.ask()
        p, t = xgboost_space(trial), tree_space(trial)
        study.tell(trial, 0.0)
        assert 0.01 <= p["learning_rate"] <= 0.3 and 2 <= p["max_depth"] <= 8
        assert 0.5 <= p["min_child_weight"] <= 50 and 0.5 <= p["subsample"] <= 1
        assert 0.4 <= p["colsample_bytree"] <= 1 and 1e-3 <= p["reg_lambda"] <= 10
        assert 1e-3 <= p["reg_alpha"] <= 10 and 0 <= p["gamma"] <= 5
        assert isinstance(p["max_depth"], int) and isinstance(t["min_samples_leaf"], int)
        assert 2 <= t["max_depth"] <= 8 and 10 <= t["min_samples_leaf"] <= 1000 and 0 <= t["ccp_alpha"] <= 0.01
    # log scales: about half the learning rates below the geometric mean of the range
    lrs = np.array([t.params["learning_rate"] for t in study.trials])
    assert 0.35 < np.mean(lrs < math.sqrt(0.01 * 0.3)) < 0.65


# ------------------------------------------------------------------------------------ resumption, seeds
def test_a_second_call_continues_the_stored_study(data, tmp_path):
    storage = optuna_storage(f"sqlite:///{tmp_path}/mlflow.db")  # the study file next to the MLflow store
    first = tune("tree", *_args(data), n_trials=3, seed=0, storage=storage, study_name="s")
    second = tune("tree", *_args(data), n_trials=2, seed=0, storage=storage, study_name="s")
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert second.study._study_id == first.study._study_id
    assert second.n_complete + second.n_pruned == 5 and first.n_complete + first.n_pruned == 3
    assert len(optuna.get_all_study_names(storage)) == 1 and (tmp_path / "optuna.db").is_file()
    # the continued study knows the earlier trials: its best is at least the first call's best
    assert second.best_value >= first.best_value
    # the new trials are new points, not a replay of the first call's (the sampler conditions on history)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 5


def test_resuming_with_another_kind_metric_or_data_is_caught(data, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    tune("tree", *_args(data), n_trials=1, storage=storage, study_name="s")
    with pytest.raises(ConfigError, match="kind='tree'"):
        tune("xgboost", *_args(data), n_trials=1, storage=storage, study_name="s")
    with pytest.raises(ConfigError, match="minimize"):
        tune("tree", *_args(data), n_trials=1, storage=storage, study_name="s", metric="brier")
    with pytest.raises(ConfigError, match="metric='roc_auc'"):
        tune("tree", *_args(data), n_trials=1, storage=storage, study_name="s", metric="pr_auc")
    Xt, yt, Xv, yv = _args(data)
    with pytest.warns(CustvalWarning, match="different data"):
        tune("tree", Xt.iloc[:-10], yt.iloc[:-10], Xv, yv, n_trials=1, storage=storage, study_name="s")
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 2


def test_same_data_and_seed_give_the_same_search(data, tmp_path):
    Xt, yt, Xv, yv = _args(data)
    half = (Xt.iloc[:1500], yt.iloc[:1500], Xv.iloc[:1000], yv.iloc[:1000])  # smaller: faster trials

    def run(storage, seed, n_trials):
        return tune("xgboost", *half, n_trials=n_trials, seed=seed, storage=storage, base_params=XGB_BASE)

    a, b, c = run(f"sqlite:///{tmp_path}/a.db", 0, 4), run(None, 0, 4), run(None, 1, 1)
    assert a.best_params == b.best_params and a.best_value == b.best_value
    assert [t.params for t in a.study.trials] == [t.params for t in b.study.trials]
    assert [t.value for t in a.study.trials] == [t.value for t in b.study.trials]
    assert [t.user_attrs for t in a.study.trials] == [t.user_attrs for t in b.study.trials]
    assert c.study.trials[0].params != a.study.trials[0].params


def test_timeout_stops_starting_trials(data, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    tune("tree", *_args(data), n_trials=1, storage=storage)
    result = tune("tree", *_args(data), n_trials=1000, timeout=0.2, storage=storage)
    assert 1 <= len(result.study.trials) < 100 and result.n_complete == len(result.study.trials)


# ------------------------------------------------------------------------------------------------ pruning
def test_clearly_bad_xgboost_trials_are_pruned(logged_search):
    result = logged_search["result"]
    trials = result.study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert result.n_pruned == len(pruned) >= 1
    assert result.n_complete + result.n_pruned == 12
    for t in pruned:
        # independent check of the median rule: at the step it stopped, the trial was below the median of
        # the trials completed before it (on the study's scale), and it stopped before boosting had finished
        step = max(t.intermediate_values)
        earlier = [u.intermediate_values[step] for u in trials[:t.number]
                   if u.state == TrialState.COMPLETE and step in u.intermediate_values]
        assert len(earlier) >= 1
        assert t.intermediate_values[step] < np.median(earlier)
        assert step < result.best_params["n_estimators"] and step % 10 == 0
    # completed XGBoost trials reported every 10 rounds, starting at round 10
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(sorted(t.intermediate_values)[:1] == [10] for t in done if t.intermediate_values)


class _FakeStudy:
    def __init__(self, direction):
        self.direction = direction


class _FakeTrial:
    """Stands in for optuna.Trial in the callback's own unit test: records reports, prunes on demand."""

    def __init__(self, direction=optuna.study.StudyDirection.MAXIMIZE, prune_at=None):
        self.study = _FakeStudy(direction)
        self.reports: list[tuple[int, float]] = []
        self.prune_at = prune_at

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune_at is not None and self.reports[-1][0] >= self.prune_at


def _log(**metrics):
    return {"validation_0": {name: list(values) for name, values in metrics.items()}}


def test_callback_reports_every_n_rounds_on_the_studys_scale():
    trial = _FakeTrial()
    cb = OptunaPruningCallback(trial, every=2)
    aucs, losses = [0.6, 0.7, 0.75, 0.8], [0.6, 0.5, 0.45, 0.4]
    for epoch in range(4):
        evals = _log(auc=aucs[: epoch + 1])
        assert cb.after_iteration(None, epoch, evals) is False
    assert trial.reports == [(2, 0.7), (4, 0.8)]  # AUC, maximised: as is
    trial = _FakeTrial()
    cb = OptunaPruningCallback(trial, every=2)
    for epoch in range(4):
        cb.after_iteration(None, epoch, _log(logloss=losses[: epoch + 1]))
    assert trial.reports == [(2, -0.5), (4, -0.4)]  # logloss in a maximising study: negated
    assert cb.history == {2: 0.5, 4: 0.4}  # raw values kept
    trial = _FakeTrial(direction=optuna.study.StudyDirection.MINIMIZE)
    cb = OptunaPruningCallback(trial, every=1, metric="logloss")
    cb.after_iteration(None, 0, _log(auc=[0.9], logloss=[0.3]))
    assert trial.reports == [(1, 0.3)]
    # the last evaluation set is the validation one by default
    trial = _FakeTrial()
    OptunaPruningCallback(trial, every=1).after_iteration(
        None, 0, {"validation_0": {"auc": [0.99]}, "validation_1": {"auc": [0.61]}})
    assert trial.reports == [(1, 0.61)]


def test_callback_prunes_a_real_xgboost_training_and_rejects_bad_use():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    dtrain, dvalid = xgb.DMatrix(X[:300], y[:300]), xgb.DMatrix(X[300:], y[300:])
    trial = _FakeTrial(prune_at=20)
    cb = OptunaPruningCallback(trial, every=5)
    with pytest.raises(optuna.TrialPruned, match="after 20 rounds"):
        xgb.train({"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1}, dtrain,
                  num_boost_round=100, evals=[(dtrain, "train"), (dvalid, "valid")], callbacks=[cb],
                  verbose_eval=False)
    assert [s for s, _ in trial.reports] == [5, 10, 15, 20]
    # the values are the validation logloss (negated for a maximising study), recomputed from the booster
    booster = xgb.train({"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1}, dtrain,
                        num_boost_round=20)
    p = booster.predict(dvalid)
    yv = y[300:]
    logloss = -np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p))
    assert -trial.reports[-1][1] == pytest.approx(logloss, rel=1e-5)

    with pytest.raises(ConfigError, match="eval_set"):
        OptunaPruningCallback(_FakeTrial(), every=1).after_iteration(None, 0, {})
    with pytest.raises(ConfigError, match="no metric 'auc'"):
        OptunaPruningCallback(_FakeTrial(), every=1, metric="auc").after_iteration(None, 0, _log(logloss=[1.0]))
    for every in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="every"):
            OptunaPruningCallback(_FakeTrial(), every=every)


# -------------------------------------------------------------------------------------------------- MLflow
def _all_runs(client):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, max_results=1000)


def test_each_trial_is_a_nested_run_of_the_active_run(logged_search):
    client = mlflow.MlflowClient()
    result, parent, experiment_id = (logged_search[k] for k in ("result", "parent", "experiment_id"))
    assert logged_search["active_after"] == parent  # the parent run is active again after tuning
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == len(result.study.trials) == 12
    assert len(client.search_runs([experiment_id])) == 13  # the parent and its trials
    assert {t.state for t in result.study.trials} == {TrialState.COMPLETE, TrialState.PRUNED}  # both kinds seen
    by_name = {r.info.run_name: r for r in children}
    assert set(by_name) == {f"trial-{i}" for i in range(12)}
    for t in result.study.trials:
        run = by_name[f"trial-{t.number}"]
        assert run.info.experiment_id == experiment_id
        assert run.data.tags[TRIAL_STATE_TAG] == t.state.name
        assert run.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}[t.state.name]
        for name, value in t.params.items():
            assert float(run.data.params[name]) == pytest.approx(value, rel=1e-12)
        assert run.data.params["n_jobs"] == "1"
        if t.state == TrialState.COMPLETE:
            assert run.data.metrics["valid_roc_auc"] == pytest.approx(t.value, rel=1e-12)
            assert run.data.metrics["best_iteration"] == t.user_attrs["best_iteration"]
        else:
            assert "valid_roc_auc" not in run.data.metrics
        # the per-round validation metric was logged as a series
        history = [k for k in run.data.metrics if k.endswith("_by_round")]
        assert len(history) == 1
        series = client.get_metric_history(run.info.run_id, history[0])
        assert sorted(m.step for m in series) == sorted(t.intermediate_values)


def test_no_active_run_or_logging_off_means_no_runs(data, store):
    client = mlflow.MlflowClient()
    before = {r.info.run_id for r in _all_runs(client)}
    assert mlflow.active_run() is None
    tune("tree", *_args(data), n_trials=2, callbacks=[log_trial])
    assert {r.info.run_id for r in _all_runs(client)} == before
    with mlflow.start_run(experiment_id=runs.ensure_experiment("custval-test-off")) as parent:
        tune("tree", *_args(data), n_trials=2)  # logging off: no callback
    assert {r.info.run_id for r in _all_runs(client)} == before | {parent.info.run_id}


def test_a_failing_trial_propagates_its_error_and_is_recorded(data, store):
    Xt, yt, Xv, yv = _args(data)
    client = mlflow.MlflowClient()
    experiment_id = runs.ensure_experiment("custval-test-fail")
    with mlflow.start_run(experiment_id=experiment_id) as parent, pytest.raises(DataError):
        tune("tree", Xt, pd.Series(np.zeros(len(yt), dtype=np.int64)), Xv, yv, n_trials=3,
             callbacks=[log_trial])
    (child,) = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert child.data.tags[TRIAL_STATE_TAG] == "FAIL" and child.info.status == "FAILED"


# ------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kind": "forest"}, "kind"),
    ({"metric": "accuracy"}, "metric"),
    ({"n_trials": 0}, "n_trials"),
    ({"n_trials": -3}, "n_trials"),
    ({"n_trials": 2.5}, "n_trials"),
    ({"n_trials": True}, "n_trials"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -1.0}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"timeout": "10"}, "timeout"),
    ({"seed": -1}, "seed"),
    ({"base_params": [("n_jobs", 1)]}, "base_params"),
])
def test_bad_options_are_config_errors(data, kwargs, match):
    kind = kwargs.pop("kind", "tree")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=match):
            tune(kind, *_args(data), **kwargs)


# ------------------------------------------------------------------------------------------------ callbacks
def test_callbacks_see_every_trial_with_what_a_log_needs(data):
    """Optuna's own callbacks get each finished trial; the frozen trial carries the fixed params, XGBoost's
    best iteration and its raw per-round curve (the pruner's reports, un-negated), so a logger needs no more."""
    seen = []
    Xt, yt, Xv, yv = _args(data)
    result = tune("xgboost", Xt.iloc[:1500], yt.iloc[:1500], Xv.iloc[:1000], yv.iloc[:1000], n_trials=3,
                  seed=0, metric="log_loss", base_params=XGB_BASE,
                  callbacks=[lambda study, trial: seen.append((study.study_name, trial))])
    assert [t.number for _, t in seen] == [0, 1, 2] and {name for name, _ in seen} == {"custval-xgboost"}
    for _, trial in seen:
        assert trial.state == result.study.trials[trial.number].state
        fixed = trial.user_attrs["fixed_params"]
        assert fixed == {"random_state": 0, "n_estimators": 400, "early_stopping_rounds": 50,
                         "eval_metric": "logloss", "n_jobs": 1}
        assert not set(fixed) & set(trial.params)
        curve = trial.user_attrs["valid_curve"]
        assert curve["metric"] == "logloss" and curve["rounds"] == sorted(trial.intermediate_values)
        # a minimised log loss is reported as is: the curve equals the pruner's reports
        assert curve["values"] == [trial.intermediate_values[r] for r in curve["rounds"]]
        if trial.state == TrialState.COMPLETE:
            assert curve["rounds"][-1] <= trial.user_attrs["best_iteration"] + 1 + 50


def test_callbacks_see_a_failing_trial_before_its_error_propagates(data):
    seen = []
    Xt, _, Xv, yv = _args(data)
    with pytest.raises(DataError, match="both classes"):
        tune("tree", Xt, pd.Series(np.zeros(len(Xt), dtype=np.int64)), Xv, yv, n_trials=3,
             callbacks=[lambda study, trial: seen.append(trial)])
    (trial,) = seen
    assert trial.number == 0 and trial.state == TrialState.FAIL
    assert trial.user_attrs["fixed_params"] == {"random_state": 0}
    assert set(trial.params) == {"max_depth", "min_samples_leaf", "ccp_alpha"}


def test_a_failing_callback_is_not_called_twice(data):
    calls = []

    def fails(study, trial):
        calls.append(trial.number)
        raise RuntimeError("logging broke")

    with pytest.raises(RuntimeError, match="logging broke"):
        tune("tree", *_args(data), n_trials=3, callbacks=[fails])
    assert calls == [0]


@pytest.mark.parametrize("callbacks", [None, "log", [print, 3], log_trial])
def test_callbacks_must_be_a_list_of_callables(data, callbacks):
    with pytest.raises(ConfigError, match="callbacks"):
        tune("tree", *_args(data), n_trials=1, callbacks=callbacks)


def test_tuning_does_not_import_mlflow():
    code = "import sys, custval.models.tuning; assert 'mlflow' not in sys.modules, 'mlflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
        sys.path)})


# ------------------------------------------------------------------------------------------ cross-validation
@pytest.fixture(scope="module")
def cv_data(data):
    (Xt, yt), (Xv, yv) = data["train"], data["valid"]
    X = pd.concat([Xt, Xv], ignore_index=True)
    y = pd.concat([yt, yv], ignore_index=True)
    return X, y, cv_folds(y, n_splits=4, random_state=0)


def test_cv_trials_are_scored_on_the_folds_and_start_from_the_base_model(cv_data):
    X, y, folds = cv_data
    result = tune("xgboost", X, y, folds=folds, n_trials=4, seed=0, base_params=XGB_BASE, start_with_base=True)
    first, *others = result.study.trials
    assert first.params == {} and first.user_attrs["base_trial"] is True  # the base settings alone
    assert first.user_attrs["fixed_params"]["learning_rate"] == BoostedClassifier().learning_rate
    assert all(t.params for t in others)
    for trial in result.study.trials:
        if trial.state != TrialState.COMPLETE:
            continue
        params = trial.user_attrs["fixed_params"] | trial.params  # what the trial fitted, in full
        score = boosted_cv(X, y.to_numpy(), folds, params)
        expected = np.mean([roc_auc_score(y.to_numpy()[test], score.margins[test]) for _, test in folds])
        assert trial.value == pytest.approx(expected, abs=1e-12)
        assert trial.user_attrs["best_iteration"] == score.n_trees - 1
        # pruning reports: the running mean after each fold, steps 1..4
        assert set(trial.intermediate_values) <= {1, 2, 3, 4}
    assert result.best_value >= first.value  # never worse than the model the search started from


def test_a_study_whose_base_trial_wins_returns_complete_parameters(cv_data):
    X, y, folds = cv_data
    result = tune("tree", X, y, folds=folds, n_trials=1, seed=0, start_with_base=True)
    assert result.study.trials[0].params == {} and result.n_complete == 1
    assert {"max_depth", "min_samples_leaf", "ccp_alpha"} <= set(result.best_params)
    default = TreeClassifier(random_state=0)
    assert result.best_params["max_depth"] == default.max_depth
    # the tree's CV value is its mean held-out ROC AUC, recomputed here fold by fold
    aucs = []
    for train, test in folds:
        tree = TreeClassifier(random_state=0).fit(X.iloc[train], y.iloc[train])
        aucs.append(roc_auc_score(y.iloc[test], tree.predict_proba(X.iloc[test])[:, 1]))
    assert result.best_value == pytest.approx(np.mean(aucs), abs=1e-12)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"folds": "use_valid"}, "either folds"),
    ({}, "either folds"),
    ({"folds": []}, "folds must be a non-empty list"),
    ({"folds": [(np.arange(3), np.arange(10**7, 10**7 + 2))]}, "row positions in"),
    ({"folds": [(np.array([0.5]), np.array([1]))]}, "row positions in"),
])
def test_folds_and_a_holdout_are_one_or_the_other(cv_data, data, kwargs, match):
    X, y, folds = cv_data
    if kwargs.get("folds") == "use_valid":  # both
        args, kwargs = (X, y, *data["valid"]), {"folds": folds}
    else:
        args = (X, y)
    with pytest.raises(ConfigError, match=match):
        tune("tree", *args, n_trials=1, **kwargs)
