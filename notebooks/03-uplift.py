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
# # Uplift: whom to contact, with which offer, for the most incremental profit
#
# A churn model says who is likely to leave; it does not say whom a contact changes. Some customers buy anyway,
# some never will, and some ("sleeping dogs") buy *less* once contacted. Uplift models estimate, per customer,
# how much a contact changes the chance to buy: P(buy | contacted) - P(buy | not contacted). They need a
# randomised campaign (a control arm that is not contacted) to learn from.
#
# We simulate two randomised campaigns whose effect per customer we know exactly, build the uplift set from the
# transaction log and the campaign log, compare five learners on a validation split against the ceiling of the
# true uplift, look at the sleeping dogs, turn uplift into expected incremental profit under a budget, estimate
# what "contact the top 30%" is worth from the campaign data alone (and check it against the truth), value a
# lapsed customer's return with the second lifetime value, and finally run the whole tracked job and load the
# registered model back from MLflow.

# %%
import tempfile
import warnings

import matplotlib

matplotlib.use("Agg")
import mlflow
import numpy as np
import pandas as pd

from custval.data.campaigns import sample_ratio_test
from custval.data.simulate_campaign import simulate_campaigns
from custval.errors import CustvalWarning
from custval.features.campaigns import campaign_dataset
from custval.features.winback import lapse_features, lapsed_customers, reactivations
from custval.metrics.uplift import (
    policy_value,
    policy_value_at_k,
    policy_value_curve,
    qini_auc_score,
    uplift_at_k,
    uplift_by_decile,
)
from custval.models.second_value import SecondLifetimeValue
from custval.models.uplift.selection import LEARNERS, arm_scores, choose_learner, make_learner, split_campaign
from custval.plots.uplift import plot_profit_curve, plot_qini, plot_uplift_by_decile
from custval.scoring.targeting import incremental_profit, select_targets

pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)
N_CUSTOMERS, SEED = 8_000, 0
XGBOOST = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3}  # the base learners of pipelines/uplift_*.yaml

# %% [markdown]
# ## 1. Two randomised campaigns with a known effect per customer
# `simulate_campaigns` runs on the churn simulator's customer base (2023-2024) and sends two campaigns, each
# customer contacted at most once:
# * **crosssell** (2024-06-03) to the *active* customers (a purchase in the 90 days before), arms `control`,
#   `email` and `discount`;
# * **winback** (2024-07-01) to the *lapsed* customers (no purchase in the 120 days before), arms `control`
#   and `offer`.
#
# A conversion is a purchase within 30 days of the send. The effect of each arm depends on what the log and the
# customer table show at the send day (recency, frequency, channel, plan, income, ...), and for some customers it
# is negative: the simulator knows each customer's conversion probability under every arm (`truth`).

# %%
sim = simulate_campaigns(N_CUSTOMERS, seed=SEED)
print(f"{len(sim.transactions):,} orders of {len(sim.customers):,} customers; campaign log: {len(sim.campaigns):,} "
      "contacts")
for campaign_id, design in sim.designs.items():
    print(f"{campaign_id:9s} sent {design.send_day.date()} to customers with {design.population}: arms "
          f"{dict(design.design)}")
sim.campaigns.head()

# %% [markdown]
# ## 2. The campaign log and the uplift set
# The campaign log has one row per contacted customer: campaign, arm (`treatment`) and send time. The uplift set
# of one campaign joins it with the point-in-time features of each customer at the midnight of the send day
# (nothing from the send day or later) and the outcome of the response window: `y` = a purchase within 30 days,
# `spend` = what was spent in them. We start with the **winback** campaign (one treatment arm).
#
# Before any model: the response rate per arm (the campaign's average effect is the difference to the control)
# and the sample-ratio test, which checks that the arm counts match the planned split. A mismatch means the
# randomisation broke (e.g. a filter applied to one arm only), and then every uplift estimate is biased.

# %%
winback = sim.designs["winback"]
data = campaign_dataset(sim.transactions, sim.campaigns, campaign_id="winback", control="control",
                        arms=winback.treatments, customers=sim.customers, design=winback.design)
print(f"{len(data.X):,} lapsed customers, {data.X.shape[1]} features: {', '.join(data.features[:8])}, ...")
rates = (pd.DataFrame({"arm": data.treatment, "converted": data.y, "spend": data.spend})
         .groupby("arm").agg(customers=("converted", "size"), conversion=("converted", "mean"),
                             spend_per_customer=("spend", "mean")))
