"""The telecom-like churn export and its exact churn probability per row."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from custval.data.simulate_table import simulate_churn_table
from custval.errors import ConfigError


# ------------------------------------------------------------------------------------------ telecom table
def test_telecom_table_contract_blanks_and_calibrated_truth(assert_calibrated, roc_auc):
    table, truth = simulate_churn_table(20_000, seed=4)
    again, truth_again = simulate_churn_table(20_000, seed=4)
    pd.testing.assert_frame_equal(table, again)
    pd.testing.assert_series_equal(truth, truth_again)
    assert table["customerID"].is_unique
    assert table["customerID"].str.fullmatch(r"\d{4}-[A-Z]{5}").all()
    assert isinstance(table["customerID"].dtype, pd.StringDtype)
    assert table["SeniorCitizen"].dtype == np.int64 and set(table["SeniorCitizen"].unique()) == {0, 1}
    assert table["tenure"].dtype == np.int64 and table["tenure"].between(0, 72).all()
    assert set(table["Contract"].unique()) == {"Month-to-month", "One year", "Two year"}
    assert set(table["Churn"].unique()) == {"Yes", "No"} and set(table["Partner"].unique()) == {"Yes", "No"}
    assert table["MonthlyCharges"].dtype == np.float64 and table["MonthlyCharges"].isna().any()
    total = table["TotalCharges"]
    assert isinstance(total.dtype, pd.StringDtype) and total.notna().all()
    blank = total == " "
    assert blank.any() and (blank == (table["tenure"] == 0)).all()
    assert pd.to_numeric(total[~blank]).gt(0).all()
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", v) for v in total[~blank].head(200))
    assert truth.index.equals(pd.Index(table["customerID"])) and truth.between(0, 1).all()
    y = (table["Churn"] == "Yes").astype(int).to_numpy()
    assert 0.15 < y.mean() < 0.4
    assert_calibrated(truth.to_numpy(), y)
    assert roc_auc(y, truth.to_numpy()) > 0.75


@pytest.mark.parametrize("kwargs", [dict(n_customers=0), dict(seed=-1), dict(monthly_missing=1.0),
                                    dict(monthly_missing=-0.1)])
def test_bad_table_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        simulate_churn_table(**{"n_customers": 100, **kwargs})
