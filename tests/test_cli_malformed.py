"""Malformed input, as a new user would give it, across every command: each case exits with status 2 and one
line naming the setting or column (never a traceback), before anything is written or registered."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from custval.cli import app
from custval.data.simulate_campaign import simulate_campaign_table
from custval.data.simulate_churn import simulate_churn
from custval.data.simulate_export import simulate_retail_export
from custval.data.simulate_table import simulate_churn_table

runner = CliRunner()
SMALL_CHURN = ["--set", "simulate.n_customers=300"]


def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Malformed inputs a user may have: each breaks one rule."""
    root = tmp_path_factory.mktemp("malformed")
    days = pd.date_range("2011-01-03", periods=60, freq="3D")
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"customer_id": rng.integers(1, 40, len(days)), "timestamp": days,
                         "amount": rng.gamma(2.0, 20.0, len(days)).round(2)})
    good.to_csv(root / "good.csv", index=False)
    sim = simulate_churn(300, seed=1, start="2023-01-01", end="2025-01-01")
    sim.transactions.to_csv(root / "churn_tx.csv", index=False)
    telco, _ = simulate_churn_table(200, seed=0)
    telco.drop(columns=["Churn"]).to_csv(root / "telco_nolabel.csv", index=False)
    maybe = telco.copy()
    maybe.loc[maybe.index[:3], "Churn"] = "Maybe"
    maybe.to_csv(root / "telco_maybe.csv", index=False)
    (root / "adir.parquet").mkdir()
    # one year of transactions: the old default of 6 cutoffs every 90 days reaches back before the log
    simulate_churn(300, seed=1, start="2023-01-01", end="2024-01-01").transactions.to_csv(root / "short_tx.csv",
                                                                                       index=False)
    n = 120  # a bank-style customer table (RowNumber, CustomerId, Surname, ..., Exited)
    pd.DataFrame({"RowNumber": np.arange(1, n + 1), "CustomerId": rng.choice(10**6, n, replace=False) + 15 * 10**6,
                  "Surname": [f"Name{i}" for i in range(n)], "Age": rng.integers(18, 90, n),
                  "Geography": rng.choice(["France", "Spain", "Germany"], n),
                  "Exited": rng.integers(0, 2, n)}).to_csv(root / "bank.csv", index=False)
    campaign = simulate_campaign_table(1500, seed=3).table  # crosssell: control, email, discount
    campaign.to_csv(root / "campaign.csv", index=False)
    campaign.assign(Group=campaign["Group"].where(campaign.index % 50 != 7)).to_csv(root / "campaign_gaps.csv",
                                                                                      index=False)
    few = campaign.copy()  # only 3 email customers converted: too few treated responders to evaluate
    email = few.index[(few["Group"] == "email").to_numpy()]
    few.loc[email, "Converted"] = 0
    few.loc[email[:3], "Converted"] = 1
    few.to_csv(root / "campaign_few.csv", index=False)
    export = simulate_retail_export(150, seed=2, mean_lines=3)
    export.write(root / "export.csv", root / "products.csv")
    export.products.drop(columns="Category").to_csv(root / "products_nocat.csv", index=False)
    return {
        "export": str(root / "export.csv"),
        "products": str(root / "products.csv"),
        "products_nocat": str(root / "products_nocat.csv"),
        "export_map": json.dumps(export.columns, separators=(",", ":")),
        "root": str(root),
        "campaign": str(root / "campaign.csv"),
        "campaign_gaps": str(root / "campaign_gaps.csv"),
        "campaign_few": str(root / "campaign_few.csv"),
        "good": str(root / "good.csv"),
        "churn_tx": str(root / "churn_tx.csv"),
        "short_tx": str(root / "short_tx.csv"),
        "bank": str(root / "bank.csv"),
        "telco_nolabel": str(root / "telco_nolabel.csv"),
        "telco_maybe": str(root / "telco_maybe.csv"),
        "dir": str(root / "adir.parquet"),
        "bad_amount": _csv(root / "bad_amount.csv", "customer_id,timestamp,amount\n1,2024-01-01,10.0\n2,2024-01-02,abc\n"),
        "no_timestamp": _csv(root / "no_ts.csv", "customer_id,date,amount\n1,2024-01-01,10.0\n"),
        "negative": _csv(root / "negative.csv",
                         "customer_id,timestamp,amount\n1,1997-01-01,-10\n2,1997-02-01,-5\n1,1997-03-01,-2\n"),
        "zero": _csv(root / "zero.csv", "customer_id,timestamp,amount\n" + "".join(
            f"{c},1997-0{m}-0{d},0\n" for c in range(1, 30) for m, d in ((1, 1), (3, 2), (5, 3), (8, 4)))),
        "single": _csv(root / "single.csv", "customer_id,timestamp,amount\n1,1997-01-01,10\n1,1997-03-01,12\n"
                       "1,1997-09-01,9\n1,1998-02-01,11\n"),
        "ambiguous": _csv(root / "ambiguous.csv", "customer_id,timestamp,amount\n1,12/04/2011,10\n2,13/04/2011,5\n"),
        "duplicates": _csv(root / "dups.csv", "customer_id,timestamp,amount\n1,1997-01-01,10\n1,1997-01-01,10\n"),
        "xlsx": _csv(root / "tx.xlsx", "not a table"),
        "broken_yaml": _csv(root / "broken.yaml", "data: [1, 2\n"),
        "list_yaml": _csv(root / "list.yaml", "- a\n- b\n"),
        "impossible_date_yaml": _csv(root / "impossible.yaml", "calibration_end: 1997-02-30\n"),
        "responses_no_col": _csv(root / "responses.csv", "customer_id,answer\n1,1\n"),
    }