print(rates.round(3))
print(f"average effect of the offer: {rates.loc['offer', 'conversion'] - rates.loc['control', 'conversion']:+.1%} "
      "conversion")
srm = sample_ratio_test(data.treatment, winback.design)
print(f"sample-ratio test: counts {srm.counts}, expected {({a: round(e) for a, e in srm.expected.items()})}, "
      f"p = {srm.p_value:.3f} (mismatch: {srm.mismatch})")

# %% [markdown]
# What a broken randomisation looks like: if two thirds of the control customers were lost (a filter in the
# e-mail tool applied to the control arm only), the counts no longer match the 50/50 design and custval warns.

# %%
broken = data.treatment[(data.treatment != "control") | (np.arange(len(data.treatment)) % 3 == 0)]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", CustvalWarning)
    sample_ratio_test(broken, winback.design)
print(caught[0].message)

# %% [markdown]
# ## 3. Five learners compared on validation, against the ceiling of the true uplift
# The customers are split at random, stratified on arm x outcome: 50% train, 20% validation, 30% test. Every
# learner uses the same XGBoost base models, so the comparison is between the methods:
# * **s**: one model with the arm as a feature; uplift = its prediction with the arm on minus off;
# * **t**: one model per arm; uplift = the difference of their predictions;
# * **x**: the T-learner's models, then effect models on the imputed individual effects, blended by the propensity;
# * **dr**: a doubly-robust pseudo-outcome regressed on the features;
# * **class_transformation**: one classifier of "treated and bought, or control and did not buy" (one arm, 0/1).
#
# The score is the **Qini coefficient**: the area between the Qini curve (incremental buyers gained as we contact
# more customers, best predicted first) and the random line, divided by the same area of the best possible
# ranking. 1 = perfect, 0 = no better than random. `choose_learner` keeps the learner with the best validation
# Qini; the test split is only for the final check.

# %%
y = data.y.to_numpy(dtype=float)
treatment = data.treatment.to_numpy(dtype=object)
train, valid, test = split_campaign(treatment, y, valid_fraction=0.2, test_fraction=0.3, seed=SEED)
X = data.X
print(f"train {len(train):,}, valid {len(valid):,}, test {len(test):,} customers")
choice = choose_learner(list(LEARNERS), X.iloc[train], y[train], treatment[train], X.iloc[valid], y[valid],
                        treatment[valid], arms=["offer"], control="control", xgboost=XGBOOST,
                        random_state=SEED, k=0.3)
print(f"chosen: {choice.chosen}")
choice.table.round(3)

# %% [markdown]
# On the test customers: every learner's Qini curve, and the ceiling, the Qini of ranking by the **true** uplift
# (which only a simulator can give). The true uplift does not reach 1: even a perfect ranking of the effects meets
# the noise of who happens to buy. The bar is a best learner at least 80% of that ceiling.

# %%
truth = sim.campaign_truth("winback").loc[data.customer_id.to_numpy()]
true_uplift = truth["uplift_offer"].to_numpy()
t_test = (treatment[test] == "offer").astype(int)
y_test = y[test]
predicted = {name: model.predict(X.iloc[test]) for name, model in choice.models.items()}
test_qini = {name: qini_auc_score(y_test, u, t_test) for name, u in predicted.items()}
ceiling = qini_auc_score(y_test, true_uplift[test], t_test)
print(pd.Series(test_qini).round(3).to_string())
print(f"Qini of the true uplift: {ceiling:.3f}; best learner / ceiling = {max(test_qini.values()) / ceiling:.2f}")
ax = plot_qini(y_test, {**predicted, "true uplift": true_uplift[test]}, t_test)
ax.figure

# %% [markdown]
# Uplift by decile of predicted uplift (chosen learner, test customers): the observed difference between the
# treated and the control customers of each decile, with its standard error, and the model's mean prediction.
# The last column is the simulator's mean true uplift per decile: the top decile should gain at least twice the
# average, the bottom deciles should be near zero or negative (do not contact them).

# %%
u_test = predicted[choice.chosen]
deciles = uplift_by_decile(y_test, u_test, t_test)
order = np.argsort(-u_test, kind="stable")
decile_of = np.empty(len(test), dtype=int)
for k, rows in enumerate(np.array_split(order, 10)):  # the deciles of uplift_by_decile (no ties here)
    decile_of[rows] = k
