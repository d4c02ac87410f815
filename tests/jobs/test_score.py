"""`custval score` end to end against a real SQLite MLflow store: CLV, churn and propensity models trained by
their own jobs on one simulated customer base, registered, then every customer of that base scored as of a
date. The scores are cross-checked against the loaded models applied by hand to features built independently of
the scoring code path (the whole log at once, not in chunks), and the lists against their formulas."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from custval.data.io import read_table, read_table_metadata
from custval.errors import ConfigError
from custval.features.rfm import rfm_summary
from custval.features.snapshots import build_snapshot
from custval.features.winback import lapse_features, lapsed_customers
from custval.jobs import score as score_job
from custval.tracking.models import load_classifier_model, load_clv_model, load_uplift_model

REPO = Path(__file__).resolve().parents[2]
N_CUSTOMERS = 3000
AS_OF = pd.Timestamp("2025-01-01")


@pytest.fixture(scope="module")
def trained(scoring_base):
    """The CLV (weekly), churn, propensity, win-back uplift and cross-sell uplift (the retention offer, over the
    churn horizon of 90 days) models of one simulated base, each registered as champion."""
    return scoring_base("score_job", N_CUSTOMERS, uplift_learners="[t,x]", retention=True)


def _config(base, *extra: str):
    return score_job.load_config(overrides=[f"data.source={base['tx']}", f"data.customers={base['customers']}",
                                            "scoring.progress=false",
                                            f"output={base['root']}/scores.parquet", *extra])


@pytest.fixture(scope="module")
def scored(trained):
    try:
        return score_job.score(_config(trained, "scoring.chunk_size=700"), tracking_uri=trained["uri"])
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def models(trained):
    mlflow.set_tracking_uri(trained["uri"])
    try:
        loaded = {role: loader(f"models:/custval-{role}@champion")[0] for role, loader in
                  (("clv", load_clv_model), ("churn", load_classifier_model), ("propensity", load_classifier_model))}
        loaded["winback"] = load_uplift_model("models:/custval-uplift-winback@champion")[0]
        loaded["retention"] = load_uplift_model("models:/custval-uplift-crosssell@champion")[0]
        return loaded
    finally:
        mlflow.set_tracking_uri(None)


def test_repository_config_is_the_builtin_default():
    assert score_job.load_config(REPO / "pipelines" / "score.yaml") == score_job.ScoreConfig()


def test_every_customer_once_with_the_documented_columns_and_metadata(scored, trained):
    scores = read_table(scored.output)
    before = trained["transactions"].loc[trained["transactions"]["timestamp"] < AS_OF]
    assert sorted(scores["customer_id"]) == sorted(before["customer_id"].unique())
    assert scores["customer_id"].is_unique
    expected = ["customer_id", "as_of", "frequency", "recency", "T", "monetary_value", "purchases", "revenue",
                "recency_days", "p_alive", "expected_purchases", "expected_spend", "clv", "churn_probability",
                "reason_1", "reason_2", "reason_3", "value_at_risk", "lapsed", "retention_uplift",
                "retention_priority", "retention_rank"]
    assert list(scores.columns[:len(expected)]) == expected
    propensities = [c for c in scores.columns if c.startswith("p_") and c != "p_alive"]
    assert len(propensities) >= 3
    for column in ("cross_sell_category", "cross_sell_score", "cross_sell_rank", "rfm_cell", "tier",
                   "value_loyalty", "lifecycle_stage"):
        assert column in scores.columns
    assert (pd.to_datetime(scores["as_of"]) == AS_OF).all()
    meta = read_table_metadata(scored.output)
    assert meta["custval.as_of"] == "2025-01-01" and meta["custval.run_id"] == scored.run_id
    assert {r: meta["custval.models"][r]["name"] for r in ("clv", "churn", "propensity")} == {
        "clv": "custval-clv", "churn": "custval-churn", "propensity": "custval-propensity"}
    assert meta["custval.models"]["churn"]["version"] == "1"
    assert "save rate 0.2" in meta["custval.retention_uplift"]
    assert meta["custval.reasons"] == "top 100 of the retention list"


def test_the_run_logs_counts_and_money_that_the_output_adds_up_to(scored, trained):
    run = mlflow.MlflowClient(trained["uri"]).get_run(scored.run_id)
    experiment = mlflow.MlflowClient(trained["uri"]).get_experiment(run.info.experiment_id)
    assert experiment.name == "custval-scoring" and run.info.status == "FINISHED"
    m = run.data.metrics
    scores = read_table(scored.output)
    assert m["n_customers"] == len(scores)
    assert m["n_lapsed"] == scores["lapsed"].sum()
    assert m["value_at_risk"] == pytest.approx(np.nansum(scores["churn_probability"] * scores["clv"]))
    listed = scores["retention_priority"] > 0
    assert m["retention_listed"] == listed.sum()
    assert m["retention_expected_profit"] == pytest.approx(scores.loc[listed, "retention_priority"].sum())
    assert run.data.tags["custval.model.churn"] == "custval-churn/1"
    assert m["n_chunks"] == np.ceil(len(scores) / 700)


def test_clv_is_the_model_applied_in_its_own_period(scored, trained, models):
    clv = models["clv"]
    assert clv.period == "W"
    weekly = rfm_summary(trained["transactions"], AS_OF - pd.Timedelta(days=1), period="W")
    expected = clv.predict(weekly)
    scores = read_table(scored.output).set_index("customer_id")
    np.testing.assert_allclose(scores.loc[expected.index, "clv"], expected["clv"], rtol=1e-12)
    np.testing.assert_allclose(scores.loc[expected.index, "p_alive"], expected["p_alive"], rtol=1e-12)
    # daily RFM fed to the weekly model (the mistake the job must not make) gives other numbers
    daily = clv.predict(rfm_summary(trained["transactions"], AS_OF - pd.Timedelta(days=1), period="D"))
    assert not np.allclose(daily["clv"], expected["clv"], rtol=0.05)


def test_churn_and_propensity_equal_the_models_on_features_of_the_whole_log(scored, trained, models):
    """Chunks of 700 customers give what the models give on one snapshot of everyone built the training way."""
    X = build_snapshot(trained["transactions"], AS_OF, customers=trained["attributes"], labels=False,
                       active_days=365).set_index("customer_id")
    scores = read_table(scored.output).set_index("customer_id")
    churn = models["churn"].score(X)["churn_probability"]
    np.testing.assert_allclose(scores.loc[churn.index, "churn_probability"], churn, rtol=1e-9)
    outside = scores.index.difference(X.index)  # silent for more than the model's active_days
    assert len(outside) and scores.loc[outside, "churn_probability"].isna().all()
    propensity = models["propensity"].score(X)
    for column in propensity.columns:
        np.testing.assert_allclose(scores.loc[propensity.index, column], propensity[column], rtol=1e-9)


def test_retention_list_prices_the_save_and_skips_lapsed_customers(scored, trained):
    scores = read_table(scored.output)
    expected = scores["churn_probability"] * scores["clv"] * 0.2 - 5.0
    active = ~scores["lapsed"]
    np.testing.assert_allclose(scores.loc[active, "retention_priority"], expected[active], rtol=1e-12)
    assert scores.loc[scores["lapsed"], "retention_priority"].isna().all()
    # lapsed = no purchase in the 120 days before as_of, from the log itself
    last = trained["transactions"].loc[trained["transactions"]["timestamp"] < AS_OF].groupby("customer_id")[
        "timestamp"].max().dt.normalize()
    lapsed = ((AS_OF - last).dt.days >= 120)
    assert scores.set_index("customer_id")["lapsed"].sort_index().equals(lapsed.sort_index().rename("lapsed"))
    listed = scores.dropna(subset=["retention_rank"]).sort_values("retention_rank")
    assert list(listed["retention_rank"]) == list(range(1, len(listed) + 1))
    key = list(zip(-listed["retention_priority"], listed["customer_id"], strict=True))
    assert key == sorted(key)  # priority descending, then customer id
    assert (listed["retention_priority"] > 0).all()
    # reasons only for the head of the list
    has_reason = scores["reason_1"].notna()
    assert set(scores.loc[has_reason, "retention_rank"]) == set(range(1, 101))


def test_cross_sell_offers_the_likeliest_category_not_bought(scored, trained):
    scores = read_table(scored.output).set_index("customer_id")
    log = trained["transactions"].loc[trained["transactions"]["timestamp"] < AS_OF]
    bought = log.groupby("customer_id")["category"].agg(lambda c: set(c.astype(str)))
    propensities = [c for c in scores.columns if c.startswith("p_") and c != "p_alive"]
    rows = scores.dropna(subset=[propensities[0]]).head(300)
    for cid, row in rows.iterrows():
        open_ = {c: row[c] for c in propensities if c.removeprefix("p_") not in bought[cid]}
        if not open_:
            assert pd.isna(row["cross_sell_category"])
            continue
        best = max(open_, key=open_.get)
        assert row["cross_sell_category"] == best.removeprefix("p_")
        assert row["cross_sell_score"] == pytest.approx(open_[best])


def test_nothing_after_as_of_changes_a_score_and_chunks_do_not_either(trained, tmp_path):
    """Purchases on and after the scoring date (a big spender appears, everyone buys again) change nothing."""
    as_of = pd.Timestamp("2024-09-01")
    log = trained["transactions"]
    later = log.loc[log["timestamp"] >= as_of].copy()
    later["amount"] *= 50
    extra = log.loc[log["timestamp"] < as_of].groupby("customer_id").tail(1).assign(
        timestamp=as_of + pd.Timedelta(hours=3), amount=999.0)
    changed = pd.concat([log.loc[log["timestamp"] < as_of], later, extra], ignore_index=True)
    changed.to_parquet(tmp_path / "changed.parquet")
    try:
        one = score_job.score(_config(trained, "as_of=2024-09-01", "scoring.chunk_size=100000",
                                      f"output={tmp_path}/one.parquet"), tracking_uri=trained["uri"])
        two = score_job.score(_config(trained, "as_of=2024-09-01", "scoring.chunk_size=333",
                                      f"data.source={tmp_path}/changed.parquet", f"output={tmp_path}/two.parquet"),
                              tracking_uri=trained["uri"])
    finally:
        mlflow.set_tracking_uri(None)
    pd.testing.assert_frame_equal(read_table(one.output), read_table(two.output))
    assert one.summary["n_customers"] == log.loc[log["timestamp"] < as_of, "customer_id"].nunique()


def test_models_trained_with_customer_attributes_need_the_customer_table(trained, tmp_path):
    config = score_job.load_config(overrides=[f"data.source={trained['tx']}", "scoring.progress=false",
                                              f"output={tmp_path}/s.parquet"])
    with pytest.raises(ConfigError, match=r"^data\.customers: models\.churn was trained with customer attributes"):
        score_job.score(config, tracking_uri=trained["uri"])
    mlflow.set_tracking_uri(None)
    assert not (tmp_path / "s.parquet").exists()


def test_a_retention_model_over_another_horizon_than_churn_is_refused(trained, tmp_path):
    """The win-back model's outcome window (30 days) is not the churn horizon (90 days)."""
    config = _config(trained, "models.retention=models:/custval-uplift-winback@champion",
                     f"output={tmp_path}/s.parquet")
    with pytest.raises(ConfigError, match=r"^models\.(churn|retention).*horizon"):
        score_job.score(config, tracking_uri=trained["uri"])
    mlflow.set_tracking_uri(None)


