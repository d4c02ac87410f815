"""Plain customer tables (telecom/bank churn exports): label parsing, numeric text, id checks, and
load_customer_table on small hand-written CSV and Parquet files, with a clear error for each bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.data.loaders import load_customer_table
from custval.data.schemas import coerce_numeric_text, parse_binary_label, validate_customers
from custval.errors import ConfigError, DataError, SchemaError

TELECOM = """\
customerID,gender,SeniorCitizen,tenure,MonthlyCharges,TotalCharges,Contract,Churn
7590-VHVEG,Female,0,1,29.85,29.85,Month-to-month,No
5575-GNVDE,Male,0,34,56.95,1889.5,One year,No
3668-QPYBK,Male,0,2,53.85,108.15,Month-to-month,Yes
4472-LVYGI,Female,0,0,52.55, ,Two year,No
9237-HQITU,Female,1,2,70.7,151.65,Month-to-month,Yes
"""

BANK = """\
RowNumber,CustomerId,Surname,CreditScore,Geography,Age,Balance,HasCrCard,Exited
1,15634602,Hargrave,619,France,42,0.0,1,1
2,15647311,Hill,608,Spain,41,83807.86,0,0
3,15619304,Onio,502,France,42,159660.8,1,1
4,15701354,Boni,699,France,39,0.0,0,0
"""

FLAGS = """\
id,plan,spend,churned
a1,basic,10.5,True
a2,premium,,False
a3,basic,7.25,False
"""


def write(tmp_path, text: str, name: str = "customers.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- load: good tables
def test_telecom_export_features_label_and_blanks(tmp_path):
    X, y = load_customer_table(write(tmp_path, TELECOM), id_column="customerID", label="Churn")
    ids = ["7590-VHVEG", "5575-GNVDE", "3668-QPYBK", "4472-LVYGI", "9237-HQITU"]
    assert list(X.index) == ids and X.index.name == "customerID"
    assert list(X.columns) == ["gender", "SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges", "Contract"]
    # the " " of a customer with zero tenure is a missing number, the rest parse
    assert X["TotalCharges"].dtype == np.float64
    np.testing.assert_array_equal(X["TotalCharges"].to_numpy(), [29.85, 1889.5, 108.15, np.nan, 151.65])
    assert X["gender"].dtype == pd.StringDtype() and X["Contract"].dtype == pd.StringDtype()
    assert X.loc["5575-GNVDE", "Contract"] == "One year"
    assert X["tenure"].dtype == np.float64 and X["tenure"].tolist() == [1, 34, 2, 0, 2]
    assert y.dtype == np.int8 and y.name == "Churn"
    assert y.index.equals(X.index)
    assert y.tolist() == [0, 0, 1, 0, 1]


def test_bank_export_with_integer_ids_and_one_zero_label(tmp_path):
    X, y = load_customer_table(write(tmp_path, BANK), id_column="CustomerId", label="Exited")
    assert X.index.dtype == np.int64 and list(X.index) == [15634602, 15647311, 15619304, 15701354]
    assert "Exited" not in X.columns and "CustomerId" not in X.columns
    assert X["Geography"].dtype == pd.StringDtype()
    assert X.loc[15647311, "Balance"] == 83807.86
    assert y.tolist() == [1, 0, 1, 0] and y.dtype == np.int8


def test_true_false_label_and_a_blank_numeric_cell(tmp_path):
    X, y = load_customer_table(write(tmp_path, FLAGS), id_column="id", label="churned")
    assert y.to_dict() == {"a1": 1, "a2": 0, "a3": 0}
    assert np.isnan(X.loc["a2", "spend"]) and X.loc["a3", "spend"] == 7.25
    assert X["plan"].tolist() == ["basic", "premium", "basic"]


def test_without_a_label_all_columns_but_the_id_are_features(tmp_path):
    X, y = load_customer_table(write(tmp_path, TELECOM), id_column="customerID")
    assert y is None
    assert "Churn" in X.columns and X["Churn"].dtype == pd.StringDtype()


def test_columns_mapping_renames_before_id_and_label_are_looked_up(tmp_path):
    X, y = load_customer_table(write(tmp_path, TELECOM), label="churn",
                               columns={"customer_id": "customerID", "churn": "Churn", "total": "TotalCharges"})
    assert X.index.name == "customer_id" and y.name == "churn"
    assert "total" in X.columns and "TotalCharges" not in X.columns
    assert y.sum() == 2


def test_parquet_and_dataframe_sources_give_the_same_result(tmp_path):
    csv = write(tmp_path, TELECOM)
    raw = pd.read_csv(csv)
    raw.to_parquet(tmp_path / "customers.parquet")
    X1, y1 = load_customer_table(csv, id_column="customerID", label="Churn")
    X2, y2 = load_customer_table(tmp_path / "customers.parquet", id_column="customerID", label="Churn")
    X3, y3 = load_customer_table(raw, id_column="customerID", label="Churn")
    for X, y in ((X2, y2), (X3, y3)):
        pd.testing.assert_frame_equal(X, X1)
        pd.testing.assert_series_equal(y, y1)
    assert raw["TotalCharges"].iloc[3] == " "  # the caller's frame is not modified


def test_blank_text_in_a_categorical_column_is_missing(tmp_path):
    text = "customer_id,plan,label\n1,basic,1\n2, ,0\n3,gold,0\n"
    X, _ = load_customer_table(write(tmp_path, text), label="label")
    assert X["plan"].dtype == pd.StringDtype()
    assert X["plan"].isna().tolist() == [False, True, False]


# ---------------------------------------------------------------------------------- load: bad tables
def test_missing_label_column_is_a_schema_error(tmp_path):
    with pytest.raises(SchemaError, match="label column missing") as info:
        load_customer_table(write(tmp_path, TELECOM), id_column="customerID", label="churn")
    assert (info.value.table, info.value.column) == ("customers", "churn")
    assert "Churn" in str(info.value)  # lists the columns that are there
    assert type(info.value) is SchemaError


def test_missing_id_column_is_a_schema_error(tmp_path):
    with pytest.raises(SchemaError, match="id column missing") as info:
        load_customer_table(write(tmp_path, TELECOM), label="Churn")
    assert info.value.column == "customer_id"
    with pytest.raises(SchemaError, match="source column 'custID'"):
        load_customer_table(write(tmp_path, TELECOM), label="Churn", columns={"customer_id": "custID"})


def test_missing_id_is_a_data_error_naming_the_row(tmp_path):
    text = TELECOM.replace("3668-QPYBK,", ",")
    with pytest.raises(DataError, match="missing customer id") as info:
        load_customer_table(write(tmp_path, text), id_column="customerID", label="Churn")
    assert info.value.column == "customerID" and "row 2" in info.value.example


def test_duplicated_id_is_a_data_error_with_the_id(tmp_path):
    text = TELECOM.replace("9237-HQITU", "5575-GNVDE")
    with pytest.raises(DataError, match="unique") as info:
        load_customer_table(write(tmp_path, text), id_column="customerID", label="Churn")
    assert "'5575-GNVDE' in rows [1, 4]" == info.value.example


def test_blank_label_is_a_data_error_naming_the_customer(tmp_path):
    text = TELECOM.replace("108.15,Month-to-month,Yes", "108.15,Month-to-month, ")
    with pytest.raises(DataError, match="missing label") as info:
        load_customer_table(write(tmp_path, text), id_column="customerID", label="Churn")
    assert info.value.column == "Churn" and "3668-QPYBK" in info.value.example
    empty = TELECOM.replace("108.15,Month-to-month,Yes", "108.15,Month-to-month,")
    with pytest.raises(DataError, match="missing label"):
        load_customer_table(write(tmp_path, empty), id_column="customerID", label="Churn")


def test_a_third_label_value_is_a_data_error(tmp_path):
    text = TELECOM.replace("Two year,No", "Two year,Maybe")
    with pytest.raises(DataError, match="found 3 distinct values") as info:
        load_customer_table(write(tmp_path, text), id_column="customerID", label="Churn")
    assert "'Maybe'" in info.value.example and "4472-LVYGI" in info.value.example
    numeric = BANK.replace(",83807.86,0,0", ",83807.86,0,2")
    with pytest.raises(DataError, match="found 3 distinct values") as info:
        load_customer_table(write(tmp_path, numeric), id_column="CustomerId", label="Exited")
    assert "2" in info.value.example


def test_an_unknown_label_token_is_a_data_error(tmp_path):
    text = TELECOM.replace(",No\n", ",Maybe\n")  # Yes/Maybe: two values, one unknown
    with pytest.raises(DataError, match="unknown label value") as info:
        load_customer_table(write(tmp_path, text), id_column="customerID", label="Churn")
    assert "'Maybe'" in info.value.example
    twos = BANK.replace(",1\n", ",2\n")  # 2/0 is not a 0/1 label
    with pytest.raises(DataError, match="unknown label value"):
        load_customer_table(write(tmp_path, twos), id_column="CustomerId", label="Exited")


def test_a_single_class_label_is_a_data_error(tmp_path):
    text = TELECOM.replace(",Yes\n", ",No\n")
    with pytest.raises(DataError, match="both classes"):
        load_customer_table(write(tmp_path, text), id_column="customerID", label="Churn")


def test_configuration_mistakes(tmp_path):
    with pytest.raises(ConfigError, match="same column"):
        load_customer_table(write(tmp_path, TELECOM), id_column="Churn", label="Churn")
    with pytest.raises(ConfigError, match="path or a DataFrame"):
        load_customer_table(42, label="Churn")
    with pytest.raises(ConfigError, match="not found"):
        load_customer_table(tmp_path / "missing.csv")
    with pytest.raises(SchemaError, match="no feature columns"):
        load_customer_table(pd.DataFrame({"customer_id": [1, 2], "y": [0, 1]}), label="y")


# ------------------------------------------------------------------------------- parse_binary_label
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Yes", "No", "yes", " NO "], [1, 0, 1, 0]),
        (["Y", "n", "y", "N"], [1, 0, 1, 0]),
        (["true", "FALSE", "True", "false"], [1, 0, 1, 0]),
        (["1", "0", " 1", "0 "], [1, 0, 1, 0]),
        ([1, 0, 0, 1], [1, 0, 0, 1]),
        ([1.0, 0.0, 0.0, 1.0], [1, 0, 0, 1]),
        ([True, False, False, True], [1, 0, 0, 1]),
    ],
)
def test_parse_binary_label_accepts_the_usual_encodings(values, expected):
    s = pd.Series(values, index=[10, 11, 12, 13], name="Churn")
    out = parse_binary_label(s)
    assert out.dtype == np.int8 and out.name == "Churn"
    assert out.to_dict() == dict(zip([10, 11, 12, 13], expected, strict=True))


def test_parse_binary_label_errors_name_table_column_and_example():
    with pytest.raises(DataError, match="missing label") as info:
        parse_binary_label(pd.Series([True, None, False], dtype="boolean"), table="bank", column="Exited")
    assert (info.value.table, info.value.column) == ("bank", "Exited") and "row 1" in info.value.example
    with pytest.raises(DataError, match="missing label"):
        parse_binary_label(pd.Series([1.0, np.nan, 0.0]))
    with pytest.raises(DataError, match="3 distinct"):
        parse_binary_label(pd.Series(["Yes", "Y", "No"]))  # mixed vocabularies: three spellings
    with pytest.raises(DataError, match="unknown label value") as info:
        parse_binary_label(pd.Series(["yes", "maybe", "yes"], name="Churn"))
    assert info.value.column == "Churn" and info.value.example == "row 1: 'maybe'"
    with pytest.raises(DataError, match="both classes"):
        parse_binary_label(pd.Series(["Yes", "yes"]), require_both_classes=True)
    assert parse_binary_label(pd.Series(["Yes", "yes"])).tolist() == [1, 1]  # allowed unless required


# ------------------------------------------------------------------------------ coerce / validate
def test_coerce_numeric_text_only_converts_fully_numeric_text_columns():
    frame = pd.DataFrame({
        "total": pd.Series(["1.5", " ", "2e3", None], dtype="str"),
        "mixed": pd.Series(["1", "two", "3", "4"], dtype="str"),
        "blank": pd.Series([" ", "", None, " "], dtype="str"),
        "code": pd.Series(["001", "002", "003", "004"], dtype="str"),
        "already": [1, 2, 3, 4],
        "objects": pd.Series([" 7", "8 ", None, "9"], dtype=object),
    })
    out = coerce_numeric_text(frame, exclude=["code"])
    assert out["total"].dtype == np.float64
    np.testing.assert_array_equal(out["total"].to_numpy(), [1.5, np.nan, 2000.0, np.nan])
    assert out["objects"].dtype == np.float64 and out["objects"].iloc[1] == 8.0
    assert out["mixed"].tolist() == ["1", "two", "3", "4"]
    assert not pd.api.types.is_float_dtype(out["blank"].dtype)
    assert out["code"].tolist() == ["001", "002", "003", "004"]  # excluded: an id is not a number
    assert out["already"].dtype == np.int64
    assert frame["total"].iloc[1] == " "  # input untouched


def test_validate_customers_parses_ids_and_rejects_bad_ones():
    out = validate_customers(pd.DataFrame({"customer_id": [3.0, 1.0, 2.0], "x": [1, 2, 3]}), table="bank")
    assert out["customer_id"].dtype == np.int64 and out["customer_id"].tolist() == [3, 1, 2]
    with pytest.raises(SchemaError, match="id column missing") as info:
        validate_customers(pd.DataFrame({"id": [1]}), table="bank")
    assert info.value.table == "bank"
    with pytest.raises(DataError, match="empty customer id"):
        validate_customers(pd.DataFrame({"customer_id": ["a", " "]}))
    with pytest.raises(DataError, match="unique") as info:
        validate_customers(pd.DataFrame({"customer_id": [5, 6, 5]}))
    assert info.value.example == "5 in rows [0, 2]"
    with pytest.raises(DataError, match="empty"):
        validate_customers(pd.DataFrame({"customer_id": pd.Series([], dtype="int64")}))


def test_simulated_telecom_export_round_trips_through_csv(tmp_path):
    from custval.data.simulate_table import simulate_churn_table

    table, truth = simulate_churn_table(1_000, seed=1)
    path = tmp_path / "telco.csv"
    table.to_csv(path, index=False)
    X, y = load_customer_table(path, id_column="customerID", label="Churn")
    raw = table.set_index("customerID")
    assert X.index.equals(pd.Index(raw.index.astype(str), name="customerID"))
    assert y.tolist() == (raw["Churn"] == "Yes").astype(int).tolist()
    blanks = (raw["TotalCharges"].str.strip() == "").to_numpy()
    assert X["TotalCharges"].dtype == np.float64
    np.testing.assert_array_equal(X["TotalCharges"].isna().to_numpy(), blanks)
    np.testing.assert_allclose(X["TotalCharges"].to_numpy()[~blanks],
                               raw["TotalCharges"][~blanks].astype(float).to_numpy())
    assert set(truth.index) == set(X.index)


@pytest.mark.parametrize("token", ["inf", "-Infinity", "1e400"])
def test_coerce_numeric_text_rejects_infinite_numbers(token):
    frame = pd.DataFrame({"charges": pd.array(["1.5", " ", token], dtype="string")})
    with pytest.raises(DataError, match=r"customers\.charges: numbers must be finite") as info:
        coerce_numeric_text(frame)
    assert token in str(info.value)


def test_iso_date_text_becomes_datetime_and_other_text_stays(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,signup_date,last_seen,plan,code\n"
                    "1,2023-04-01,2024-01-02 10:30,basic,2023-xx\n"
                    "2, ,2024-02-03 08:00,plus,2024-yy\n"
                    "3,2022-12-31,2024-03-04 09:15,basic,2025-zz\n")
    X, _ = load_customer_table(path)
    assert X["signup_date"].dtype == "datetime64[ns]" and X["last_seen"].dtype == "datetime64[ns]"
    assert list(X["signup_date"]) == [pd.Timestamp("2023-04-01"), pd.NaT, pd.Timestamp("2022-12-31")]
    assert X.loc[1, "last_seen"] == pd.Timestamp("2024-01-02 10:30")
    # text that merely starts like a date, and plain text, stay text
    assert X["code"].dtype == "string" and X["plan"].dtype == "string"


def test_coerce_date_text_leaves_a_column_with_one_non_date_alone():
    from custval.data.schemas import coerce_date_text

    frame = pd.DataFrame({"d": pd.array(["2023-01-01", "2023-13-45", None], dtype="string")})
    assert coerce_date_text(frame)["d"].dtype == "string"