deciles["true_uplift"] = pd.Series(true_uplift[test]).groupby(decile_of).mean()
print(deciles.round(3))
print(f"top decile true uplift {deciles['true_uplift'].iloc[0]:.3f} vs the average {true_uplift[test].mean():.3f} "
      f"({deciles['true_uplift'].iloc[0] / true_uplift[test].mean():.1f}x); uplift@30% observed "
      f"{uplift_at_k(y_test, u_test, t_test, k=0.3):+.3f}")
ax = plot_uplift_by_decile(y_test, u_test, t_test)
ax.figure

# %% [markdown]
# ## 4. Sleeping dogs
# In the winback campaign the store-channel customers are sleeping dogs: the offer makes them *less* likely to
# come back (true uplift < 0). A targeting model must rank them at the bottom, or the campaign pays to lose
# customers. Where does the chosen model put them?

# %%
dog = true_uplift[test] < 0
print(f"{dog.mean():.0%} of the test customers are sleeping dogs (mean true uplift {true_uplift[test][dog].mean():+.3f})")
share = pd.Series(dog).groupby(decile_of).mean().rename("share of sleeping dogs")
share.index = deciles["percentile"].to_numpy()
print(share.round(2).to_string())
rank = np.empty(len(test))
rank[order] = np.arange(len(test)) / len(test)
print(f"sleeping dogs sit at the {np.median(rank[dog]):.0%} percentile of predicted uplift (median; 0% = first "
      f"contacted); {np.mean(rank[dog] >= 0.7):.0%} of them fall in the bottom 30%")

# %% [markdown]
# ## 5. Revenue uplift
# The same learners can model the spend in the window instead of the conversion (continuous target): the uplift is
# then money, E[spend | offer] - E[spend | control] per customer. The class transformation is for 0/1 outcomes
# only, so `choose_learner` compares the T-, X- and DR-learners. The ceiling is the Qini of the true spend uplift.

# %%
spend = data.spend.to_numpy(dtype=float)
revenue = choose_learner(["t", "x", "dr"], X.iloc[train], spend[train], treatment[train], X.iloc[valid],
                         spend[valid], treatment[valid], arms=["offer"], control="control", continuous=True,
                         xgboost=XGBOOST, random_state=SEED)
spend_uplift = revenue.models[revenue.chosen].predict(X.iloc[test])
true_spend_uplift = truth["spend_uplift_offer"].to_numpy()[test]
print(revenue.table[["valid_qini", "valid_uplift_at_k", "chosen"]].round(3))
print(f"test Qini on spend: {revenue.chosen} {qini_auc_score(spend[test], spend_uplift, t_test):.3f}, true spend "
      f"uplift {qini_auc_score(spend[test], true_spend_uplift, t_test):.3f}; mean predicted spend uplift "
      f"{spend_uplift.mean():.2f} vs true {true_spend_uplift.mean():.2f} per customer")

# %% [markdown]
# ## 6. Targeting: expected incremental profit under a budget
# Expected incremental profit per customer = uplift x value of a response - cost of a contact. Here a conversion
# is worth a 30 margin and a contact (the offer included) costs 10, so the **break-even** uplift is 10 / 30 = 0.33:
# contacting a customer pays only if the offer raises the chance to buy by more than 33 points. `select_targets`
# contacts the customers with a positive expected profit, best first, within a contact limit or a money budget.

# %%
MARGIN, COST = 30.0, 10.0
test_ids = data.customer_id.iloc[test].to_numpy()
profit = incremental_profit(u_test, MARGIN, COST, arms=["offer"])
unlimited = select_targets(profit, test_ids, cost=COST, value=MARGIN)
by_count = select_targets(profit, test_ids, cost=COST, max_contacts=100, value=MARGIN)
by_money = select_targets(profit, test_ids, cost=COST, budget=500.0, value=MARGIN)
for name, plan in (("no limit", unlimited), ("at most 100 contacts", by_count), ("a budget of 500", by_money)):
    print(f"{name:21s}: {plan.contacts:4d} contacts, spend {plan.spend:6.0f}, expected incremental profit "
          f"{plan.total_profit:7.1f}")
print(f"break-even response rate: {unlimited.break_even['offer']:.2f}")
unlimited.targets.head()

# %%
curve = unlimited.curve
ax = plot_profit_curve(curve["share"], curve["expected_profit"])
ax.figure

# %% [markdown]
# With several offers each customer gets at most one: the one with the highest expected profit. The crosssell
# campaign has two, a cheap e-mail (cost 1) and a discount (cost 8, and it lowers the amount spent). A T-learner
# gives one uplift column per arm against the control; under a money budget `select_targets` finds the best mix
# (the budget's shadow price, `lagrange_multiplier`, is what one more unit of budget would earn).

