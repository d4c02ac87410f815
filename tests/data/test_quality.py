"""The data-quality summary and the timestamp layout detection: counts against the simulated export's truth,
history per customer against an independent count, layouts against hand-written dates."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from custval.config import DataConfig
from custval.data.loaders import load_transactions
from custval.data.quality import inspect_log, summarize, timestamp_layout
from custval.data.simulate_export import simulate_retail_export


# ------------------------------------------------------------------------------------------ timestamps
@pytest.mark.parametrize(("values", "expected"), [
    (["12/1/2010 8:26", "12/13/2010 17:05"], "%m/%d/%Y %H:%M"),  # Online Retail: a second number above 12
    (["13/12/2010 08:26", "1/2/2011 10:00"], "%d/%m/%Y %H:%M"),
    (["13.12.2010", "01.02.2011"], "%d.%m.%Y"),
    (["12-31-10 23:59:01", "1-2-11 00:00:00"], "%m-%d-%y %H:%M:%S"),
])
def test_a_text_layout_is_recognised(values, expected):
    layout = timestamp_layout(pd.Series(values * 3))
    assert (layout.format, layout.parses) == (expected, True), layout
    assert values[0] in layout.note


def test_every_day_and_month_below_13_is_ambiguous_and_not_guessed():
    layout = timestamp_layout(pd.Series(["12/1/2010 8:26", "1/12/2010 9:00", "3/4/2011 10:00"]))
    assert layout.format is None and not layout.parses
    assert layout.candidates == ("%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M")
    assert "ambiguous" in layout.note and "does not guess" in layout.note


@pytest.mark.parametrize(("values", "note"), [
    (["2011-01-01", "2011-02-03 10:00"], "ISO 8601"),
    (pd.to_datetime(["2011-01-01"]), "datetimes"),
    ([20110101, 20110203], "yyyymmdd"),
    (["2010/12/01 08:26", "2011.1.13"], "ISO 8601"),  # year first: pandas' ISO 8601 reading takes / and .
])
def test_the_default_rule_needs_no_format(values, note):
    layout = timestamp_layout(pd.Series(values))
    assert layout.format is None and layout.parses and note in layout.note


def test_a_configured_format_is_kept_when_it_parses_and_replaced_when_not():
    values = pd.Series(["12/1/2010 8:26", "12/13/2010 17:05"])
    assert timestamp_layout(values, "%m/%d/%Y %H:%M").note.startswith("text dates in data.timestamp_format")
    wrong = timestamp_layout(values, "%d/%m/%Y %H:%M")
    assert wrong.format == "%m/%d/%Y %H:%M" and wrong.parses


@pytest.mark.parametrize(("values", "note"), [
    (["12/1/2010", "12-13-2010"], "separators"),
    (["12/1/2010 8:26", "12/13/2010 8:26:01"], "seconds"),
    (["31/12/2010", "12/31/2010"], "exceed 12"),
    (["next tuesday"], "no date layout"),
    (["2/30/2010", "12/13/2010"], "not dates"),
])
def test_no_layout_says_why(values, note):
    layout = timestamp_layout(pd.Series(values))
    assert not layout.parses and layout.format is None and note in layout.note, layout


# --------------------------------------------------------------------------------------------- summary
@pytest.fixture(scope="module")
def ex():
    return simulate_retail_export(1_200, seed=4, mean_lines=5, cancel_rate=0.05, unmatched_rate=0.03)


@pytest.fixture(scope="module")
def quality(ex):
    data = DataConfig(columns=ex.columns, categories={"file": "products.csv", "category": "Category"})
    return inspect_log(ex.export, data, categories=ex.products, source="export.csv")


def test_inspect_counts_what_the_simulator_made(ex, quality):
    c, p = ex.counts, quality.preparation
    assert (p.rows, p.missing_ids, p.duplicates, p.cancellations, p.matched, p.unmatched, p.zero_prices,
            p.negative_prices, p.unmapped, p.unmapped_products, p.kept) == (
        c["rows"], c["missing_ids"], c["duplicates"], c["cancellations"], c["matched"], c["unmatched"],
        c["zero_prices"], c["negative_prices"], c["unmapped"], c["unmapped_products"], c["kept"])
    assert quality.customers == c["customers"]
    truth = ex.truth
    assert quality.first == truth["timestamp"].min() and quality.last == truth["timestamp"].max()
    issues = quality.issues()
    assert issues.loc["missing customer ids", "rows"] == c["missing_ids"]
    assert issues.loc["missing customer ids", "share"] == pytest.approx(c["missing_ids"] / c["rows"])


def test_history_and_categories_match_an_independent_count(ex, quality):
    truth = ex.truth
    days = truth.assign(day=truth["timestamp"].dt.date).groupby("customer_id")["day"].nunique()
    assert quality.purchase_days["median"] == days.median() and quality.purchase_days["max"] == days.max()
    assert quality.purchase_days["mean"] == pytest.approx(days.mean())
    assert quality.one_day_share == pytest.approx((days == 1).mean())
    counts = truth["category"].fillna("<NA>").value_counts()
    assert quality.categories["rows"].to_dict() == counts.sort_index().to_dict()
    assert quality.categories.loc["<NA>", "customers"] == truth.loc[truth["category"].isna(), "customer_id"].nunique()


def test_inspect_suggests_the_settings_the_export_needs(quality):
    suggested = {s.setting: s.value for s in quality.suggestions}
    assert suggested == {"data.timestamp_format": "%m/%d/%Y %H:%M", "data.missing_ids": "drop",
                         "data.duplicates": "drop"}
    assert quality.midpoint == quality.first.normalize() + pd.Timedelta(days=(quality.span_days - 1) // 2)


def test_with_the_suggested_settings_nothing_more_is_suggested(ex):
    data = DataConfig(columns=ex.columns, timestamp_format=ex.timestamp_format, missing_ids="drop", duplicates="drop",
                      prices="error", returns="error")
    suggested = {s.setting: s.value for s in inspect_log(ex.export, data).suggestions}
    assert suggested == {"data.prices": "drop", "data.returns": "exclude"}


def test_ambiguous_dates_leave_out_what_needs_the_time_order(ex):
    export = ex.export.copy()
    early = pd.to_datetime(export["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.day <= 12
    export = export[early.to_numpy()].reset_index(drop=True)
    summary = inspect_log(export, DataConfig(columns=ex.columns))
    assert summary.first is None and summary.purchase_days.empty and summary.preparation.matched is None
    assert summary.preparation.missing_ids == int(export["CustomerID"].isna().sum())
    assert summary.preparation.duplicates == int(export[export["CustomerID"].notna()].duplicated().sum())
    (timestamps,) = [s for s in summary.suggestions if s.setting == "data.timestamp_format"]
    assert timestamps.value == "%d/%m/%Y %H:%M or %m/%d/%Y %H:%M"


def test_a_loaded_log_carries_its_summary(ex, tmp_path):
    ex.write(tmp_path / "export.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = load_transactions(tmp_path / "export.csv", columns=ex.columns, timestamp_format=ex.timestamp_format,
                                missing_ids="drop", duplicates="drop")
    summary = summarize(log)
    assert summary.preparation.missing_ids == ex.counts["missing_ids"]
    assert summary.source == str(tmp_path / "export.csv")
    assert summary.columns["amount"] == "Quantity x UnitPrice" and summary.columns["customer_id"] == "CustomerID"
    table = summary.table()
    assert list(table.columns) == ["section", "item", "value", "share"]
    row = table[(table["section"] == "issues") & (table["item"] == "cancellation lines")].iloc[0]
    assert int(row["value"]) == ex.counts["cancellations"]
    bare = log.copy()
    bare.attrs = {}  # a log that did not come through load_log: summarised alone
    plain = summarize(bare)
    assert (plain.preparation.rows, plain.preparation.kept, plain.preparation.missing_ids) == (len(log), len(log), 0)
    assert plain.customers == log["customer_id"].nunique() and plain.source == ""
    assert summarize(log.iloc[:0]).customers == 0
