"""LogisticClassifier: the same probabilities as an independent scikit-learn pipeline on the same design, the
true coefficients recovered on a linear truth, missing values imputed with an indicator, exact reasons, unseen
categories scored as missing, parameter checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from custval.errors import ConfigError, CustvalWarning, DataError, NotFittedError
from custval.models.classifiers import LogisticClassifier
from custval.models.classifiers.logistic import signed_log


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data["train"]
    return LogisticClassifier().fit(X, y)


def test_probabilities_equal_an_independent_scikit_learn_pipeline(data, fitted):
    """The same design built by scikit-learn's own transformers (log, median imputation with indicators,
    one-hot with a level for missing, standardisation) and the same penalty give the same probabilities."""
    X, y, _ = data["train"]
    Xt = data["test"][0]
    numeric = ["recency_days", "frequency", "income"]
    categorical = ["plan", "region", "is_member"]

    def as_text(frame):
        return frame.astype(object).where(frame.notna(), "<missing>").astype(str)

    design = ColumnTransformer([
        ("numbers", make_pipeline(FunctionTransformer(signed_log), SimpleImputer(strategy="median", add_indicator=True)),
         numeric),
        ("categories", make_pipeline(FunctionTransformer(as_text), OneHotEncoder()), categorical)])
    reference = make_pipeline(design, StandardScaler(), LogisticRegression(C=1.0, solver="newton-cholesky"))
    reference.fit(X, y)
    np.testing.assert_allclose(fitted.predict_proba(Xt)[:, 1], reference.predict_proba(Xt)[:, 1], atol=1e-10)
    # same design size: 3 numbers + 1 indicator (income has missing values) + plan 3 levels + missing + region 4
    # + is_member 2
    assert len(fitted.design_names_) == 3 + 1 + 4 + 4 + 2
    assert "income=<missing>" in fitted.design_names_ and fitted.indicators_ == ["income"]


def test_the_true_coefficients_of_a_linear_truth_are_recovered():
    rng = np.random.default_rng(7)
    n = 60_000
    X = pd.DataFrame({"a": rng.normal(2.0, 1.5, n), "b": rng.normal(-1.0, 0.5, n), "noise": rng.normal(size=n)})
    z = 0.4 + 0.8 * X["a"] - 1.5 * X["b"]
    y = (rng.random(n) < expit(z)).astype(int)
    model = LogisticClassifier(C=1e6, transform="none").fit(X, y)
    slopes = dict(zip(model.design_names_, model.coef_ / model.scales_, strict=True))
    assert slopes["a"] == pytest.approx(0.8, abs=0.03) and slopes["b"] == pytest.approx(-1.5, abs=0.06)
    assert abs(slopes["noise"]) < 0.03
    intercept = model.intercept_ - float(np.sum(model.coef_ * model.means_ / model.scales_))
    assert intercept == pytest.approx(0.4, abs=0.06)
    # the log transform: sign(x) log(1 + |x|)
    np.testing.assert_allclose(signed_log(np.array([-np.e + 1, 0.0, 3.0])), [-1.0, 0.0, np.log(4.0)])


def test_missing_numbers_take_the_training_median_and_their_indicator(data, fitted):
    X, _, _ = data["train"]
    median = float(np.nanmedian(signed_log(X["income"].to_numpy(dtype=float))))
    assert fitted.medians_[fitted.preprocessor_.numeric_columns_.index("income")] == pytest.approx(median)
    row = data["test"][0].iloc[[0]].assign(income=np.nan)
    z = fitted.standardised(row).iloc[0]
    j = fitted.design_names_.index("income")
    k = fitted.design_names_.index("income=<missing>")
    assert z.iloc[j] == pytest.approx((median - fitted.means_[j]) / fitted.scales_[j])
    assert z.iloc[k] == pytest.approx((1.0 - fitted.means_[k]) / fitted.scales_[k])
    # the conftest truth adds 0.6 log-odds when income is missing: the indicator's slope is positive
    assert fitted.coef_[k] > 0


def test_contributions_sum_to_the_margin_and_give_the_reasons(data, fitted):
    Xt = data["test"][0].iloc[:300]
    contributions = fitted.contributions(Xt)
    assert list(contributions.columns) == [*Xt.columns, "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy(), fitted.predict_margin(Xt), atol=1e-10)
    np.testing.assert_allclose(expit(fitted.predict_margin(Xt)), fitted.predict_proba(Xt)[:, 1])
    reasons = fitted.explain(Xt, top=2)
    first = contributions.drop(columns="bias").idxmax(axis=1)
    for i in range(len(Xt)):
        if contributions.drop(columns="bias").iloc[i].max() > 0:
            assert reasons["reason_1"].iloc[i].startswith(f"{first.iloc[i]}=")
    missing = Xt["income"].isna() & (first == "income")
    assert (reasons.loc[missing, "reason_1"] == "income=missing").all() and missing.any()
    importances = fitted.feature_importances_
    assert importances.sum() == pytest.approx(1.0) and importances.idxmax() == "recency_days"


def test_an_unseen_category_is_a_missing_value_with_a_warning(data, fitted):
    X = data["test"][0].iloc[:50]
    new = X.assign(plan=pd.array(["platinum"] * 50, dtype="string"))
    gone = X.assign(plan=pd.array([None] * 50, dtype="string"))
    with pytest.warns(CustvalWarning, match=r"features\.plan: 50 of 50 rows .*'platinum'"):
        p_new = fitted.predict_proba(new)
    np.testing.assert_array_equal(p_new, fitted.predict_proba(gone))
    strict = LogisticClassifier(handle_unknown="error").fit(*data["train"][:2])
    with pytest.raises(DataError, match="plan: category not seen"):
        strict.predict_proba(new)


@pytest.mark.parametrize(("params", "match"), [
    ({"C": 0}, "C must be a finite number > 0"),
    ({"C": float("inf")}, "C must be a finite number"),
    ({"transform": "sqrt"}, "transform must be one of"),
    ({"class_weight": "auto"}, "class_weight must be 'balanced' or None"),
    ({"max_iter": 0}, "max_iter must be an integer >= 1"),
    ({"handle_unknown": "skip"}, "handle_unknown must be one of"),
])
def test_bad_parameters_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        LogisticClassifier(**params).check_params()


def test_unfitted_use_is_a_not_fitted_error(data):
    with pytest.raises(NotFittedError):
        LogisticClassifier().predict_proba(data["test"][0])