# (command line with {placeholders}, text the one error line must contain)
CASES = [
    # --------------------------------------------------------------------------------------- train clv
    ("train clv --set period=Q", "period must be one of"),
    ("train clv --set horizon=12", "horizon must be a positive duration"),
    ("train clv --set calibration_end=null --set holdout=abc", "holdout must be a positive duration"),
    ("train clv --set annual_discount_rate=-2", "annual_discount_rate"),
    ("train clv --set annual_discount_rate=true", "annual_discount_rate must be a finite number"),
    ("train clv --set penalizer=-1", "penalizer"),
    ("train clv --set penalizer=.inf", "penalizer must be a finite number"),
    ("train clv --set spend_penalizer=-0.5", "spend_penalizer"),
    ("train clv --set top_n=abc", "top_n must be an integer"),
    ("train clv --set top_n=-3", "top_n must be an integer >= 1"),
    ("train clv --set experiment=", "experiment must be a non-empty name"),
    ("train clv --set registered_model=[a]", "registered_model must be a non-empty name"),
    ("train clv --set refit_full=maybe", "refit_full must be true or false"),
    ("train clv --set calibration_end=12/04/2011", "calibration_end must be a date in ISO 8601 form"),
    ("train clv --set calibration_end=not-a-date", "calibration_end must be a date"),
    ("train clv --set calibration_end=1997-09-31", "calibration_end must be a date that exists in the calendar"),
    ("train clv --config {impossible_date_yaml}", "calibration_end must be a date that exists in the calendar"),
    ("train clv --set data.source=cdnow-sample --set observation_end=2100-01-01",
     "observation_end: is after the last transaction (1998-06-30)"),
    ("train clv --set data.source=cdnow-sample --set calibration_end=null --set holdout=100W", "holdout"),
    ("train clv --set registered_model=a/b", "registered_model must be a registered model name without '/'"),
    ("train clv --set calibration_end=1998-07-01", "calibration_end must be before observation_end"),
    ("train clv --set data.source=cdnow-sample --set calibration_end=1990-01-01", "calibration_end"),
    ("train clv --set output=out/clv.xlsx", "output must be a file name ending with"),
    ("train clv --set output=/proc/custval/x.parquet", "output '/proc/custval/x.parquet' cannot be written"),
    ("train clv --set output={dir}", "is an existing directory"),
    ("train clv --set typo_key=1", "unknown keys ['typo_key']"),
    ("train clv --set data.typo=1", "data: unknown keys ['typo']"),
    ("train clv --set data=3", "data must be a mapping of settings"),
    ("train clv --set data.source=missing.csv", "missing.csv"),
    ("train clv --set data.source={xlsx}", "tx.xlsx"),
    ("train clv --set data.source={bad_amount}", "amount"),
    ("train clv --set data.source={no_timestamp}", "timestamp"),
    ("train clv --set data.source={negative} --set calibration_end=1997-01-15", "no purchases left"),
    ("train clv --set data.source={zero} --set calibration_end=1997-04-01 --set observation_end=1997-08-04",
     "monetary_value"),
    ("train clv --set data.source={single} --set calibration_end=1997-06-01 --set observation_end=1998-02-01",
     "customer"),
    ("train clv --set data.source={ambiguous}", "data.timestamp_format"),
    ("train clv --set data.source={good} --set data.timestamp_format=%d.%m.%Y --set calibration_end=2011-03-01 "
     "--set observation_end=2011-06-30", "does not match timestamp format"),
    ("train clv --set data.source={duplicates}", "duplicate"),
    ("train clv --set data.duplicates=ignore", "data.duplicates must be one of"),
    ("train clv --set data.returns=maybe", "data.returns must be one of"),
    ("train clv --set data.columns.amount=nope --set data.source={good}", "nope"),
    ("train clv --set data.columns.customer_id= --set data.source={good}", "data.columns"),
    ("train clv --set novalue", "key=value"),
    ("train clv --config nope.yaml", "config file not found"),
    ("train clv --config {broken_yaml}", "not valid YAML"),
    ("train clv --config {list_yaml}", "must be a mapping"),
    ("train clv --tracking-uri foo://bar", "unknown scheme 'foo'"),
    ("train clv --tracking-uri http://127.0.0.1:9", "does not answer"),
    ("train clv --tracking-uri sqlite:////no/such/dir/mlflow.db", "does not exist"),
    ("train clv --tracking-uri postgresql://u:p@127.0.0.1:9/db", "tracking URI"),
    # ------------------------------------------------------------------- train clv: export policies (data.*)
    ("train clv --set data.missing_ids=maybe", "data.missing_ids must be one of ['error', 'drop']"),
    ("train clv --set data.prices=free", "data.prices must be one of ['drop', 'keep', 'error']"),
    ("train clv --set data.cancellations.policy=ignore", "data.cancellations.policy must be one of ['match', "),
    ("train clv --set data.cancellations.prefix=", "data.cancellations.prefix must be a non-empty name"),
    ("train clv --set data.cancellations=3", "data.cancellations must be a mapping of settings"),
    ("train clv --set data.categories.unmapped=drop", "data.categories.unmapped must be one of ['warn', 'error']"),
    ("train clv --set data.categories.typo=1", "data.categories: unknown keys ['typo']"),
    ("train clv --set data.categories=[a.csv]", "data.categories must be a mapping of settings"),
    ("train clv --set data.columns.category=Cat --set data.categories.file=p.csv",
     "data.categories.file must be null when data.columns maps category"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y "
     "--set data.missing_ids=drop", "does not match timestamp format"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.missing_ids=drop",
     "data.timestamp_format"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y%n%H:%M",
     "set data.missing_ids: drop"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y%n%H:%M "
     "--set data.missing_ids=drop", "data.duplicates: keep"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y%n%H:%M "
     "--set data.missing_ids=drop --set data.duplicates=drop --set data.prices=error", "unit_price"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y%n%H:%M "
     "--set data.missing_ids=drop --set data.duplicates=drop --set data.cancellations.column=Nope", "Nope"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.categories.file=missing.csv",
     "missing.csv"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y%n%H:%M "
     "--set data.missing_ids=drop --set data.duplicates=drop --set data.categories.file={products_nocat}",
     "category: column missing"),
    ("train clv --set data.source={export} --set data.columns={export_map} --set data.timestamp_format=%m/%d/%Y%n%H:%M "
     "--set data.missing_ids=drop --set data.duplicates=drop --set data.categories.file={products} "
     "--set data.categories.category=Category --set data.categories.unmapped=error", "data.categories.unmapped: warn"),
    ("train clv --set data.source={export} --set data.columns.customer_id=CustomerID "
     "--set data.columns.timestamp=InvoiceDate --set data.columns.unit_price=UnitPrice", "data.columns.quantity"),
    ("train clv --set data.source={export} --set data.columns.price=UnitPrice", "unknown contract names ['price']"),
    ("train clv --set data.source={good} --set data.categories.file={products}", "data.columns.product"),
    # ----------------------------------------------------------------------------- train churn / propensity
    ("train churn --set data.missing_ids=drop", "data.missing_ids='drop' would be ignored"),
    ("train churn --set data.table={telco_nolabel} --set data.cancellations.policy=returns",
     "data.cancellations.policy='returns' would be ignored"),
    ("train churn --set snapshots.horizon_days=0", "snapshots.horizon_days must be an integer >= 1"),
    ("train churn --set snapshots.windows=[30,-1]", "snapshots.windows[1]"),
    ("train churn --set snapshots.windows=[30,30]", "snapshots.windows must be distinct day counts"),
    ("train churn --set snapshots.n_cutoffs=2", "snapshots.n_cutoffs must be at least split.n_valid + split.n_test + 1"),
    ("train churn --set model.xgboost.eval_metric=foo", "model.xgboost.eval_metric must be one XGBoost metric"),
    ("train churn --set snapshots.clv_features=maybe", "snapshots.clv_features must be true or false"),
    ("train churn --set split.n_test=0", "split.n_test"),
    ("train churn --set model.calibration=platt", "model.calibration"),
    ("train churn --set model.xgboost.random_state=3", "model.xgboost.random_state is set by the job"),
    ("train churn --set model.xgboost.learnin_rate=0.1", "model.xgboost.learnin_rate: unknown"),
    ("train churn --set model.xgboost.subsample=1.5", "model.xgboost.subsample"),
    ("train churn --set model.xgboost=3", "model.xgboost"),
    ("train churn --set model.tree.max_depth=0", "model.tree.max_depth"),
    ("train churn --set model.tree.min_samples_leaf=abc", "model.tree.min_samples_leaf must be an integer"),
    ("train churn --set model.candidates=[forest]", "model.candidates must be a non-empty list of ['xgboost'"),
    ("train churn --set model.candidates=[]", "model.candidates must be a non-empty list"),
    ("train churn --set model.candidates=[xgboost,average]",
     "model.candidates with average must also list xgboost and logistic"),
    ("train churn --set model.candidates=xgboost", "model.candidates must be a list"),
    ("train churn --set model.cv_folds=1", "model.cv_folds must be >= 2"),
    ("train churn --set model.cv_folds=abc", "model.cv_folds must be an integer"),
    ("train churn --set model.logistic.C=0", "model.logistic.C must be a finite number > 0"),
    ("train churn --set model.logistic.penalty=l1", "model.logistic.penalty: unknown LogisticClassifier setting"),
    ("train churn --set model.logistic=3", "model.logistic must be a mapping"),
    ("train churn --set simulate.start=2026-01-01", "simulate.start must be before simulate.end"),
    ("train churn --set simulate.n_customers=0", "simulate.n_customers"),
    ("train churn --set seed=-1", "seed must be an integer >= 0"),
    ("train churn --set data.customers=customers.csv", "data.customers='customers.csv' would be ignored"),
    ("train churn --set split.valid_fraction=0.3", "split.valid_fraction would be ignored"),
    ("train churn --set output=scores.txt", "output must be a file name ending with"),
    ("train churn --set data.table=missing.csv", "missing.csv"),
    ("train churn --set data.table={telco_nolabel} --set data.id_column=customerID", "label"),
    ("train churn --set data.table={telco_maybe} --set data.id_column=customerID --set data.label=Churn",
     "Maybe"),
    ("train churn --set data.source={churn_tx} --set data.customers=missing.csv", "missing.csv"),
    ("train churn --set data.source={churn_tx} --set snapshots.n_cutoffs=40", "cutoff"),
    ("train churn --set snapshots.n_cutoffs=0", "snapshots.n_cutoffs must be auto or an integer >= 1, got 0"),
    ("train churn --set snapshots.n_cutoffs=all", "snapshots.n_cutoffs must be auto or an integer >= 1, got 'all'"),
    ("train churn --set snapshots.max_cutoffs=2",
     "snapshots.max_cutoffs must be at least split.n_valid + split.n_test + 1"),
    ("train churn --set snapshots.min_history_days=0", "snapshots.min_history_days must be an integer >= 1"),
    ("train churn --set snapshots.n_cutoffs=6 --set snapshots.min_history_days=30",
     "snapshots.min_history_days would be ignored"),
    ("train churn --set data.drop=[age]", "data.drop=['age'] would be ignored: data.source=simulate"),
    ("train churn --set data.source={churn_tx} --set data.keep=[age]", "data.keep=['age'] would be ignored"),
    ("train churn --set data.table={bank} --set data.id_column=CustomerId --set data.label=Exited "
     "--set data.drop=[Surnme]", "customers.Surnme: listed in data.drop but not a column of the table"),
    ("train churn --set data.table={bank} --set data.id_column=CustomerId --set data.label=Exited "
     "--set data.keep=[Nope]", "customers.Nope: listed in data.keep but not a column of the table"),
    ("train churn --set data.table={bank} --set data.id_column=CustomerId --set data.label=Exited "
     "--set data.drop=[CustomerId]", "data.drop must not name data.id_column ('CustomerId')"),
    ("train churn --set data.table={bank} --set data.id_column=CustomerId --set data.label=Exited "
     "--set data.drop=[Exited]", "data.drop must not name data.label ('Exited')"),
    ("train churn --set data.table={bank} --set data.id_column=CustomerId --set data.label=Exited "
     "--set data.drop=[Age] --set data.keep=[Age]", "data.keep and data.drop both name 'Age'"),
    ("train churn --set data.table={bank} --set data.id_column=CustomerId --set data.label=Exited "
     "--set data.drop=[Age,Age]", "data.drop must be distinct column names"),
    ("train churn --set data.source={short_tx} --set snapshots.n_cutoffs=6",
     "snapshots.n_cutoffs=6 cutoffs every 90 days reach back to 2022-07-10, before any history; set "
     "snapshots.n_cutoffs=auto"),
    ("train churn --set data.source={short_tx} --set snapshots.min_history_days=400",
     "no cutoff has snapshots.min_history_days=400 days of history"),
    ("train churn --set data.source={short_tx} --set snapshots.every_days=150",
     "snapshots.n_cutoffs=auto finds 2 cutoffs every snapshots.every_days=150 days"),
    ("train propensity --set data.source={short_tx} --set snapshots.n_cutoffs=5", "set snapshots.n_cutoffs=auto"),
    ("train churn --set data.source={churn_tx} --set snapshots.every_days=30",
     "finds 6 cutoffs every snapshots.every_days=30 days"),
    ("train propensity --set categories=[home,home]", "categories must be distinct"),
    ("train propensity --set cross_sell_new_only=maybe", "cross_sell_new_only must be true or false"),
    ("train propensity --set data.table=telco.csv", "propensity needs transactions"),
    ("train propensity --set data.source={churn_tx} --set categories=[garden]", "garden"),
    ("train propensity --set model.xgboost.max_dept=3", "model.xgboost.max_dept: unknown"),
    ("train propensity --set model.candidates=[logistic,logistic]", "model.candidates must be distinct"),
    ("train propensity --set model.logistic.transform=sqrt", "model.logistic.transform must be one of"),
    ("tune churn --timeout -5", "timeout"),
    ("tune churn --set model.xgboost.learning_rate=0", "model.xgboost.learning_rate"),
    ("tune churn --set model.cv_folds=0", "model.cv_folds must be >= 2"),
    ("tune churn --set model.logistic.max_iter=0", "model.logistic.max_iter must be an integer >= 1"),
    # ------------------------------------------------------------------------------------------ segment
    ("segment --set clv.period=Q", "clv.period must be one of"),
    ("segment --set clv.annual_discount_rate=-2", "clv.annual_discount_rate"),
    ("segment --set rfm_period_months=5", "rfm_period_months must divide 12"),
    ("segment --set migration_by=tier", "migration_by must be one of"),
    ("segment --set pareto_tops=[0,0.2]", "pareto_tops[0]"),
    ("segment --set rollout.cost_per_contact=1", "given together"),
    ("segment --set rollout.responses=r.csv", "rollout.responses needs rollout.cost_per_contact"),
    ("segment --set rollout.cost_per_contact=0 --set rollout.net_profit_per_response=5",
     "rollout.cost_per_contact must be a number > 0"),
    ("segment --set segments.tier_cuts=[0.9,0.5]", "segments.tier_cuts must be strictly increasing shares"),
    ("segment --set segments.tier_cuts=[0.5,0.8,1.0]", "segments.tier_cuts[2] must be a number in (0, 1)"),
    ("segment --set segments.tier_names=[a,b]", "segments.tier_names must be 4 distinct names"),
    ("segment --set segments.tier_names=[a,a,b,c]", "segments.tier_names must be 4 distinct names"),
    ("segment --set segments.monetary=foo", "segments.monetary must be one of ['monetary_value', 'revenue']"),
    ("segment --set segments.loyalty=foo", "segments.loyalty must be one of"),
    ("segment --set segments.lapsed_after=1", "segments.lapsed_after must be >= at_risk_after"),
    ("segment --set segments.cycle_thresholds=[6,3]", "segments.cycle_thresholds must be two increasing"),
    ("segment --set rollout.cell=foo", "rollout.cell must be one of"),
    ("segment --set clv.model_uri=models:/custval-clv@champion --set clv.period=D",
     "clv.period='D' would be ignored: clv.model_uri's model brings its own"),
    ("segment --set data.source=cdnow-sample --set rollout.responses=missing.csv --set rollout.cost_per_contact=1 "
     "--set rollout.net_profit_per_response=20", "missing.csv"),
    ("segment --set as_of=12/04/2011", "as_of must be a date"),
    ("segment --set data.source=cdnow-sample --set as_of=1990-01-01", "as_of"),
    ("segment --set clv.model_uri=models:/nope@champion", "clv.model_uri"),
    ("segment --set data.source=cdnow-sample --set rollout.responses={responses_no_col} "
     "--set rollout.cost_per_contact=1 --set rollout.net_profit_per_response=20", "responded"),
    ("segment --out out.xlsx", "--out must be a file name ending with"),
    ("segment --out /proc/custval/x.parquet", "--out '/proc/custval/x.parquet' cannot be written"),
    ("segment --set data.source={negative}", "no purchases left"),
    # ------------------------------------------------------------------------------------------ inspect
    ("inspect --pipeline nope", "--pipeline must be one of"),
    ("inspect --set period=Q", "period must be one of"),
    ("inspect --config {broken_yaml}", "not valid YAML"),
    ("inspect --set data.missing_ids=maybe", "data.missing_ids must be one of"),
    ("inspect --set data.source=missing.csv", "missing.csv"),
    ("inspect --set data.source={xlsx}", "tx.xlsx"),
    ("inspect --set data.source={bad_amount}", "amount"),
    ("inspect --set data.source={export} --set data.columns.customer_id=nope", "nope"),
    ("inspect --set data.source={export} --set data.columns={export_map} --set data.categories.file=missing.csv",
     "missing.csv"),
    ("inspect --pipeline churn", "data.source=simulate"),
    ("inspect --pipeline churn --set data.table={telco_nolabel}", "data.table is a customer table"),
    ("inspect --pipeline segment --set clv.period=Q", "clv.period must be one of"),
    # ----------------------------------------------------------------------------------------- simulate
    ("simulate --out x.xlsx", "--out must be a file name ending with"),
    ("simulate --out {root}/sim.parquet --truth {root}/truth.xlsx", "--truth must be a file name ending with"),
    ("simulate --out {root}/same.parquet --truth {root}/same.parquet", "name the same file"),
    ("simulate --out /proc/custval/x.parquet", "cannot be written"),
    ("simulate --out {root}/sim2.parquet --customers 0", "--customers must be an integer >= 1"),
    ("simulate --out {root}/sim3.parquet --kind nope", "--kind must be one of ['bgnbd', 'retail-export']"),
    ("simulate --out {root}/sim4.parquet --products {root}/p.csv", "--products is the product master of --kind"),
    ("simulate --kind retail-export --out {root}/sim5.csv --truth {root}/t.csv", "--truth is the ground truth of"),
    ("simulate --kind retail-export --out {root}/sim6.csv --products {root}/p.xlsx",
     "--products must be a file name ending with"),
    # ------------------------------------------------------------------------------------------- uplift
    ("train uplift --set model.learners=[t,nope]", "model.learners must be a non-empty list of"),
    ("train uplift --set model.learners=[t,t]", "model.learners must be distinct"),
    ("train uplift --set model.learners=[average,class_transformation] --set model.target=spend",
     "model.learners ['average', 'class_transformation'] models nothing here"),
    ("train uplift --set model.target=visits", "model.target must be one of"),
    ("train uplift --set model.xgboost.random_state=3", "model.xgboost.random_state is set by the job"),
    ("train uplift --set model.xgboost.max_depth=-1", "model.xgboost.max_depth"),
    ("train uplift --set model.n_trials=-1", "model.n_trials must be an integer >= 0"),
    ("train uplift --set model.n_folds=1", "model.n_folds must be 0 (one validation split) or >= 2"),
    ("train uplift --set model.average=[s,nope]", "model.average must be a non-empty list of distinct learners"),
    ("train uplift --set model.learners=[dr,average] --set model.average=[s,t]",
     "model.average ['s', 't']: average needs one of them in model.learners"),
    ("train uplift --set model.choice=maybe", "model.choice must be one of ['stack', 'one_se', 'best']"),
    ("train uplift --set model.choice=stack --set model.n_folds=0", "model.choice must be one_se or best with model.n_folds 0"),
    ("train uplift --set split.test_fraction=0.9", "split.test_fraction"),
    ("train uplift --set targeting.cost=-1", "targeting.cost must be a finite number >= 0"),
    ("train uplift --set targeting.cost={{offer:%nfree}}", "targeting.cost.offer must be a finite number >= 0"),
    ("train uplift --set targeting.cost={{email:%n1}}", "targeting.cost must give a cost per contact for every"),
    ("train uplift --set targeting.top_share=0", "targeting.top_share"),
    ("train uplift --set targeting.population=active --set targeting.value=second_lifetime_value",
     "targeting.value"),
    ("train uplift --set campaign.id=spring", "campaign.id must be winback or crosssell"),
    ("train uplift --set campaign.response_days=0", "campaign.response_days"),
    ("train uplift --set data.spend=Revenue", "data.spend"),
    ("train uplift --set data.source={churn_tx}", "data.campaigns must name the campaign log"),
    ("train uplift --set output=targets.xlsx", "output"),
    ("train uplift --set data.table={campaign} --set data.id_column=CustomerRef --set data.treatment=Group",
     "data.outcome must name the 0/1 outcome column"),
    ("train uplift --set data.table={campaign} --set data.outcome=Converted --set data.treatment=Group",
     "customer_id"),
    ("train uplift --set data.table={campaign} --set data.id_column=CustomerRef --set data.treatment=Arm "
     "--set data.outcome=Converted", "Arm"),
    ("train uplift --set data.table={campaign} --set data.id_column=CustomerRef --set data.treatment=Group "
     "--set data.outcome=Revenue", "Revenue"),
    ("train uplift --set data.table={campaign} --set data.id_column=CustomerRef --set data.treatment=Group "
     "--set data.outcome=Converted --set data.control=holdout", "holdout"),
    ("train uplift --set data.table={campaign_gaps} --set data.id_column=CustomerRef --set data.treatment=Group "
     "--set data.outcome=Converted", "Group"),
    ("train uplift --set data.table={campaign_few} --set data.id_column=CustomerRef --set data.treatment=Group "
     "--set data.outcome=Converted --set data.drop=[CampaignCode]", "responders"),
    ("train uplift --set data.table={campaign} --set data.id_column=CustomerRef --set data.treatment=Group "
     "--set data.outcome=Converted --set model.target=spend", "data.spend must name the spend column"),
    # ------------------------------------------------------------------------------------------- score
    ("score --as-of 2024-13-01", "as_of"),
    ("score --out scores.xlsx", "output"),
    ("score", "models.clv: cannot load 'models:/custval-clv@champion'"),
    ("score --set models.clv=null --set models.churn=runs:/0123456789abcdef/model", "models.churn"),
    ("score --set models.clv=null --set models.churn=null --set models.propensity=null --set models.winback=null",
     "models are all null"),
    ("score --set retention.arm=discount", "retention.arm would be ignored"),
    ("score --set retention.save_rate=1.5", "retention.save_rate"),
    ("score --set retention.cost=-1", "retention.cost must be >= 0"),
    ("score --set cross_sell.margins={{grocery:%n-1}}", "cross_sell.margins.grocery must be >= 0"),
    ("score --set models.propensity=null --set cross_sell.new_only=false", "cross_sell would be ignored"),
    ("score --set models.winback=null --set winback.cost=3", "winback.cost would be ignored"),
    ("score --set scoring.chunk_size=0", "scoring.chunk_size"),
    ("score --set data.source={good} --set simulate.seed=3", "simulate.seed would be ignored"),
    ("score --set data.customers={good}", "data.customers would be ignored"),
    ("score --set data.source={good} --set data.drop=[customer_id]", "data.drop must not name data.id_column"),
    # ------------------------------------------------------------------------------ scorer, serve
    ("scorer register", "models.clv: cannot load 'models:/custval-clv@champion'"),
    ("scorer register --set scoring.chunk_size=0", "scoring.chunk_size"),
    ("scorer register --set models.clv=null --set models.churn=null --set models.propensity=null "
     "--set models.winback=null", "models are all null"),
    ("scorer refresh --set retention.save_rate=1.5", "retention.save_rate"),
    ("scorer refresh --set models.winback=models:/custval-uplift-winback/7", "models.clv: cannot load"),
    ("serve --model models:/custval-scorer@champion --port 5999", "--model: cannot load"),
    ("serve --model runs:/0123456789abcdef/model --port 5999", "--model must name a registered model version"),
    # ------------------------------------------------------------------------------------------- config
    ("config show nope", "pipeline must be one of"),
    ("config show uplift_campaign --set targeting.margin=0", "targeting.margin"),
    ("config show clv --set period=Q", "period must be one of"),
]


