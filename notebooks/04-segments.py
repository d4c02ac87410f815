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
# # RFM and customer-value segments
#
# Who are the best customers, who is slipping away, and whom is a mailing worth sending to? We build the classic
# RFM cells (recency, frequency, monetary quintiles), follow them from one half-year to the next, run a
# test-and-rollout with a break-even index, and then segment by value: CLV tiers (the customer pyramid), the
# value x loyalty matrix, the purchase-cycle x spend grid, Pareto concentration, lifecycle stages and the value
# lost when customers lapse, with the discount-rate helpers at the end.
#
# Data: an Online-Retail-like log simulated with `simulate_retail` (orders with categories, quantities and
# returns; BG/NBD purchases with CDNOW-like parameters, so we know the truth) and, at the end, the full CDNOW
# log through the tracked `segment` job (`custval segment`).

# %%
import tempfile
import warnings

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd

from custval.data.loaders import load_transactions
from custval.data.simulate import simulate_retail
from custval.errors import CustvalWarning
from custval.features import rfm_scores as rs
from custval.features import value_segments as vs
from custval.features.rfm import rfm_summary
from custval.models.clv.discount import risk_adjusted_rate, risk_adjusted_rates, weighted_cost_of_capital
from custval.models.clv.value import CustomerValue, customer_lifetime_value
from custval.plots.segments import plot_pareto_curve, plot_rfm_heatmap, plot_tier_pyramid
from custval.scoring import targeting as tg

pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)

# %% [markdown]
# ## 1. An Online-Retail-like order log
# 20,000 customers over Online Retail's span (2010-12-01 .. 2011-12-09). Each order has an id, a category drawn
# from the customer's own category affinity, a quantity and a value; 3% of orders come back later as a
# negative row with the same order id.

# %%
sim = simulate_retail(20_000, seed=4, return_rate=0.03)
raw = sim.transactions
print(f"{len(raw):,} rows, {raw['customer_id'].nunique():,} customers, {(raw['amount'] < 0).sum():,} return rows")
raw[raw["order_id"].isin(raw.loc[raw["amount"] < 0, "order_id"].head(2))]

# %% [markdown]
# The returns policy matters: `exclude` drops the return rows (a returned order still counts as a purchase and
# its full value as revenue), `net` subtracts a return from its day (a day whose net value is <= 0 is no
# purchase). Returns here come 1-30 days after the order, on days without another order, so `net` drops them too.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CustvalWarning)
    tx = load_transactions(raw, returns="exclude")
    tx_net = load_transactions(raw, returns="net")
print(f"exclude: {len(tx):,} rows, revenue {tx['amount'].sum():,.0f}")
print(f"net:     {len(tx_net):,} rows, revenue {tx_net['amount'].sum():,.0f}")
print(f"returned value: {-raw.loc[raw['amount'] < 0, 'amount'].sum():,.0f}")
as_of = tx["timestamp"].max().normalize()

# %% [markdown]
# ## 2. RFM cells
# Recency = days since the last purchase (lower is better), frequency = purchase days, monetary = total spend, each
# scored 1..5 by quintile (5 best). Ties share a score: most customers bought once, so the whole frequency-1 block
# scores 1 and F scores 2 and 3 stay empty.

# %%
classic = rs.rfm_table(tx)
cells = classic.join(rs.rfm_scores(classic))
print(cells[["r_score", "f_score", "m_score"]].apply(lambda s: s.value_counts().sort_index()).fillna(0).astype(int))
cells["rfm_cell"].value_counts().head(10)

# %%
plot_rfm_heatmap(cells)

# %%
plot_rfm_heatmap(cells, value="monetary")

# %% [markdown]
# ## 3. RFM per half-year and migration between cells
# Scores are computed within each half-year (everyone acquired by its end, frequency and spend in the half), so
# moving between cells means changing relative standing. The first half holds only December 2010.

# %%
halves = rs.period_rfm(tx, months=6)
halves.groupby("period").agg(customers=("customer_id", "size"), buyers=("frequency", lambda f: int((f > 0).sum())),
                             revenue=("monetary", "sum"))

# %%
migration = rs.rfm_migration(halves, "2011-01-01", "2011-07-01", by="r_score", normalize=True)
migration.round(2)

# %%
cell_moves = rs.rfm_migration(halves, "2011-01-01", "2011-07-01").drop(index="(none)", errors="ignore")
stayed = sum(cell_moves.loc[c, c] for c in cell_moves.index.intersection(cell_moves.columns))
print(f"{stayed / cell_moves.to_numpy().sum():.1%} of the customers acquired by mid-2011 kept their RFM cell "
      f"from H1 to H2 2011")

