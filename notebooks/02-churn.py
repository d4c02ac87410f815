# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Churn and cross-sell propensity
#
# Who is about to stop buying, why, and who will buy a category next? We simulate a customer base whose true
# churn probabilities we know exactly, build point-in-time snapshots (features strictly before each cutoff,
# labels from the 90 days after it), split by time, fit a depth-limited decision tree and XGBoost, calibrate
# them on the validation cutoff and compare both with the Bayes oracle on the test cutoff. Then: the tree's
# rules for the business, each customer's top reasons, a propensity model for one category, and the tracked
# `train churn` job that registers the model in MLflow.

# %%
import matplotlib

matplotlib.use("Agg")
import pandas as pd

from custval.data.simulate_churn import simulate_churn
from custval.features.snapshots import (
    build_snapshot,
    build_snapshots,
    cutoff_schedule,
    feature_columns,
    time_split,
)
from custval.metrics.classification import brier, calibration_table, classification_report, roc_auc
from custval.models.classifiers import BoostedClassifier, CalibratedClassifier, TreeClassifier
from custval.plots.classification import plot_calibration, plot_feature_importance, plot_gains

pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)
HORIZON = 90

# %% [markdown]
# ## 1. A customer base with a known truth
# 12,000 customers sign up over 2023-2024 and buy in five categories. Their purchase rate depends on their
# attributes (age, income, region, channel, plan; some missing) and on how much they bought in the last 30
# days; each day they may silently drop out, more likely the longer since their last purchase. The simulator
# can compute, for any cutoff, each customer's exact probability of making no purchase in the next 90 days
# given everything observable before the cutoff: the best any model could do.

# %%
sim = simulate_churn(12_000, seed=2)
print(f"{len(sim.transactions):,} orders of {sim.customers.shape[0]:,} customers, "
      f"{sim.transactions['timestamp'].min().date()} .. {sim.transactions['timestamp'].max().date()}")
sim.customers.head()

# %% [markdown]
# ## 2. Point-in-time snapshots and a split by time
# Ten monthly cutoffs; every feature uses only transactions before its cutoff (recency, frequency and spend over
# 30/90/180/365 days, trends between windows, inter-purchase times, tenure, category shares and days since each
# category, the customer's attributes). The label is churn = no purchase in the 90 days after the cutoff, among
# customers who bought in the year before it. The last cutoff is the test set; validation is the latest cutoff
# whose label window ends before the test cutoff; training uses the cutoffs whose labels end before validation.

# %%
cutoffs = cutoff_schedule(sim.observation_end, n_cutoffs=10, every_days=30, horizon_days=HORIZON)
snapshots = build_snapshots(sim.transactions, cutoffs, customers=sim.customers, horizon_days=HORIZON)
split = time_split(snapshots, horizon_days=HORIZON)
features = feature_columns(snapshots)
for name, part in (("train", split.train), ("valid", split.valid), ("test", split.test)):
    print(f"{name:5s}: cutoffs {sorted(part['cutoff'].dt.date.unique())}, {len(part):,} rows, "
          f"churn rate {part['churn'].mean():.1%}")
print(f"{len(features)} features: {', '.join(features[:12])}, ...")

# %% [markdown]
# ## 3. Decision tree and XGBoost, calibrated on validation
# XGBoost stops early on the validation cutoff; both models weight the classes (churners are the minority in
# some cutoffs), so their raw scores are not probabilities: a calibrator (isotonic or sigmoid, whichever has the
# lower out-of-fold log loss on validation) maps them back.

# %%
X_train, y_train = split.train[features], split.train["churn"]
X_valid, y_valid = split.valid[features], split.valid["churn"]
X_test, y_test = split.test[features], split.test["churn"]

xgb = BoostedClassifier(random_state=0).fit(X_train, y_train, eval_set=(X_valid, y_valid))
tree = TreeClassifier(max_depth=5, min_samples_leaf=100, random_state=0).fit(X_train, y_train)
models = {name: CalibratedClassifier(estimator=model).fit(X_valid, y_valid)
          for name, model in (("xgboost", xgb), ("tree", tree))}
print(f"xgboost stopped at {xgb.best_iteration_ + 1} trees; calibration: "
      + ", ".join(f"{name} {model.method_}" for name, model in models.items()))

# %% [markdown]
# ## 4. Against the oracle
# The oracle is the simulator's exact Bayes probability at the test cutoff. The bars: XGBoost's ROC AUC
# at least 97% of the oracle's, the tree within 0.05 of XGBoost, and the Brier score within 10% of the oracle's.