@pytest.mark.parametrize(("command", "message"), CASES, ids=[c for c, _ in CASES])
def test_malformed_input_exits_2_with_one_line_and_leaves_nothing(command, message, files, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    args = [part.format(**files).replace("%n", " ") for part in command.split(" ")]
    try:
        result = runner.invoke(app, args)
    finally:
        mlflow.set_tracking_uri(None)
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output and isinstance(result.exception, SystemExit), output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert message in errors[0], output
    # nothing written: no outputs, no simulated files; nothing registered or finished in the store
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
                  and not p.name.startswith("mlflow.db"))
    assert [p for p in left if not p.startswith("mlartifacts")] == [], left
    for name in ("sim.parquet", "truth.xlsx", "same.parquet", "sim2.parquet", "sim3.parquet", "sim4.parquet",
                 "sim5.csv", "sim6.csv", "p.csv", "t.csv"):
        assert not (Path(files["root"]) / name).exists()
    if (tmp_path / "mlflow.db").exists():
        client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
        assert client.search_registered_models() == []
        finished = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
                    if r.info.status == "FINISHED"]
        assert finished == []


def test_the_table_covers_every_command_with_at_least_60_cases():
    assert len(CASES) >= 60
    commands = {" ".join(c.split(" ")[:2]) for c, _ in CASES}
    assert {"train clv", "train churn", "train propensity", "train uplift", "tune churn", "segment --set",
            "simulate --out", "config show", "inspect --set", "score --set", "scorer register", "scorer refresh",
            "serve --model"} <= commands