# %% [markdown]
# ## 4. Test and rollout with the break-even index
# A mailing costs 1.00 per contact and a response nets 30.00, so it pays when the response rate reaches
# BE = 1 / 30 = 3.3%. We mail a systematic 20% test sample (every 5th customer after sorting by RFM score, which
# spreads the test over the scores), observe responses, and roll out to the scores whose break-even index
# BEI = (R - BE) / BE x 100 is >= 0. The simulated truth: response rate 1% x 1.35^(score - 3), rising with the score.

# %%
rng = np.random.default_rng(7)


def true_rate(score):
    return 0.01 * 1.35 ** (np.asarray(score) - 3)


cost, profit = 1.0, 30.0
test = tg.systematic_sample(cells, 5, by="rfm_score")
test = test.assign(responded=(rng.random(len(test)) < true_rate(test["rfm_score"])).astype(int))
rest = cells.drop(test.index)
plan = tg.rollout_plan(test, rest, cost_per_contact=cost, net_profit_per_response=profit, cell="rfm_score")
print(f"break-even rate {plan.break_even_rate:.2%}; pooled test response {plan.pooled_response_rate:.2%}")
plan.cells.round(3)

# %%
truly_profitable = {str(s) for s in range(3, 16) if true_rate(s) >= plan.break_even_rate}
print("rolled out scores:", sorted(plan.selected_cells, key=int))
print("scores that truly pay:", sorted(truly_profitable, key=int))
print(f"expected profit: rollout {plan.expected_profit_rollout:,.0f} on {plan.contacts_rollout:,} contacts, "
      f"mail everyone {plan.expected_profit_all:,.0f} on {plan.contacts_all:,}")
chosen = rest["rfm_score"].astype(str).isin(plan.selected_cells)
true_profit = (true_rate(rest["rfm_score"]) * profit - cost)
print(f"true expected profit: rollout {true_profit[chosen].sum():,.0f}, everyone {true_profit.sum():,.0f}")

# %% [markdown]
# The same arithmetic for one mailing: 510 responses to 30,000 pieces is a 1.7% response at a cost of 10 per
# response when the budget is 5,100; against a 1.5% break-even that is a BEI of +13.

# %%
rate = tg.response_rate(510, 30_000)
print(rate, tg.cost_per_response(5_100, 510), round(tg.break_even_index(rate, 0.015), 1))

# %% [markdown]
# ## 5. CLV tiers: the customer pyramid
# BG/NBD + Gamma-Gamma on the RFM summary in weeks, 12-month CLV at 10% a year; tiers by CLV quantile: bottom
# 50% lead, next 30% iron, 15% gold, top 5% platinum. Stages use the purchase cycle (see section 9).

# %%
rfm = rfm_summary(tx, as_of, period="W")
value = CustomerValue(period="W", horizon="12M", annual_discount_rate=0.10).fit(rfm)
customers = rfm.join(value.predict(rfm)).join(classic["monetary"].rename("revenue"))
seg = vs.segment_customers(customers, lifecycle_method="cycle")
vs.segment_summary(seg, "tier").round(3)

# %%
plot_tier_pyramid(seg["tier"])

# %% [markdown]
# ## 6. Value x loyalty matrix
# High value = CLV at or above the median; loyal = P(alive) >= 0.5. Note BG/NBD's P(alive) is 1 for every
# one-time buyer (dropout can only follow a repeat purchase), so one-time buyers are never "at risk" or "marginal":

# %%
print(vs.segment_summary(seg, "value_loyalty").round(3))
pd.crosstab(seg["value_loyalty"], np.where(seg["frequency"] > 0, "repeat buyer", "one-time buyer"))

# %% [markdown]
# ## 7. Purchase cycle x spend grid
# Average time between purchases (short / medium / long) against average order value (high / medium / low),
# tertiles of the repeat buyers; one-time buyers count as long-cycle.

# %%
print(vs.segment_summary(seg, "cycle_class").round(3))
pd.crosstab(seg["cycle_class"], seg["tier"])

# %% [markdown]
# ## 8. Pareto: how concentrated are revenue and value?

# %%
vs.pareto_table(seg, ("revenue", "clv")).round(3)

# %%
plot_pareto_curve({"revenue": seg["revenue"], "clv": seg["clv"]})

# %% [markdown]
# ## 9. Lifecycle stages and customer-loss value
# new (first purchase within one typical cycle), active, at risk (more than 2 own cycles without a purchase),
# lapsed (more than 4). Segmenting again as of six months earlier, the customer-loss value is the CLV (as valued
# then) of the customers who were active then and have lapsed since.