def test_a_model_in_the_wrong_role_is_refused(trained, tmp_path):
    config = _config(trained, "models.churn=models:/custval-propensity@champion", f"output={tmp_path}/s.parquet")
    with pytest.raises(ConfigError, match=r"models\.churn: 'models:/custval-propensity@champion' is not a churn"):
        score_job.score(config, tracking_uri=trained["uri"])
    config = _config(trained, "models.propensity=models:/custval-churn@champion", f"output={tmp_path}/s.parquet")
    with pytest.raises(ConfigError, match=r"models\.propensity: .* is not a propensity model"):
        score_job.score(config, tracking_uri=trained["uri"])
    mlflow.set_tracking_uri(None)


def test_a_tampered_model_code_file_is_not_executed(trained, tmp_path):
    client = mlflow.MlflowClient(trained["uri"])
    version = client.get_model_version_by_alias("custval-churn", "champion")
    mlflow.set_tracking_uri(trained["uri"])
    try:
        model_id = version.model_id or version.source.removeprefix("models:/")
        location = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))
    finally:
        mlflow.set_tracking_uri(None)
    code = next(location.glob("*model_code.py"))
    original = code.read_text()
    marker = tmp_path / "executed"
    code.write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + original)
    try:
        done = score_job.score(_config(trained, "models.propensity=null", "models.clv=null",
                                       f"output={tmp_path}/s.parquet"), tracking_uri=trained["uri"])
    finally:
        code.write_text(original)
        mlflow.set_tracking_uri(None)
    assert not marker.exists()
    assert read_table(done.output)["churn_probability"].notna().any()


