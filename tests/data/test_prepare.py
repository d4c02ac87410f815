"""The export policies of `custval.data.prepare`, each tested on the simulated Online-Retail export against its
truth (the recovered log equals the simulator's clean log; the counts in the warnings equal the simulator's), and
the cancellation matching on hand-made logs."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from custval.config import DataConfig
from custval.data.loaders import load_transactions
from custval.data.prepare import PREPARATION_ATTR, match_cancellations, prepare_log
from custval.data.schemas import validate_transactions
from custval.data.simulate_export import simulate_retail_export
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError


@pytest.fixture(scope="module")
def ex():
    return simulate_retail_export(1_500, seed=11, mean_lines=6, cancel_rate=0.05, unmatched_rate=0.03,
                                  n_adjustments=4)


@pytest.fixture(scope="module")
def files(ex, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ex.write(root / "export.csv", root / "products.csv")
    return {"export": root / "export.csv", "products": root / "products.csv", "root": root}


def load(ex, files, **settings):
    """The export loaded from its CSV with the column map, the date format and any other data.* settings:
    (log, warning messages)."""
    settings = {"missing_ids": "drop", "duplicates": "drop", **settings}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = load_transactions(files["export"], columns=ex.columns, timestamp_format=ex.timestamp_format, **settings)
    return log, [str(w.message) for w in caught if issubclass(w.category, CustvalWarning)]


def one(messages: list[str], pattern: str) -> str:
    found = [m for m in messages if re.search(pattern, m)]
    assert len(found) == 1, (pattern, messages)
    return found[0]


def n(value: int) -> str:
    return f"{value:,}"


# -------------------------------------------------------------------------------------- the whole export
def test_the_default_policies_recover_the_clean_log_and_count_what_the_simulator_made(ex, files):
    log, messages = load(ex, files, categories={"file": str(files["products"]), "category": "Category"})
    pd.testing.assert_frame_equal(log, ex.truth)
    c = ex.counts
    assert log.attrs[PREPARATION_ATTR] == {
        "rows": c["rows"], "missing_ids": c["missing_ids"], "duplicates": c["duplicates"],
        "cancellations": c["cancellations"], "matched": c["matched"], "unmatched": c["unmatched"],
        "zero_prices": c["zero_prices"], "negative_prices": c["negative_prices"], "returns": c["unmatched"],
        "returns_removed": c["unmatched"], "unmapped": c["unmapped"], "unmapped_products": c["unmapped_products"],
        "kept": c["kept"]}
    assert len(messages) == 6, messages  # ids, duplicates, cancellations, prices, returns, categories


def test_amount_is_quantity_times_unit_price_and_order_ids_are_kept(ex, files):
    log, _ = load(ex, files)
    np.testing.assert_array_equal(log["amount"].to_numpy(), (log["quantity"] * log["unit_price"]).to_numpy())
    assert list(log.columns) == ["customer_id", "timestamp", "amount", "order_id", "quantity", "product", "unit_price"]
    assert (log["order_id"].to_numpy() == ex.truth["order_id"].to_numpy()).all()
    assert log["order_id"].str.fullmatch(r"\d{6}").all()  # no cancellation or adjustment invoice is left


def test_an_amount_column_wins_over_quantity_times_price():
    raw = pd.DataFrame({"c": [1, 2], "t": ["2020-01-01", "2020-01-02"], "q": [2, 3], "p": [1.5, 2.0],
                        "value": [9.0, 9.5]})
    out = load_transactions(raw, columns={"customer_id": "c", "timestamp": "t", "quantity": "q", "unit_price": "p",
                                          "amount": "value"})
    assert out["amount"].tolist() == [9.0, 9.5] and out["unit_price"].tolist() == [1.5, 2.0]
    derived = load_transactions(raw.drop(columns="value"), columns={"customer_id": "c", "timestamp": "t",
                                                                    "quantity": "q", "unit_price": "p"})
    assert derived["amount"].tolist() == [3.0, 6.0]
    with pytest.raises(SchemaError, match=r"amount: required column missing \(or map data.columns.quantity and "
                                          r"data.columns.unit_price"):
        load_transactions(raw.drop(columns="value"), columns={"customer_id": "c", "timestamp": "t", "unit_price": "p"})
    with pytest.raises(ConfigError, match=r"unknown contract names \['price'\].*'unit_price'"):
        load_transactions(raw, columns={"customer_id": "c", "timestamp": "t", "price": "p"})


# ----------------------------------------------------------------------------------------- missing ids
def test_missing_ids_error_names_the_setting_and_drop_warns_with_count_and_share(ex, files):
    with pytest.raises(DataError, match=rf"customer_id \(source column 'CustomerID'\): {n(ex.counts['missing_ids'])} "
                                        r"rows \(\d+\.\d%\) have no customer id: set data.missing_ids: drop"):
        load(ex, files, missing_ids="error")
    _, messages = load(ex, files)
    share = f"{ex.counts['missing_ids'] / ex.counts['rows']:.1%}"
    one(messages, rf"^transactions: dropped {n(ex.counts['missing_ids'])} rows without a customer id \({re.escape(share)} "
                  rf"of {n(ex.counts['rows'])} rows; data.missing_ids=drop\)$")


def test_blank_text_ids_are_missing_too():
    raw = pd.DataFrame({"customer_id": ["a", " ", None, "b"], "timestamp": ["2020-01-01"] * 4, "amount": [1.0] * 4})
    with pytest.warns(CustvalWarning, match=r"dropped 2 rows without a customer id \(50.0% of 4 rows"):
        out = load_transactions(raw, missing_ids="drop")
    assert out["customer_id"].tolist() == ["a", "b"]


# ------------------------------------------------------------------------------------------ duplicates
def test_duplicates_error_by_default_and_drop_warns(ex, files):
    with pytest.raises(DataError, match=rf"{ex.counts['duplicates']} rows are identical in every column"):
        load(ex, files, duplicates=None)
    _, messages = load(ex, files)
    one(messages, rf"^transactions: dropped {n(ex.counts['duplicates'])} rows identical in every column to an earlier "
                  r"row \(")


# --------------------------------------------------------------------------------------- cancellations
def test_cancellations_are_removed_with_the_lines_they_cancel_and_the_warning_counts_both(ex, files):
    _, messages = load(ex, files)
    c = ex.counts
    text = one(messages, r"cancellation lines")
    assert text.startswith(f"transactions: {n(c['cancellations'])} cancellation lines (order id starting with 'C'): "
                           f"{n(c['matched'])} removed together with the line each cancels")
    assert f"{n(c['unmatched'])} matched no earlier line and are returns (data.returns=exclude)" in text
    one(messages, rf"^transactions: excluded {c['unmatched']} return rows")


def test_unmatched_cancellations_are_returns_under_data_returns(ex, files):
    net, _ = load(ex, files, returns="net")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        expected = validate_transactions(ex.recovered("unmatched").drop(columns="category"), returns="net",
                                         duplicates="keep")
    pd.testing.assert_frame_equal(net, expected)
    assert (net["amount"] < 0).sum() > 0  # returns netted into a positive day stay as rows
    with pytest.raises(DataError, match=r"negative amounts \(returns\) are not allowed with returns='error' "
                                        rf"\({ex.counts['unmatched']} rows\)"):
        load(ex, files, returns="error")


def test_cancellations_as_returns_keep_the_cancelled_sales(ex, files):
    log, messages = load(ex, files, cancellations={"policy": "returns"})
    pd.testing.assert_frame_equal(log, ex.recovered("cancelled").drop(columns="category"))
    one(messages, rf"^transactions: excluded {ex.counts['cancellations']} return rows")
    assert not [m for m in messages if "cancellation lines" in m]


def test_the_prefix_and_column_of_cancellations_are_settings(ex, files):
    export = ex.export.assign(Status=np.where(ex.export["InvoiceNo"].str.startswith("C"), "X-cancel", "ok"))
    export["InvoiceNo"] = export["InvoiceNo"].str.replace("C", "", regex=False)
    log, messages = load(ex, {"export": _write(export, files, "status.csv")},
                         cancellations={"prefix": "X-", "column": "Status"})
    truth = ex.truth.drop(columns="category")
    pd.testing.assert_frame_equal(log, truth)
    one(messages, rf"{n(ex.counts['cancellations'])} cancellation lines \(order id starting with 'X-'\)")
    with pytest.raises(SchemaError, match=r"transactions.Nope: data.cancellations.column: column missing"):
        load(ex, files, cancellations={"column": "Nope"})


def _write(frame: pd.DataFrame, files, name: str):
    path = files["root"] / name
    frame.to_csv(path, index=False)
    return path


def _log(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "product", "quantity"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def test_a_cancellation_takes_the_latest_earlier_line_not_yet_cancelled():
    log = _log([
        (1, "2020-01-01", 10.0, "A", 2),   # 0: sale
        (1, "2020-01-03", 10.0, "A", 2),   # 1: sale, the latest before row 2
        (1, "2020-01-05", -10.0, "A", -2),  # 2: cancels row 1
        (1, "2020-01-06", -10.0, "A", -2),  # 3: cancels row 0 (row 1 is taken)
        (1, "2020-01-07", -10.0, "A", -2),  # 4: nothing left: unmatched
        (1, "2020-01-02", 5.0, "A", 1),    # 5: another quantity
        (2, "2020-01-01", 10.0, "A", 2),   # 6: another customer
        (1, "2020-01-08", 10.0, "A", 2),   # 7: later than every cancellation
        (1, "2020-01-04", -5.0, "B", -1),  # 8: a product never bought: unmatched
    ])
    cancels, cancelled = match_cancellations(log, log["amount"].to_numpy() < 0)
    assert dict(zip(cancels.tolist(), cancelled.tolist(), strict=True)) == {2: 1, 3: 0}


def test_a_sale_at_the_same_instant_is_earlier_and_without_products_the_amount_matches():
    same = _log([(1, "2020-01-01 10:00", -4.0, "A", -1), (1, "2020-01-01 10:00", 4.0, "A", 1)])
    assert [a.tolist() for a in match_cancellations(same, same["amount"].to_numpy() < 0)] == [[0], [1]]
    no_product = same.drop(columns=["product", "quantity"]).assign(amount=[-4.0, 5.0])
    assert match_cancellations(no_product, no_product["amount"].to_numpy() < 0)[0].tolist() == []


# ---------------------------------------------------------------------------------------------- prices
def test_zero_and_negative_prices_are_dropped_with_a_warning_kept_or_an_error(ex, files):
    c = ex.counts
    _, messages = load(ex, files)
    one(messages, rf"^transactions: dropped {n(c['zero_prices'])} lines with a zero unit price and "
                  rf"{c['negative_prices']} with a negative one \(\d+\.\d% of the rows read; data.prices=drop\)$")
    kept, messages = load(ex, files, prices="keep")
    pd.testing.assert_frame_equal(kept, ex.recovered("zero_price").drop(columns="category"))
    assert (kept["amount"] == 0).sum() == c["zero_prices"]
    # the adjustments (negative prices) are negative amounts: returns under data.returns
    one(messages, rf"^transactions: excluded {c['unmatched'] + c['negative_prices']} return rows")
    with pytest.raises(DataError, match=r"unit_price \(source column 'UnitPrice'\): must be positive; found "
                                        rf"{n(c['zero_prices'])} lines with a zero unit price.*set data.prices"):
        load(ex, files, prices="error")


# ------------------------------------------------------------------------------------------ categories
def test_categories_come_from_the_product_file_and_unmapped_products_warn_or_fail(ex, files):
    c = ex.counts
    log, messages = load(ex, files, categories={"file": str(files["products"]), "category": "Category"})
    pd.testing.assert_series_equal(log["category"], ex.truth["category"])
    assert log["category"].isna().sum() == c["unmapped"] > 0
    share = f"{c['unmapped'] / c['kept']:.1%}"
    one(messages, rf"^transactions: {c['unmapped_products']} of {log['product'].nunique():,} products "
                  rf"\({re.escape(share)} of the rows\) are not in data.categories.file .*; their category is <NA>")
    with pytest.raises(DataError, match=rf"product \(source column 'StockCode'\): {c['unmapped_products']} of .* "
                                        r"set data.categories.unmapped: warn"):
        load(ex, files, categories={"file": str(files["products"]), "category": "Category", "unmapped": "error"})


def test_a_path_alone_is_the_product_file(ex, files):
    master = _write(ex.products.rename(columns={"Category": "category"}), files, "plain.csv")
    log, _ = load(ex, files, categories=str(master))
    pd.testing.assert_series_equal(log["category"], ex.truth["category"])


def test_the_product_file_columns_and_keys_are_checked(ex, files):
    renamed = _write(ex.products.rename(columns={"StockCode": "code"}), files, "renamed.csv")
    log, _ = load(ex, files, categories={"file": str(renamed), "product": "code", "category": "Category"})
    pd.testing.assert_series_equal(log["category"], ex.truth["category"])
    with pytest.raises(SchemaError, match=r"data.categories.file .*renamed.csv'.StockCode: column missing"):
        load(ex, files, categories={"file": str(renamed), "category": "Category"})
    with pytest.raises(SchemaError, match=r"\.category: column missing"):
        load(ex, files, categories={"file": str(files["products"])})
    twice = pd.concat([ex.products, ex.products.head(1).assign(Category="other")])
    with pytest.raises(DataError, match=r"a product must have one category; 1 products have several"):
        load(ex, files, categories={"file": str(_write(twice, files, "twice.csv")), "category": "Category"})
    with pytest.raises(SchemaError, match=r"needs the log's product column: map data.columns.product"):
        load_transactions(ex.truth.drop(columns=["product", "category"]), duplicates="keep",
                          categories={"file": str(files["products"]), "category": "Category"})
    with pytest.raises(ConfigError, match=r"file not found: .*missing.csv"):
        load(ex, files, categories={"file": str(files["root"] / "missing.csv")})


def test_numeric_product_codes_join_text_codes():
    log = pd.DataFrame({"customer_id": [1, 1], "timestamp": ["2020-01-01", "2020-01-02"], "amount": [1.0, 2.0],
                        "product": [21730, 85123]})
    master = pd.DataFrame({"product": ["21730", "85123"], "category": ["home", "gifts"]})
    data = DataConfig(categories={"file": "products.csv"})
    out = prepare_log(log, data, categories=master).log
    assert out["category"].tolist() == ["home", "gifts"] and out["product"].tolist() == ["21730", "85123"]


# ------------------------------------------------------------------------------------------- lenient
def test_lenient_preparation_counts_without_raising_or_warning(ex):
    data = DataConfig(columns=ex.columns, timestamp_format=ex.timestamp_format, returns="error", prices="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepared = prepare_log(ex.export, data, strict=False)
    pd.testing.assert_frame_equal(prepared.log, ex.truth.drop(columns="category"))
    assert prepared.preparation.missing_ids == ex.counts["missing_ids"]
    assert prepared.preparation.zero_prices == ex.counts["zero_prices"]
