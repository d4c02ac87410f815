"""The campaign contract and its guard rails: each a custval error naming the column and the arm."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from custval.data.campaigns import (
    check_arms,
    check_binary_outcome,
    check_responders,
    sample_ratio_test,
    treatment_values,
    validate_campaigns,
)
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError


def log(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": [1, 2, 3, 4], "campaign_id": ["spring"] * 4,
                          "treatment": ["control", "email", "control", "email"],
                          "sent_at": ["2024-06-03 09:00", "2024-06-03 09:05", "2024-06-03 10:00", "2024-06-04"]})
    return frame.assign(**overrides)


def test_validate_parses_the_contract_columns():
    out = validate_campaigns(log())
    assert list(out.columns) == ["customer_id", "campaign_id", "treatment", "sent_at"]
    assert out["customer_id"].dtype == np.int64 and out["sent_at"].dtype == "datetime64[ns]"
    assert out["sent_at"].iloc[1] == pd.Timestamp("2024-06-03 09:05")
    assert out["treatment"].tolist() == ["control", "email", "control", "email"]


def test_validate_with_a_column_map_and_numeric_arms():
    raw = log().rename(columns={"treatment": "group", "customer_id": "cust"}).assign(group=[0, 1, 0, 1],
                                                                                       outcome=[0, 1, 1, 0])
    out = validate_campaigns(raw, columns={"treatment": "group", "customer_id": "cust"})
    assert out["treatment"].dtype == np.int64 and out["treatment"].tolist() == [0, 1, 0, 1]
    assert out["outcome"].tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize(("frame", "kwargs", "error", "needle"), [
    (log().drop(columns="sent_at"), {}, SchemaError, "campaigns.sent_at: required column missing"),
    (log().rename(columns={"treatment": "grp"}), {"columns": {"treatment": "group"}}, SchemaError,
     "treatment \\(source column 'group'\\)"),
    (log(treatment=["control", None, "email", "email"]), {}, DataError, "missing treatment value.*row 1"),
    (log(treatment=["control", " ", "email", "email"]), {}, DataError, "missing treatment value"),
    (log(treatment=[0, 0.5, 1, 1]), {}, DataError, "whole numbers"),
    (log(campaign_id=["spring", None, "spring", "spring"]), {}, DataError, "missing campaign id"),
    (log(customer_id=[1, 1, 3, 4]), {}, DataError, "listed twice in a campaign"),
    (log(customer_id=[1.0, np.nan, 3.0, 4.0]), {}, DataError, "missing customer id"),
    (log(sent_at=["2024-06-03", "03/06/2024", "2024-06-03", "2024-06-03"]), {}, DataError, "campaigns.sent_at"),
    (log().iloc[:0], {}, DataError, "empty"),
    (log(), {"columns": {"arm": "treatment"}}, ConfigError, "'arm' is not a campaign column"),
])
def test_validate_errors(frame, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        validate_campaigns(frame, **kwargs)


def test_check_arms_orders_and_counts():
    arms = check_arms(pd.Series(["c", "b", "a", "c", "b"]), control="c")
    assert arms.control == "c" and arms.treatments == ("a", "b") and arms.counts == {"c": 2, "a": 1, "b": 2}
    assert check_arms(pd.Series(["c", "b", "a"]), control="c", arms=["b", "a"]).treatments == ("b", "a")
    numeric = check_arms(pd.Series([0, 1, 1, 0]))
    assert numeric.control == 0 and numeric.treatments == (1,) and numeric.names == (0, 1)


@pytest.mark.parametrize(("values", "kwargs", "error", "needle"), [
    (["email", "discount"], {"control": "control"}, DataError, "control arm 'control' has no customers"),
    (["control", "email"], {"control": "control", "arms": ["email", "discount"]}, DataError,
     "arm 'discount' has no customers"),
    (["control", "email", "sms"], {"control": "control", "arms": ["email"]}, DataError,
     "arm 'sms' is not one of the expected arms"),
    (["control", "control"], {"control": "control"}, DataError, "no treatment arm"),
    (["control", "email"], {}, ConfigError, "control must name the control arm"),
    (["control", None], {"control": "control"}, DataError, "missing treatment value"),
])
def test_check_arms_errors(values, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        check_arms(pd.Series(values, dtype=object), **kwargs)


def test_binary_outcome_guard():
    assert check_binary_outcome(pd.Series(["Yes", "no", "YES"])).tolist() == [1, 0, 1]
    with pytest.raises(DataError, match="campaigns.spend: .*two classes; found 3"):
        check_binary_outcome(pd.Series([0.0, 12.5, 3.0]), column="spend")
    with pytest.raises(DataError, match="both classes"):
        check_binary_outcome(pd.Series([1, 1, 1]))


def test_too_few_treated_responders():
    t = pd.Series(["c"] * 20 + ["t"] * 20)
    arms = check_arms(t, control="c")
    y = np.r_[np.ones(12), np.zeros(8), np.ones(3), np.zeros(17)]
    with pytest.raises(DataError, match="too few treated responders to evaluate: arm 't' has 3 responders among "
                                        "20 customers \\(need at least 10\\)"):
        check_responders(y, t, arms)
    assert check_responders(y, t, arms, min_responders=3) == {"c": 12, "t": 3}
    with pytest.raises(DataError, match="too few control responders"):
        check_responders(y[::-1], t, arms, min_responders=4)


def test_sample_ratio_test_hand_worked():
    # 60 / 40 against a 50 / 50 design: chi2 = (10^2 + 10^2) / 50 = 4, 1 degree of freedom
    t = ["a"] * 60 + ["b"] * 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sample_ratio_test(t, {"a": 0.5, "b": 0.5})
    assert result.statistic == pytest.approx(4.0)
    assert result.p_value == pytest.approx(stats.chi2.sf(4.0, 1)) and not result.mismatch
    assert result.expected == {"a": 50.0, "b": 50.0} and result.counts == {"a": 60, "b": 40}
    # shares need not sum to 1: 1:3 design, 30 / 70 observed -> (5^2/25 + 5^2/75)
    skewed = sample_ratio_test(["a"] * 30 + ["b"] * 70, {"a": 1, "b": 3})
    assert skewed.statistic == pytest.approx(1 + 1 / 3)


def test_sample_ratio_mismatch_warns_once():
    with pytest.warns(CustvalWarning, match="sample-ratio test p = .* a: 600 vs 500.0") as record:
        result = sample_ratio_test(["a"] * 600 + ["b"] * 400, {"a": 0.5, "b": 0.5})
    assert result.mismatch and len(record) == 1 and "np." not in str(record[0].message)
    with pytest.raises(DataError, match="arm 'c' is not in the design"):
        sample_ratio_test(["a", "b", "c"], {"a": 0.5, "b": 0.5})
    with pytest.raises(ConfigError, match="design must give a positive share"):
        sample_ratio_test(["a", "b"], {"a": 1.0})


def test_treatment_values_keeps_names_and_whole_numbers():
    assert treatment_values(pd.Series([" email ", "control"])).tolist() == ["email", "control"]
    assert treatment_values(pd.Series([True, False])).tolist() == [1, 0]
    assert treatment_values(pd.Series([1.0, 0.0])).dtype == np.int64