@pytest.mark.parametrize(("args", "message"), [
    (["tune", "churn", "--trials", "0"], "Invalid value for '--trials'"),
    (["simulate", "--customers", "abc", "--out", "x.parquet"], "Invalid value for '--customers'"),
    (["simulate"], "Missing option '--out'"),
    (["config", "show"], "Missing argument 'pipeline'"),
    (["train", "clv", "--nope"], "No such option: --nope"),
    (["inspect", "--nope"], "No such option: --nope"),
    (["serve", "--port", "0"], "Invalid value for '--port'"),
    (["serve", "--port", "abc"], "Invalid value for '--port'"),
])
def test_usage_errors_of_the_command_are_one_line_too(args, message, tmp_path):
    """The real `custval` entry point (not the test runner's): typer's usage errors become one error line."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "custval.cli", *args], cwd=tmp_path, capture_output=True,
                          text=True, env={**__import__("os").environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_deleted_experiment_is_named_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri)
    client.delete_experiment(client.create_experiment("custval-clv"))
    try:
        result = runner.invoke(app, ["train", "clv", "--set", "data.source=cdnow-sample"])
    finally:
        mlflow.set_tracking_uri(None)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "experiment 'custval-clv' was deleted" in errors[0] and "experiment=" in errors[0]
    assert not (tmp_path / "outputs").exists()