def _cli(args, cwd, uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen([sys.executable, "-m", "custval.cli", "score", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_run_killed_mid_way_leaves_the_previous_output_and_no_temp_file(trained, tmp_path, sig):
    out = tmp_path / "scores.parquet"
    previous = b"the previous scores"
    out.write_bytes(previous)
    args = ["--out", str(out), "--set", f"data.source={trained['tx']}", "--set",
            f"data.customers={trained['customers']}", "--set",
            "scoring.chunk_size=50"]
    started = int(time.time() * 1000)
    process = _cli(args, tmp_path, trained["uri"])
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline:  # wait for the progress bar: scoring has started
        line = process.stderr.read(1)
        seen += line
        if "customers/s]" in seen or process.poll() is not None:
            break
    assert process.poll() is None, seen + process.stderr.read()
    time.sleep(1.0)
    process.send_signal(sig)
    process.wait(timeout=120)
    assert process.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]
    client = mlflow.MlflowClient(trained["uri"])
    experiment = client.get_experiment_by_name("custval-scoring")
    if experiment is not None:  # no scoring run finished after the kill began
        finished = client.search_runs([experiment.experiment_id], f"attributes.start_time >= {started}")
        assert [r.info.status for r in finished if r.info.status == "FINISHED"] == []


def test_the_report_is_written_beside_the_output_logged_and_renders_in_chromium(scored, trained, chromium,
                                                                              tmp_path):
    assert scored.report == scored.output.with_name("scores.html") and scored.report.is_file()
    client = mlflow.MlflowClient(trained["uri"])
    artifacts = {a.path for a in client.list_artifacts(scored.run_id)}
    assert "report.html" in artifacts
    plots = {a.path for a in client.list_artifacts(scored.run_id, "plots")}
    assert {"plots/value_at_risk_by_decile.png", "plots/segment_pyramid.png", "plots/retention_profit_curve.png",
            "plots/retention_composition.png", "plots/cross_sell_composition.png"} <= plots
    probe = chromium.probe(chromium.render(scored.report.read_text(encoding="utf-8"), tmp_path))
    assert probe["images"] and all(i["complete"] and i["width"] > 100 for i in probe["images"])
    lists = {t["heads"][0]: t for t in probe["tables"] if t["heads"] and t["heads"][0].endswith("_rank")}
    assert set(lists) == {"retention_rank", "winback_rank", "cross_sell_rank"}
    scores = read_table(scored.output)
    for rank in lists:
        first = scores.loc[scores[rank] == 1, "customer_id"].item()
        row = dict(zip(lists[rank]["heads"], lists[rank]["first"], strict=True))
        assert row[rank] == "1" and row["customer_id"] == str(first)
    assert scored.run_id in scored.report.read_text(encoding="utf-8")


def test_winback_list_is_the_uplift_times_the_second_lifetime_value_of_lapsed_customers(scored, trained, models):
    winback = models["winback"]
    value = winback.recipe["value"]
    assert (value["response_value"], value["lapse_days"]) == ("second_lifetime_value", 120)
    scores = read_table(scored.output).set_index("customer_id")
    log = trained["transactions"]
    lapsed = lapsed_customers(log, AS_OF, lapse_days=120).set_index("customer_id")
    assert sorted(scores.index[scores["lapsed"]]) == sorted(lapsed.index)
    # the model on features built from the whole log with its own recipe, by hand
    X = build_snapshot(log, AS_OF, customers=trained["attributes"], labels=False, active_days=None,
                       windows=tuple(winback.recipe["windows"]), categories=winback.recipe["categories"])
    X = X.set_index("customer_id").loc[lapsed.index]
    uplift = winback.score(X)[f"uplift_{winback.arms[0]}"]
    np.testing.assert_allclose(scores.loc[lapsed.index, "winback_uplift"], uplift, rtol=1e-9)
    slv = value["margin_rate"] * winback.value_model.predict(lapse_features(lapsed))
    np.testing.assert_allclose(scores.loc[lapsed.index, "winback_value"], slv, rtol=1e-9)
    cost = value["costs"][winback.arms[0]]
    np.testing.assert_allclose(scores.loc[lapsed.index, "winback_priority"], uplift * slv - cost, rtol=1e-9)
    assert scores.loc[~scores["lapsed"], ["winback_uplift", "winback_priority"]].isna().all().all()
    listed = scores.dropna(subset=["winback_rank"]).sort_values("winback_rank")
    assert len(listed) and (listed["winback_priority"] > 0).all()
    assert listed["winback_priority"].is_monotonic_decreasing
    assert scored.summary["winback_expected_profit"] == pytest.approx(listed["winback_priority"].sum())


def test_retention_with_an_uplift_model_prices_each_customers_save(trained, models, tmp_path):
    retention = models["retention"]
    assert retention.recipe["horizon_days"] == 90 and set(retention.arms) == {"email", "discount"}
    try:
        done = score_job.score(_config(trained, "models.retention=models:/custval-uplift-crosssell@champion",
                                       "retention.arm=discount", f"output={tmp_path}/s.parquet"),
                               tracking_uri=trained["uri"])
        with pytest.raises(ConfigError, match=r"^retention\.arm must name the arm"):
            score_job.score(_config(trained, "models.retention=models:/custval-uplift-crosssell@champion",
                                    f"output={tmp_path}/t.parquet"), tracking_uri=trained["uri"])
    finally:
        mlflow.set_tracking_uri(None)
    scores = read_table(done.output).set_index("customer_id")
    X = build_snapshot(trained["transactions"], AS_OF, customers=trained["attributes"], labels=False,
                       active_days=None, windows=tuple(retention.recipe["windows"]),
                       categories=retention.recipe["categories"]).set_index("customer_id")
    uplift = retention.score(X)["uplift_discount"]
    active = ~scores["lapsed"]
    priced = scores.index[active.to_numpy()]
    np.testing.assert_allclose(scores.loc[priced, "retention_uplift"], uplift[priced], rtol=1e-9)
    assert active.mean() < 0.9 and scores.loc[~active, "retention_uplift"].isna().all()  # the win-back list's
    expected = scores["churn_probability"] * scores["clv"] * scores["retention_uplift"] - 5.0
    np.testing.assert_allclose(scores.loc[active, "retention_priority"], expected[active], rtol=1e-12)
    meta = read_table_metadata(done.output)
    assert meta["custval.retention_uplift"] == "model models:/custval-uplift-crosssell@champion arm discount"
    assert meta["custval.models"]["retention"]["name"] == "custval-uplift-crosssell"
