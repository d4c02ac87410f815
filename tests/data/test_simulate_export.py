"""The Online-Retail-shaped export: its layout as the public file has it, and its truth checked against the
simulated purchase process (`simulate_retail`) and by independent pandas operations on the export itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.data.simulate import RETAIL_CATEGORIES, simulate_retail
from custval.data.simulate_export import EXPORT_COLUMNS, FATES, simulate_retail_export
from custval.errors import ConfigError

N = 1_500


@pytest.fixture(scope="module")
def ex():
    return simulate_retail_export(N, seed=3, mean_lines=6, cancel_rate=0.05, unmatched_rate=0.03)


def test_columns_and_types_are_those_of_the_online_retail_file(ex):
    export = ex.export
    assert tuple(export.columns) == EXPORT_COLUMNS
    for text in ("InvoiceNo", "StockCode", "Description", "InvoiceDate", "Country"):
        assert pd.api.types.is_string_dtype(export[text].dtype), text
    assert export["Quantity"].dtype == np.int64 and export["UnitPrice"].dtype == np.float64
    assert export["CustomerID"].dtype == np.float64
    # dates as text month/day/year hour:minute without leading zeros (minutes padded), e.g. 12/1/2010 8:26
    assert export["InvoiceDate"].str.fullmatch(r"(1[0-2]|[1-9])/([1-9]|[12]\d|3[01])/20(10|11) (1?\d|2[0-3]):[0-5]\d").all()
    sales = export["InvoiceDate"][(export["Quantity"] > 0) & ~export["InvoiceNo"].str.startswith("A")]
    assert sales.str.fullmatch(r".* ([89]|1[0-7]):\d\d").all()  # invoices during opening hours
    assert export["InvoiceDate"].iloc[0].startswith("12/1/2010 ")
    assert export["InvoiceNo"].str.fullmatch(r"[CA]?\d{6}").all()
    assert ex.fate.index.equals(export.index) and set(ex.fate) <= set(FATES)


def test_ids_are_floats_with_gaps_and_about_a_quarter_missing(ex):
    ids = ex.export["CustomerID"]
    share = ids.isna().mean()
    assert 0.2 < share < 0.3, share
    distinct = np.sort(ids.dropna().unique())
    assert (distinct == np.floor(distinct)).all() and distinct[0] == 12346
    steps = np.diff(distinct)
    assert (steps > 1).mean() > 0.2  # gaps
    assert len(distinct) == N  # every simulated customer has an identified invoice
    assert (ex.fate[ids.isna()] == "missing_id").all() and (ids[ex.fate == "missing_id"].isna()).all()


def test_about_one_percent_of_the_rows_repeat_the_row_before_exactly(ex):
    export = ex.export
    filled = export.fillna({"CustomerID": -1.0})
    repeats = filled.eq(filled.shift()).all(axis=1)
    assert int(repeats.sum()) == int(export.duplicated().sum())  # every repeat is right after its row
    n = len(export) - int(repeats.sum())
    assert abs(repeats.sum() - 0.01 * n) < 5 * np.sqrt(0.01 * n)
    # an identified repeat is a duplicate; a guest's repeat is still a missing id
    assert (ex.fate[repeats & export["CustomerID"].notna()] == "duplicate").all()
    assert (ex.fate[repeats & export["CustomerID"].isna()] == "missing_id").all()


def test_each_matched_cancellation_cancels_an_earlier_line_of_the_same_customer_product_and_quantity(ex):
    export = ex.export.assign(when=pd.to_datetime(ex.export["InvoiceDate"], format="%m/%d/%Y %H:%M"))
    first = ~export.duplicated()
    cancel = export[(ex.fate == "cancellation") & first]
    sales = export[(ex.fate == "cancelled") & first]
    assert len(cancel) == len(sales) > 50
    assert cancel["InvoiceNo"].str.startswith("C").all() and (cancel["Quantity"] < 0).all()
    pairs = cancel.assign(Quantity=-cancel["Quantity"]).merge(
        sales, on=["CustomerID", "StockCode", "Quantity", "UnitPrice"], suffixes=("_c", "_s"))
    pairs = pairs[pairs["when_s"] < pairs["when_c"]]
    assert pairs[["InvoiceNo_c", "StockCode"]].drop_duplicates().shape[0] == len(cancel)
    # cancelled before the customer's next invoice: the line it cancels is the latest one of its key
    invoices = export[export["CustomerID"].notna() & ~export["InvoiceNo"].str.startswith(("C", "A"))]
    starts = invoices.groupby(["CustomerID", "InvoiceNo"])["when"].first().reset_index()
    for _, row in cancel.head(100).iterrows():
        own = starts[starts["CustomerID"] == row["CustomerID"]]
        before = own[own["when"] <= row["when"]]
        sale = sales[(sales["CustomerID"] == row["CustomerID"]) & (sales["StockCode"] == row["StockCode"])
                     & (sales["Quantity"] == -row["Quantity"]) & (sales["when"] < row["when"])]
        assert sale["InvoiceNo"].iloc[-1] == before.sort_values("when")["InvoiceNo"].iloc[-1]


def test_unmatched_cancellations_match_no_earlier_line(ex):
    export = ex.export.assign(when=pd.to_datetime(ex.export["InvoiceDate"], format="%m/%d/%Y %H:%M"))
    unmatched = export[ex.fate == "unmatched"]
    assert len(unmatched) > 10 and unmatched["InvoiceNo"].str.startswith("C").all()
    assert (unmatched["Quantity"] < 0).all()
    sales = export[export["CustomerID"].notna() & (export["Quantity"] > 0)]
    hits = unmatched.assign(Quantity=-unmatched["Quantity"]).merge(sales, on=["CustomerID", "StockCode", "Quantity"],
                                                                   suffixes=("_c", "_s"))
    assert (hits["when_s"] > hits["when_c"]).all()


def test_zero_and_negative_prices(ex):
    export = ex.export
    zero = export["UnitPrice"] == 0
    assert zero.sum() > 0 and (ex.fate[zero & export["CustomerID"].notna()].isin(["zero_price", "duplicate"])).all()
    negative = export[ex.fate == "negative_price"]
    assert len(negative) == 3 and (negative["UnitPrice"] < 0).all() and (negative["StockCode"] == "B").all()
    assert negative["InvoiceNo"].str.startswith("A").all() and negative["CustomerID"].notna().all()


def test_sale_invoices_are_the_simulated_orders_on_their_days(ex):
    """Each simulated order is one identified invoice on the same calendar day (times moved into opening hours)."""
    export = ex.export
    orders = ex.simulation.transactions
    sale = export[export["CustomerID"].notna() & ~export["InvoiceNo"].str.startswith(("C", "A"))]
    invoices = sale.drop_duplicates("InvoiceNo")
    day = pd.to_datetime(invoices["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.normalize().astype("datetime64[ns]")
    got = pd.DataFrame({"id": invoices["CustomerID"].astype("int64").to_numpy(), "day": day.to_numpy()})
    ids = ex.customer_ids.reindex(orders["customer_id"]).to_numpy()
    want = pd.DataFrame({"id": ids, "day": orders["timestamp"].dt.normalize().to_numpy()})
    key = ["id", "day"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True), want.sort_values(key).reset_index(drop=True))
    assert (ex.simulation.truth["n_orders"].to_numpy() == got.groupby("id").size().reindex(ex.customer_ids).to_numpy()).all()


def test_truth_is_the_clean_rows_with_amount_quantity_times_price(ex):
    truth = ex.truth
    clean = ex.export[ex.fate == "clean"].reset_index(drop=True)
    assert len(truth) == len(clean) == ex.counts["kept"]
    assert (truth["customer_id"].to_numpy() == clean["CustomerID"].to_numpy()).all()
    assert truth["customer_id"].dtype == np.int64
    np.testing.assert_array_equal(truth["amount"].to_numpy(), clean["Quantity"].to_numpy() * clean["UnitPrice"].to_numpy())
    assert (truth["order_id"].to_numpy() == clean["InvoiceNo"].to_numpy()).all()
    assert (truth["unit_price"] > 0).all() and (truth["quantity"] > 0).all()
    when = pd.to_datetime(clean["InvoiceDate"], format="%m/%d/%Y %H:%M").astype("datetime64[ns]")
    assert (truth["timestamp"].to_numpy() == when.to_numpy()).all()
    # categories from the product master; products missing from it have none
    master = ex.products.set_index("StockCode")["Category"]
    expected = truth["product"].map(master)
    assert (truth["category"].isna().to_numpy() == expected.isna().to_numpy()).all()
    assert (truth["category"].dropna() == expected.dropna()).all()
    assert set(truth["category"].dropna()) == set(RETAIL_CATEGORIES)


def test_counts_follow_the_fates(ex):
    counts = ex.counts
    fates = ex.fate.value_counts()
    assert counts["rows"] == len(ex.export) == int(fates.sum())
    assert counts["missing_ids"] == int(ex.export["CustomerID"].isna().sum())
    assert counts["matched"] == int(fates["cancelled"]) == int(fates["cancellation"])
    assert counts["cancellations"] == counts["matched"] + counts["unmatched"]
    assert counts["customers"] == ex.truth["customer_id"].nunique()


def test_same_seed_same_export_another_seed_differs():
    one = simulate_retail_export(300, seed=5, mean_lines=3)
    two = simulate_retail_export(300, seed=5, mean_lines=3)
    pd.testing.assert_frame_equal(one.export, two.export)
    pd.testing.assert_frame_equal(one.lines, two.lines)
    other = simulate_retail_export(300, seed=6, mean_lines=3)
    assert not one.export["StockCode"].head(50).equals(other.export["StockCode"].head(50))


def test_simulate_retail_is_unchanged_by_the_export():
    before = simulate_retail(500, seed=2).transactions
    simulate_retail_export(500, seed=2, mean_lines=2)
    pd.testing.assert_frame_equal(simulate_retail(500, seed=2).transactions, before)


def test_write_round_trips_through_csv(ex, tmp_path):
    ex.write(tmp_path / "export.csv", tmp_path / "products.csv")
    back = pd.read_csv(tmp_path / "export.csv")
    assert list(back.columns) == list(EXPORT_COLUMNS)
    pd.testing.assert_frame_equal(back, ex.export, check_dtype=False)
    assert len(pd.read_csv(tmp_path / "products.csv")) == len(ex.products)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_customers": 0}, "n_customers must be an integer >= 1"),
    ({"mean_lines": 0.5}, "mean_lines must be a number >= 1"),
    ({"guest_share": 1.0}, "guest_share"),
    ({"cancel_rate": -0.1}, "cancel_rate"),
    ({"n_adjustments": -1}, "n_adjustments must be an integer >= 0"),
    ({"n_products": 3}, "n_products must be at least the number of categories"),
    ({"return_rate": 0.1}, "return_rate is not an argument"),
])
def test_bad_arguments_are_config_errors(kwargs, message):
    kwargs = {"n_customers": 50, **kwargs}
    with pytest.raises(ConfigError, match=message):
        simulate_retail_export(kwargs.pop("n_customers"), **kwargs)
