"""CLV combination: equivalence with lifetimes' customer_lifetime_value (30-day and 4.345-week months),
the discounting convention, and the CustomerValue estimator on CDNOW."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from sklearn.base import clone

from custval.errors import ConfigError, DataError, NotFittedError, SchemaError
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue, customer_lifetime_value, step_ends
from custval.units import CONVENTION

MONTHLY = 0.01  # lifetimes' default monthly discount rate


class LifetimesPurchases:
    """Duck-typed purchase model over a lifetimes BetaGeoFitter: customer_lifetime_value only needs
    expected_purchases(X, t) (and CustomerValue p_alive(X))."""

    def __init__(self, bgf: BetaGeoFitter):
        self.bgf = bgf

    def expected_purchases(self, X: pd.DataFrame, t: float) -> np.ndarray:
        return self.bgf.conditional_expected_number_of_purchases_up_to_time(
            t, X["frequency"], X["recency"], X["T"]
        ).to_numpy()

    def p_alive(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.bgf.conditional_probability_alive(X["frequency"], X["recency"], X["T"]))


@pytest.fixture(scope="module")
def cdnow_weeks() -> pd.DataFrame:
    return load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def cdnow_days(cdnow_weeks) -> pd.DataFrame:
    return cdnow_weeks.assign(recency=cdnow_weeks["recency"] * 7, T=cdnow_weeks["T"] * 7)


@pytest.fixture(scope="module")
def bgf_weeks(cdnow_weeks) -> BetaGeoFitter:
    return BetaGeoFitter().fit(cdnow_weeks["frequency"], cdnow_weeks["recency"], cdnow_weeks["T"])


@pytest.fixture(scope="module")
def bgf_days(cdnow_days) -> BetaGeoFitter:
    return BetaGeoFitter().fit(cdnow_days["frequency"], cdnow_days["recency"], cdnow_days["T"])


@pytest.fixture(scope="module")
def spend_pair(cdnow_weeks) -> tuple[GammaGamma, GammaGammaFitter]:
    """Our fitted GammaGamma and a lifetimes GammaGammaFitter holding exactly the same parameters."""
    ours = GammaGamma().fit(cdnow_weeks)
    ref = GammaGammaFitter()
    ref.params_ = pd.Series([ours.params_[k] for k in ("p", "q", "gamma")], index=["p", "q", "v"])
    return ours, ref


def _lifetimes_clv(ref, bgf, X, *, time, discount_rate, freq):
    return ref.customer_lifetime_value(bgf, X["frequency"], X["recency"], X["T"], X["monetary_value"],
                                       time=time, discount_rate=discount_rate, freq=freq).to_numpy()


# ----------------------------------------------------------------------- equivalence with lifetimes
@pytest.mark.parametrize(("months", "monthly_rate"), [(12, MONTHLY), (5, 0.03)])
def test_equivalent_to_lifetimes_daily(cdnow_days, bgf_days, spend_pair, months, monthly_rate):
    ours_gg, ref_gg = spend_pair
    expected = _lifetimes_clv(ref_gg, bgf_days, cdnow_days, time=months, discount_rate=monthly_rate, freq="D")
    # lifetimes: 30-day months, discounted (1+d)^month at the end of each month
    got = customer_lifetime_value(
        LifetimesPurchases(bgf_days), ours_gg, cdnow_days, horizon=f"{30 * months}D", period="D", step="30D",
        annual_discount_rate=(1 + monthly_rate) ** (365.25 / 30) - 1,
    )
    assert isinstance(got, np.ndarray) and got.shape == (len(cdnow_days),)
    assert expected.min() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_equivalent_to_lifetimes_weekly(cdnow_weeks, bgf_weeks, spend_pair):
    ours_gg, ref_gg = spend_pair
    expected = _lifetimes_clv(ref_gg, bgf_weeks, cdnow_weeks, time=12, discount_rate=MONTHLY, freq="W")
    # lifetimes: 4.345-week months (30.415 days)
    got = customer_lifetime_value(
        LifetimesPurchases(bgf_weeks), ours_gg, cdnow_weeks, horizon=f"{12 * 4.345}W", period="W", step="4.345W",
        annual_discount_rate=(1 + MONTHLY) ** (365.25 / (4.345 * 7)) - 1,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # and it is NOT what our default (weekly steps, 12 mean months, 10%/year) gives: the conventions matter
    default = customer_lifetime_value(LifetimesPurchases(bgf_weeks), ours_gg, cdnow_weeks)
    assert np.max(np.abs(default / expected - 1)) > 1e-3


# ------------------------------------------------------------------------------------ discounting
def test_step_ends_and_partial_final_step():
    np.testing.assert_allclose(step_ends("10D", "D", "3D"), [3, 6, 9, 10])
    np.testing.assert_allclose(step_ends("360D", "D", "30D"), np.arange(1, 13) * 30.0)
    np.testing.assert_allclose(step_ends("2W", "D"), np.arange(1, 15))
    # 12 mean months in weeks: 52.178... weeks -> 52 full weeks and a partial 53rd
    ends = step_ends("12M", "W")
    assert len(ends) == 53
    assert ends[-1] == pytest.approx(365.25 / 7)
    assert ends[-2] == 52
    # float noise must not add a sliver step
    assert len(step_ends(f"{12 * 4.345}W", "W", "4.345W")) == 12
    with pytest.raises(ConfigError):
        step_ends("12", "W")
    with pytest.raises(ConfigError):
        step_ends("12M", "Q")


def test_partial_step_hand_computed(cdnow_weeks, bgf_weeks, spend_pair):
    ours_gg, _ = spend_pair
    purchases = LifetimesPurchases(bgf_weeks)
    X = cdnow_weeks.iloc[:50]
    annual = 0.2
    got = customer_lifetime_value(purchases, ours_gg, X, horizon="10W", period="W", step="3W",
                                  annual_discount_rate=annual)
    # independent: cash flows at weeks 3, 6, 9 and 10, discounted by (1.2)^(-weeks*7/365.25)
    E = {t: purchases.expected_purchases(X, t) for t in (0, 3, 6, 9, 10)}
    flows = sum((E[b] - E[a]) * 1.2 ** (-b * 7 / 365.25) for a, b in ((0, 3), (3, 6), (6, 9), (9, 10)))
    np.testing.assert_allclose(got, ours_gg.expected_spend(X) * flows, rtol=1e-12)


def test_rate_zero_is_spend_times_purchases_and_higher_rate_is_lower(cdnow_weeks, bgf_weeks, spend_pair):
    ours_gg, _ = spend_pair
    purchases = LifetimesPurchases(bgf_weeks)
    clv = {
        rate: customer_lifetime_value(purchases, ours_gg, cdnow_weeks, horizon="12M", period="W",
                                      annual_discount_rate=rate)
        for rate in (0.0, 0.05, 0.10, 0.5)
    }
    horizon_weeks = 365.25 / 7
    undiscounted = ours_gg.expected_spend(cdnow_weeks) * purchases.expected_purchases(cdnow_weeks, horizon_weeks)
    np.testing.assert_allclose(clv[0.0], undiscounted, rtol=1e-10)
    assert np.all(clv[0.05] < clv[0.0])
    assert np.all(clv[0.10] < clv[0.05])
    assert np.all(clv[0.5] < clv[0.10])
    # a cash flow at most one year out is discounted by at least 1/(1+r): bounds the effect
    assert np.all(clv[0.10] >= clv[0.0] / 1.10)


def test_per_customer_rates(cdnow_weeks, bgf_weeks, spend_pair):
    ours_gg, _ = spend_pair
    purchases = LifetimesPurchases(bgf_weeks)
    X = cdnow_weeks.iloc[:300]
    by_rate = {rate: customer_lifetime_value(purchases, ours_gg, X, annual_discount_rate=rate) for rate in (0.05, 0.2)}
    rates = np.where(np.arange(len(X)) % 2 == 0, 0.05, 0.2)
    mixed = customer_lifetime_value(purchases, ours_gg, X, annual_discount_rate=rates)
    np.testing.assert_allclose(mixed, np.where(rates == 0.05, by_rate[0.05], by_rate[0.2]), rtol=1e-14)
    with pytest.raises(ConfigError, match="one per customer"):
        customer_lifetime_value(purchases, ours_gg, X, annual_discount_rate=rates[:-1])
    with pytest.raises(ConfigError, match="> -1"):
        customer_lifetime_value(purchases, ours_gg, X, annual_discount_rate=np.full(len(X), -1.5))


def test_customer_lifetime_value_errors(cdnow_weeks, bgf_weeks, spend_pair):
    ours_gg, _ = spend_pair
    purchases = LifetimesPurchases(bgf_weeks)
    with pytest.raises(SchemaError, match="T: required column is missing"):
        customer_lifetime_value(purchases, ours_gg, cdnow_weeks.drop(columns="T"))
    with pytest.raises(ConfigError, match="annual_discount_rate"):
        customer_lifetime_value(purchases, ours_gg, cdnow_weeks, annual_discount_rate=-1.0)
    with pytest.raises(ConfigError, match="horizon"):
        customer_lifetime_value(purchases, ours_gg, cdnow_weeks, horizon=12)


# ------------------------------------------------------------------------------------ CustomerValue
def _lifetimes_bgf_with(params: dict) -> BetaGeoFitter:
    """A lifetimes BetaGeoFitter holding the given BG/NBD parameters (the independent oracle)."""
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series({k: params[k] for k in ("r", "alpha", "a", "b")})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    return bgf


def _lifetimes_ggf_with(params: dict) -> GammaGammaFitter:
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series([params["p"], params["q"], params["gamma"]], index=["p", "q", "v"])
    return ggf


@pytest.fixture(scope="module")
def customer_value(cdnow_weeks) -> CustomerValue:
    return CustomerValue().fit(cdnow_weeks)


def test_customer_value_on_cdnow_matches_independent_computation(customer_value, cdnow_weeks):
    model = customer_value
    # shuffled rows with a string index: the index must be carried through
    X = cdnow_weeks.sample(frac=1.0, random_state=0)
    X.index = "c" + X.index.astype(str)
    pred = model.predict(X)
    assert list(pred.columns) == ["expected_purchases", "p_alive", "expected_spend", "clv"]
    pd.testing.assert_index_equal(pred.index, X.index)
    assert model.n_excluded_from_spend_ == 0
    assert model.spend_model_.n_customers_ == 946
    # sub-models are the published CDNOW fits (BG/NBD r=0.243, alpha=4.414, a=0.793, b=2.426)
    bg = model.purchase_model_.params_
    for name, value in (("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)):
        assert bg[name] == pytest.approx(value, abs=1e-3), name

    bgf = _lifetimes_bgf_with(model.purchase_model_.params_)
    ggf = _lifetimes_ggf_with(model.spend_model_.params_)
    f, r, T = X["frequency"], X["recency"], X["T"]
    spend = ggf.conditional_expected_average_profit(f, X["monetary_value"]).to_numpy()
    horizon = 365.25 / 7  # 12M = 365.25 days, in weeks
    ends = np.append(np.arange(1.0, 53.0), horizon)  # weekly cash flows, last one partial
    cumulative = np.column_stack([np.zeros(len(X))] + [bgf.predict(t, f, r, T).to_numpy() for t in ends])
    discount = 1.10 ** (-ends * 7 / 365.25)
    discounted_purchases = np.diff(cumulative, axis=1) @ discount

    np.testing.assert_allclose(pred["expected_purchases"], bgf.predict(horizon, f, r, T), rtol=1e-6)
    np.testing.assert_allclose(pred["p_alive"], bgf.conditional_probability_alive(f, r, T), rtol=1e-6)
    np.testing.assert_allclose(pred["expected_spend"], spend, rtol=1e-6)
    np.testing.assert_allclose(pred["clv"], spend * discounted_purchases, rtol=1e-6)
    # discounting really happened, by at most one year's worth
    assert np.all(pred["clv"] < pred["expected_spend"] * pred["expected_purchases"])
    assert np.all(pred["clv"] > pred["expected_spend"] * pred["expected_purchases"] / 1.10)


def test_customer_value_discount_rate(customer_value, cdnow_weeks):
    clv = {}
    for rate in (0.0, 0.10, 0.25):
        model = clone(customer_value).set_params(annual_discount_rate=rate)
        model.purchase_model_ = customer_value.purchase_model_
        model.spend_model_ = customer_value.spend_model_
        model.n_excluded_from_spend_ = 0
        clv[rate] = model.predict(cdnow_weeks)
    undiscounted = clv[0.0]["expected_spend"] * clv[0.0]["expected_purchases"]
    np.testing.assert_allclose(clv[0.0]["clv"], undiscounted, rtol=1e-10)
    assert np.all(clv[0.10]["clv"] < clv[0.0]["clv"])
    assert np.all(clv[0.25]["clv"] < clv[0.10]["clv"])


def test_customer_value_excludes_nonpositive_spend(cdnow_weeks):
    X = cdnow_weeks.copy()
    repeat_ids = X.index[X["frequency"] > 0][:4]
    X.loc[repeat_ids, "monetary_value"] = [0.0, 0.0, 0.0, -5.0]
    model = CustomerValue().fit(X)
    assert model.n_excluded_from_spend_ == 4
    assert model.spend_model_.n_customers_ == 942
    # the spend model equals a GammaGamma fitted on the remaining repeat buyers
    direct = GammaGamma().fit(X.drop(index=repeat_ids))
    assert model.spend_model_.params_ == pytest.approx(direct.params_, rel=1e-10)
    # excluded customers are scored as an observed mean of 0: the population mean shrunk by frequency
    pred = model.predict(X)
    p, q, g = (model.spend_model_.params_[k] for k in ("p", "q", "gamma"))
    x = X.loc[repeat_ids, "frequency"]
    weight = p * x / (p * x + q - 1)
    np.testing.assert_allclose(pred.loc[repeat_ids, "expected_spend"], (1 - weight) * p * g / (q - 1), rtol=1e-12)
    assert np.all(np.isfinite(pred["clv"])) and np.all(pred["clv"] > 0)


def test_customer_value_to_dict_round_trip(customer_value, cdnow_weeks):
    spec = customer_value.to_dict()
    text = json.dumps(spec, allow_nan=False)
    assert spec["unit_convention"] == CONVENTION
    assert spec["hyper_params"] == {"period": "W", "horizon": "12M", "annual_discount_rate": 0.10,
                                   "purchase_model": None, "spend_model": None}
    restored = CustomerValue.from_dict(json.loads(text))
    assert restored.get_params() == customer_value.get_params()
    assert restored.n_excluded_from_spend_ == customer_value.n_excluded_from_spend_
    pd.testing.assert_frame_equal(restored.predict(cdnow_weeks), customer_value.predict(cdnow_weeks))
    with pytest.raises(ConfigError, match="unit convention"):
        CustomerValue.from_dict({**spec, "unit_convention": "1M = 30 days"})
    with pytest.raises(ConfigError):
        CustomerValue.from_dict({**spec, "model": "GammaGamma"})


def test_customer_value_sklearn_conventions_and_errors(cdnow_weeks):
    model = CustomerValue(period="D", horizon="90D", annual_discount_rate=0.05,
                          purchase_model=BetaGeo(penalizer=0.01))
    copy = clone(model)
    params = copy.get_params()
    assert {k: params[k] for k in ("period", "horizon", "annual_discount_rate", "purchase_model__penalizer",
                                   "spend_model")} == {"period": "D", "horizon": "90D", "annual_discount_rate": 0.05,
                                                       "purchase_model__penalizer": 0.01, "spend_model": None}
    with pytest.raises(NotFittedError):
        CustomerValue().predict(cdnow_weeks)
    with pytest.raises(NotFittedError):
        CustomerValue().to_dict()
    with pytest.raises(ConfigError, match="period"):
        CustomerValue(period="Q").fit(cdnow_weeks)
    with pytest.raises(ConfigError, match="horizon"):
        CustomerValue(horizon="12").fit(cdnow_weeks)
    with pytest.raises(ConfigError, match="annual_discount_rate"):
        CustomerValue(annual_discount_rate=-2).fit(cdnow_weeks)
    with pytest.raises(ConfigError, match="penalizer"):
        CustomerValue(purchase_model=BetaGeo(penalizer=-0.1)).fit(cdnow_weeks)
    with pytest.raises(ConfigError, match="spend_model__penalizer"):
        CustomerValue(spend_model=GammaGamma(penalizer=-0.1)).fit(cdnow_weeks)
    with pytest.raises(ConfigError, match="annual_discount_rate"):
        CustomerValue(annual_discount_rate="10%").fit(cdnow_weeks)
    with pytest.raises(SchemaError, match="recency: required column is missing"):
        CustomerValue().fit(cdnow_weeks.drop(columns="recency"))
    with pytest.raises(SchemaError, match="monetary_value: must be numeric"):
        CustomerValue().fit(cdnow_weeks.assign(monetary_value=cdnow_weeks["monetary_value"].astype(str)))
    bad = cdnow_weeks.copy()
    bad.iloc[3, bad.columns.get_loc("monetary_value")] = np.nan
    with pytest.raises(DataError, match="monetary_value: must be finite"):
        CustomerValue().fit(bad)


# ------------------------------------------------------------ fast path vs the step-by-step definition
def _stepwise_discounted(purchase_model, X, ends, annual, days) -> np.ndarray:
    """The definition, one step at a time: sum_k [E(t_k) - E(t_{k-1})] (1 + annual)^(-t_k days / 365.25), each E
    from the public expected_purchases with one horizon per customer (row by row, nothing shared)."""
    total, previous = np.zeros(len(X)), np.zeros(len(X))
    for t in ends:
        cumulative = purchase_model.expected_purchases(X, np.full(len(X), float(t)))
        total += (cumulative - previous) * (1.0 + np.asarray(annual, dtype=float)) ** (-t * days / 365.25)
        previous = cumulative
    return total


def _assert_predict_equals_stepwise(model: CustomerValue, X: pd.DataFrame) -> pd.DataFrame:
    pred = model.predict(X)
    pd.testing.assert_index_equal(pred.index, X.index)
    days = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}[model.period]
    ends = step_ends(model.horizon, model.period)
    bg = model.purchase_model_
    spend = model.spend_model_.expected_spend(X)
    want_clv = spend * _stepwise_discounted(bg, X, ends, model.annual_discount_rate, days)
    assert np.all(want_clv > 0)
    np.testing.assert_allclose(pred["clv"], want_clv, rtol=1e-10)
    np.testing.assert_allclose(pred["expected_purchases"],
                               bg.expected_purchases(X, np.full(len(X), ends[-1])), rtol=1e-10)
    np.testing.assert_array_equal(pred["p_alive"], bg.p_alive(X))
    np.testing.assert_array_equal(pred["expected_spend"], spend)
    return pred


def _in_period(daily: CustomerValue, period: str, **hyper_params) -> CustomerValue:
    """The daily model re-expressed in another period: alpha (a rate per period) scales, nothing else does."""
    spec = daily.to_dict()
    days = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}[period]
    bg = spec["fitted"]["purchase_model"]["fitted"]
    bg["params"][bg["names"].index("alpha")] /= days
    spec["hyper_params"] = {**spec["hyper_params"], "period": period, **hyper_params}
    return CustomerValue.from_dict(spec)


@pytest.fixture(scope="module")
def simulated_daily() -> pd.DataFrame:
    """3,000 simulated customers summarised daily (integer T: many repeated (frequency, T) pairs)."""
    from custval.data.simulate import simulate_bgnbd
    from custval.features.rfm import rfm_summary

    sim = simulate_bgnbd(3000, r=0.243, alpha=30.9, a=0.793, b=2.426, spend_p=6.25, spend_q=3.74, spend_gamma=15.44,
                         start="2024-01-01", end="2025-12-31", period="D", seed=4)
    return rfm_summary(sim.transactions, sim.observation_end, "D")


@pytest.fixture(scope="module")
def simulated_model(simulated_daily) -> CustomerValue:
    return CustomerValue(period="D").fit(simulated_daily)


def test_predict_equals_stepwise_definition_on_cdnow(customer_value, cdnow_weeks):
    # 12 mean months in weeks: 52 weekly steps and a partial 53rd; shuffled rows, string index
    X = cdnow_weeks.sample(frac=1.0, random_state=1)
    X.index = "c" + X.index.astype(str)
    assert len(step_ends(customer_value.horizon, customer_value.period)) == 53
    _assert_predict_equals_stepwise(customer_value, X)


@pytest.mark.parametrize(("period", "horizon"), [("D", "12M"), ("W", "12M"), ("M", "12M"), ("W", "100D")])
def test_predict_equals_stepwise_definition_on_simulated_data(simulated_model, simulated_daily, period, horizon):
    days = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}[period]
    X = simulated_daily.assign(recency=simulated_daily["recency"] / days, T=simulated_daily["T"] / days)
    assert len(X.drop_duplicates(["frequency", "T"])) < 0.6 * len(X)  # shared (frequency, T) rows
    ends = step_ends(horizon, period)
    assert ends[-1] != np.floor(ends[-1]) or period == "M"  # 365.25 days / 100 days: partial last steps
    model = _in_period(simulated_model, period, horizon=horizon, annual_discount_rate=0.15)
    _assert_predict_equals_stepwise(model, X)


def test_predict_on_duplicate_and_identical_rows(simulated_model, simulated_daily):
    X = pd.concat([simulated_daily, simulated_daily.iloc[:700]])
    X.index = X.index.astype(str) + "-" + pd.Index(np.arange(len(X)).astype(str))
    pred = _assert_predict_equals_stepwise(simulated_model, X)
    # a row repeated is scored identically each time
    np.testing.assert_array_equal(pred.to_numpy()[-700:], pred.to_numpy()[:700])
    repeat_buyer = simulated_daily[simulated_daily["frequency"] > 2].iloc[[0]]
    same = pd.concat([repeat_buyer] * 500)
    pred_same = _assert_predict_equals_stepwise(simulated_model, same)
    np.testing.assert_array_equal(pred_same.to_numpy(), np.repeat(simulated_model.predict(repeat_buyer).to_numpy(), 500, 0))


@pytest.mark.parametrize("step", [None, "3W", "30D"])
def test_customer_lifetime_value_fast_path_with_per_customer_rates(simulated_model, simulated_daily, step):
    X = simulated_daily.assign(recency=simulated_daily["recency"] / 7, T=simulated_daily["T"] / 7)
    bg = _in_period(simulated_model, "W").purchase_model_
    rng = np.random.default_rng(2)
    for rates in (rng.choice([0.05, 0.1, 0.3], size=len(X)), rng.uniform(0.0, 0.4, size=len(X)), 0.1):
        got = customer_lifetime_value(bg, simulated_model.spend_model_, X, horizon="20W", period="W", step=step,
                                      annual_discount_rate=rates)
        want = simulated_model.spend_model_.expected_spend(X) * _stepwise_discounted(
            bg, X, step_ends("20W", "W", step), rates, 7.0)
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_numpy_scalars_are_accepted_as_settings(cdnow_weeks):
    model = CustomerValue(purchase_model=BetaGeo(penalizer=np.int64(0)), annual_discount_rate=np.array(0.1)).fit(
        cdnow_weeks)
    reference = CustomerValue().fit(cdnow_weeks)
    np.testing.assert_allclose(model.predict(cdnow_weeks)["clv"], reference.predict(cdnow_weeks)["clv"], rtol=1e-12)