# %%
print(vs.segment_summary(seg, "lifecycle_stage").round(3))
earlier = as_of - pd.DateOffset(months=6)
rfm_then = rfm_summary(tx, earlier, period="W")
value_then = CustomerValue(period="W", horizon="12M", annual_discount_rate=0.10).fit(rfm_then)
then = vs.segment_customers(rfm_then.join(value_then.predict(rfm_then)), lifecycle_method="cycle")
loss = vs.customer_loss_value(then, seg)
moved = pd.crosstab(then["lifecycle_stage"], seg.loc[then.index, "lifecycle_stage"])
print(moved)
print(f"{(loss > 0).sum():,} customers active on {earlier.date()} lapsed by {as_of.date()}: "
      f"customer-loss value {loss.sum():,.0f} ({loss.sum() / then['clv'].sum():.1%} of the CLV then)")

# %% [markdown]
# The simulator knows the truth. Most "lapsed" customers are technically still alive in BG/NBD terms (a customer
# drops out only after a repeat purchase, with a small probability) but they buy rarely: their true purchase rate
# (lambda while alive, purchases per year) is a fraction of the active customers'. The model's own expected
# purchases over the next 12 months follow the same order.

# %%
truth = sim.truth.loc[seg.index]
pd.DataFrame({
    "alive_at_end": truth["alive_at_end"],
    "true purchases/year": truth["lambda"] * 365.25 * truth["alive_at_end"],
    "predicted next 12M": seg["expected_purchases"],
}).groupby(seg["lifecycle_stage"], observed=True).mean().round(3)

# %% [markdown]
# Categories per tier: the simulator draws each customer's category affinity independently of their value, so the
# mix is flat across tiers; a cross-sell signal lives in each customer's own mix, not in the tier.

# %%
orders = tx.join(seg["tier"], on="customer_id")
pd.crosstab(orders["tier"], orders["category"], normalize="index").round(3)

# %% [markdown]
# ## 10. Discount rates
# The weighted cost of capital with 40% debt at 8% and 60% equity at 12% is 10.4%. Risk-adjusted rates scale it by
# (1 + p) for risky customers and (1 - p) for safe ones; here p = 1 - P(alive), one rate per customer, so doubtful
# customers' future purchases are discounted harder.

# %%
wacc = weighted_cost_of_capital(debt_share=0.4, cost_of_debt=0.08, cost_of_equity=0.12)
print(f"WACC {wacc:.3f}", {k: round(v, 4) for k, v in risk_adjusted_rates(wacc, 0.3).items()})
rates = risk_adjusted_rate(wacc, 1 - seg["p_alive"].to_numpy(), risk="high")
clv_wacc = customer_lifetime_value(value.purchase_model_, value.spend_model_, rfm, horizon="12M", period="W",
                                   annual_discount_rate=wacc)
clv_risk = customer_lifetime_value(value.purchase_model_, value.spend_model_, rfm, horizon="12M", period="W",
                                   annual_discount_rate=rates)
print(f"total 12-month CLV: at 10% {seg['clv'].sum():,.0f}, at WACC {clv_wacc.sum():,.0f}, "
      f"risk-adjusted {clv_risk.sum():,.0f}")
pd.crosstab(seg["tier"], vs.value_tiers(pd.Series(clv_risk, index=seg.index)), rownames=["tier at 10%"],
            colnames=["tier risk-adjusted"])

# %% [markdown]
# ## 11. CDNOW through the tracked job
# `custval segment` (here called as a function) does all of the above on the full CDNOW log (23,570 customers)
# as of 1998-06-30 and logs one MLflow run (here a throw-away SQLite store): summaries, Pareto, RFM cells per
# half-year and their migration as tables, the heat maps, Pareto curve and pyramid as plots.

# %%
from custval.jobs.segment import load_config, segment  # noqa: E402

store = tempfile.mkdtemp()
result = segment(load_config(), out=f"{store}/segments.parquet", tracking_uri=f"sqlite:///{store}/mlflow.db")
print(result.run_id, result.output)
print(f"top 20% of customers: {result.metrics['top20_revenue_share']:.1%} of revenue, "
      f"{result.metrics['top20_clv_share']:.1%} of 12-month CLV")
result.summaries["tier"].round(3)

# %%
result.summaries["lifecycle_stage"].round(3)

# %%
result.summaries["value_loyalty"].round(3)

# %%
print(result.migration_periods)
result.cells_by_period.head(10)

# %%
plot_rfm_heatmap(result.customers, value="clv")