# %%
crosssell = sim.designs["crosssell"]
cross = campaign_dataset(sim.transactions, sim.campaigns, campaign_id="crosssell", control="control",
                         arms=crosssell.treatments, customers=sim.customers, design=crosssell.design)
c_treatment = cross.treatment.to_numpy(dtype=object)
c_y = cross.y.to_numpy(dtype=float)
c_train, c_valid, c_test = split_campaign(c_treatment, c_y, valid_fraction=0.2, test_fraction=0.3, seed=SEED)
c_fit = np.concatenate([c_train, c_valid])
two_arms = make_learner("t", xgboost=XGBOOST, control="control", arms=crosssell.treatments, random_state=SEED)
two_arms.fit(cross.X.iloc[c_fit], c_y[c_fit], c_treatment[c_fit])
c_uplift = two_arms.predict(cross.X.iloc[c_test])
print(arm_scores(c_y[c_test], c_uplift, c_treatment[c_test], crosssell.treatments, "control").round(3))
costs = {"email": 1.0, "discount": 8.0}
c_profit = incremental_profit(c_uplift, MARGIN, costs, arms=list(crosssell.treatments))
for budget in (None, 500.0):
    plan = select_targets(c_profit, cross.customer_id.iloc[c_test].to_numpy(), cost=costs, budget=budget,
                          value=MARGIN)
    print(f"budget {budget}: {plan.contacts} contacts, arm mix {plan.arm_mix.to_dict()}, spend {plan.spend:.0f}, "
          f"expected incremental profit {plan.total_profit:.0f}, shadow price {plan.lagrange_multiplier:.2f}")
print(f"break-even response rates: {plan.break_even.round(3).to_dict()}")

# %% [markdown]
# ## 7. What is "contact the top 30%" worth? The off-policy value
# The profit curve above is the model's own expectation. The campaign manager wants an estimate that does not
# trust the model: because the arms were randomised, the incremental conversions of any targeting rule can be
# estimated from the test customers alone (inverse-propensity weighting: the treated customers the rule selects
# against the control customers it selects), with a confidence interval. The simulator also knows the true
# value of the same rule (sum over the selected customers of true uplift x margin - cost), so we can check.

# %%
top = policy_value_at_k(y_test, t_test, u_test, 0.3, value=MARGIN, cost=COST)
n_top = int(np.floor(0.3 * len(test)))
true_top = (true_uplift[test][order[:n_top]] * MARGIN - COST).sum()
print(f"contact the top 30% ({top.contacts:.0f} of {top.n} test customers): {top.incremental_responses:.1f} extra "
      f"conversions [{top.responses_ci_low:.1f}, {top.responses_ci_high:.1f}], incremental profit "
      f"{top.incremental_profit:.0f} [{top.ci_low:.0f}, {top.ci_high:.0f}] (95%); true value {true_top:.0f}")
everyone = policy_value(y_test, t_test, np.ones(len(test)), value=MARGIN, cost=COST)
true_everyone = (true_uplift[test] * MARGIN - COST).sum()
print(f"contact everyone: incremental profit {everyone.incremental_profit:.0f} [{everyone.ci_low:.0f}, "
      f"{everyone.ci_high:.0f}]; true value {true_everyone:.0f}")

# %% [markdown]
# The same estimate at every share contacted, with its band: the share where the curve peaks is the one to
# roll out, and where the band crosses zero the data cannot tell a gain from a loss. With some 800 test customers
# the band is wide: enough to show that contacting everyone loses money, not enough to prove the gain of the best
# share. A larger campaign (or a holdout of the roll-out) narrows it.

# %%
values = policy_value_curve(y_test, t_test, u_test, value=MARGIN, cost=COST)
ax = plot_profit_curve(values["share"], values["incremental_profit"], ci_low=values["ci_low"],
                       ci_high=values["ci_high"])
ax.figure

# %% [markdown]
# ## 8. Win-back: the second lifetime value of a return
# A fixed margin undervalues a win-back: a lapsed customer who comes back starts a *second life* and keeps buying.
# Its value is learnt from the past: every customer who lapsed (no purchase in 120 days) and came back before the
# send day, with what they spent in the 365 days after the return (`reactivations`). `SecondLifetimeValue` (a
# Poisson regression on orders, mean order, tenure and length of the lapse) predicts that spend for today's
# lapsed customers; x the margin rate, it is the value of a response.