# %%
test_cutoff = split.test["cutoff"].iloc[0]
oracle = split.test["customer_id"].map(sim.churn_probability(test_cutoff, horizon_days=HORIZON)).to_numpy()
probabilities = {name: model.predict_proba(X_test)[:, 1] for name, model in models.items()}
probabilities["oracle"] = oracle
report = pd.DataFrame({name: classification_report(y_test, p) for name, p in probabilities.items()}).T
print(report[["roc_auc", "pr_auc", "log_loss", "brier", "lift_10", "capture_20"]].round(4))
auc = {name: roc_auc(y_test, p) for name, p in probabilities.items()}
print(f"xgboost AUC / oracle AUC = {auc['xgboost'] / auc['oracle']:.3f}; tree - xgboost = "
      f"{auc['tree'] - auc['xgboost']:+.3f}; Brier xgboost / oracle = "
      f"{brier(y_test, probabilities['xgboost']) / brier(y_test, oracle):.3f}")

# %%
ax = plot_gains(y_test, probabilities)
ax.figure

# %%
ax = plot_calibration(y_test, probabilities)
print(calibration_table(y_test, probabilities["xgboost"], n_bins=10).round(3))
ax.figure

# %% [markdown]
# ## 5. What the business reads: the tree's rules and each customer's reasons
# The tree is the readable model: every leaf with its rows and churn rate. For XGBoost, each customer's top 3
# reasons are the features whose contributions push their churn risk up the most.

# %%
print(models["tree"].estimator.rules_text()[:2500])

# %%
ax = plot_feature_importance(xgb.feature_importances_, top=15)
ax.figure

# %%
at_risk = split.test.assign(churn_probability=probabilities["xgboost"]).nlargest(10, "churn_probability")
reasons = models["xgboost"].explain(at_risk[features], top=3)
at_risk[["customer_id", "churn_probability", "recency_days", "frequency"]].join(reasons.filter(like="reason_"))

# %% [markdown]
# ## 6. Cross-sell propensity for one category
# propensity_electronics = buys electronics in the 90 days after the cutoff, among customers who never bought
# it before (cross-sell). The simulator's category truth conditions on each customer's hidden category taste,
# so its AUC is an upper bound rather than the exact Bayes figure.

# %%
cross = build_snapshots(sim.transactions, cutoffs, customers=sim.customers, horizon_days=HORIZON,
                        cross_sell_new_only=True)
target = "propensity_electronics"
cross_split = time_split(cross.dropna(subset=[target]), horizon_days=HORIZON)
# among never-buyers, the category's own recency is always missing and its share always 0: not features
own = {"days_since_electronics", "share_electronics"}
cross_features = [column for column in feature_columns(cross) if column not in own]
parts = [(part[cross_features], part[target].astype(int)) for part in
         (cross_split.train, cross_split.valid, cross_split.test)]
(Xa, ya), (Xv, yv), (Xt, yt) = parts
propensity = CalibratedClassifier(
    estimator=BoostedClassifier(random_state=0).fit(Xa, ya, eval_set=(Xv, yv))).fit(Xv, yv)
truth = sim.category_probability(cross_split.test["cutoff"].iloc[0], horizon_days=HORIZON, n_draws=64)
upper = cross_split.test["customer_id"].map(truth["electronics"]).to_numpy()
print(f"new electronics buyers: {yt.mean():.1%} of {len(yt):,} test customers; AUC model "
      f"{roc_auc(yt, propensity.predict_proba(Xt)[:, 1]):.3f} vs truth-with-taste {roc_auc(yt, upper):.3f}")

# %% [markdown]
# ## 7. The tracked pipeline
# `custval train churn` does all of the above from `pipelines/churn.yaml`, logs one MLflow run (params, test
# metrics against the oracle, gains/calibration/ROC plots, the tree's rules, reasons for the top-risk customers),
# registers the calibrated XGBoost as `custval-churn` (alias `champion` when its test AUC is at least the
# champion's) and scores everyone as of the end of the data.

# %%
from custval.jobs.train_churn import load_config, train_churn  # noqa: E402

result = train_churn(load_config(None, ["simulate.n_customers=6000", "output=null"]))
print(f"run {result.run_id}: registered custval-churn v{result.registered_version}")
pd.Series(result.metrics).filter(like="test_roc_auc")

# %%
snapshot_now = build_snapshot(sim.transactions, sim.observation_end, customers=sim.customers, labels=False)
print(f"{len(snapshot_now):,} customers active in the year before {sim.observation_end.date()} to score")