# %%
send_day = winback.send_day
returns = reactivations(sim.transactions, send_day, lapse_days=120, horizon_days=365)
value_model = SecondLifetimeValue().fit(lapse_features(returns), returns["value"].to_numpy())
print(f"{value_model.n_returns_} past returns before {send_day.date()}, mean value {value_model.mean_value_:.0f}")
# the LAPSE_FEATURES of every test customer at the send day (lapse_days=1: whatever the gap, all of them)
lapsed = lapsed_customers(sim.transactions, send_day, lapse_days=1).set_index("customer_id").loc[test_ids]
second_value = value_model.predict(lapse_features(lapsed))
print(f"predicted second lifetime value of the test customers: median {np.median(second_value):.0f}, "
      f"90th percentile {np.quantile(second_value, 0.9):.0f}; correlation with the simulator's "
      f"{np.corrcoef(second_value, truth['second_life_value'].to_numpy()[test])[0, 1]:.2f}")

# %% [markdown]
# Ranking by expected incremental second lifetime value changes who is worth an offer: a customer with a small
# uplift but a valuable return can beat one with a large uplift and little to come back for.

# %%
MARGIN_RATE = 0.3
worth = MARGIN_RATE * second_value
slv_plan = select_targets(incremental_profit(u_test, worth, COST, arms=["offer"]), test_ids, cost=COST, value=worth)
contacted = slv_plan.customers.set_index("customer_id").loc[test_ids, "arm"].notna().to_numpy()
slv_policy = policy_value(y_test, t_test, contacted, value=worth, cost=COST)
true_slv = (true_uplift[test] * worth - COST)[contacted].sum()
print(f"{slv_plan.contacts} of {len(test)} lapsed test customers worth an offer, expected incremental profit "
      f"{slv_plan.total_profit:.0f}; off-policy estimate {slv_policy.incremental_profit:.0f} "
      f"[{slv_policy.ci_low:.0f}, {slv_policy.ci_high:.0f}]; true value {true_slv:.0f}")

# %% [markdown]
# ## 9. The whole job in one call, and the registered model
# `custval train uplift` (`custval.jobs.train_uplift.train_uplift`, configured by `pipelines/uplift_winback.yaml`)
# does all of the above: the simulated winback campaign, the learners compared on validation Qini, the best
# refitted on train + validation, the test metrics against the true uplift, the off-policy values, the lapsed
# customers as of the end of the log ranked by expected incremental second lifetime value, one MLflow run, and
# the model registered as `custval-uplift-winback` (champion when its test Qini is at least the champion's).
# Here with a throw-away SQLite store and no output file.

# %%
from custval.jobs.train_uplift import load_config, train_uplift  # noqa: E402

store = tempfile.mkdtemp()
tracking_uri = f"sqlite:///{store}/mlflow.db"
config = load_config(None, [f"simulate.n_customers={N_CUSTOMERS}", "output=null"])
result = train_uplift(config, tracking_uri=tracking_uri)
print(f"run {result.run_id}: chose {result.chosen}; registered custval-uplift-winback v{result.registered_version}")
pd.Series(result.metrics)[["test_qini", "oracle_test_qini", "policy_top_share_incremental_profit",
                           "true_policy_top_share_incremental_profit", "policy_profit_incremental_profit",
                           "policy_profit_ci_low", "policy_profit_ci_high", "true_policy_profit_incremental_profit",
                           "n_past_returns", "n_ranked", "n_targets", "expected_incremental_profit"]].round(3)

# %% [markdown]
# How to read them: `test_qini` is the chosen learner's Qini on the job's own test customers and
# `oracle_test_qini` the ceiling of the true uplift on them; `policy_top_share_*` is the off-policy value of
# contacting the top 30% by predicted uplift and `policy_profit_*` that of the profit rule (contact whoever has a
# positive expected incremental profit), each with the simulator's true value beside it (`true_policy_*`). The
# last four: the past returns the second lifetime value was learnt from, the lapsed customers ranked as of the
# day after the log, how many are worth an offer, and the total expected incremental profit of contacting them.
# The target list, best first:

# %%
result.targets.head()

# %% [markdown]
# The registered champion, loaded back as a plain MLflow pyfunc: feature rows in, one `uplift_<arm>` column out,
# the same numbers as the fitted model.

# %%
mlflow.set_tracking_uri(tracking_uri)
champion = mlflow.pyfunc.load_model("models:/custval-uplift-winback@champion")
scored = champion.predict(X.head())
print(np.allclose(scored["uplift_offer"].to_numpy(), result.model.predict(X.head())))
scored
