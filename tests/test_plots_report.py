"""The scoring report: one self-contained, escaped HTML page with the head of each ranked list, the run's models
and counts and its plots; rendered in headless Chromium (Debian's `chromium`, installed by .ci/run: the test
fails, never skips, without it), every table and image must show."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custval.data.io import write_text
from custval.errors import ConfigError
from custval.plots.report import scoring_report_html

CHROMIUM = Path("/usr/bin/chromium")
NASTY = "<script>alert('id')</script>"
METADATA = {
    "custval.as_of": "2025-01-01",
    "custval.run_id": "run-42",
    "custval.models": {"clv": {"name": "custval-clv", "version": "7", "uri": "models:/custval-clv@champion",
                               "run_id": "r-clv"},
                       "churn": {"name": "custval-churn", "version": "3", "uri": "models:/custval-churn/3",
                                 "run_id": "r-churn"}},
    "custval.reasons": "top 100 of the retention list",
    "custval.retention_uplift": "save rate 0.2 (no retention uplift model)",
}


def _rank(priority: pd.Series, ids: pd.Series) -> pd.Series:
    """1 = highest priority, ties by customer id; <NA> for priority <= 0 or missing (the contract's rule)."""
    order = pd.DataFrame({"p": priority, "id": ids}).query("p > 0").sort_values(["p", "id"],
                                                                                 ascending=[False, True])
    rank = pd.Series(pd.NA, index=priority.index, dtype="Int64")
    rank[order.index] = np.arange(1, len(order) + 1)
    return rank


def scores_frame(n: int = 300, *, retention_first: str = "ret-first", winback_first: str = "wb-first",
                 cross_sell_first: str = "xs-first") -> pd.DataFrame:
    """A scoring output frame built by hand: every 4th customer lapsed; the three named customers lead their
    list by far (priority ~1000 against at most ~100 for anyone else)."""
    rng = np.random.default_rng(11)
    ids = pd.Series([f"c{i:04d}" for i in range(n)])
    ids[[0, 1, 2]] = [winback_first, retention_first, cross_sell_first]
    lapsed = np.arange(n) % 4 == 0
    p = rng.uniform(0.05, 0.6, n)
    clv = rng.gamma(2.0, 50.0, n)
    p[1], clv[1] = 0.95, 5000.0
    frame = pd.DataFrame({"customer_id": ids, "as_of": pd.Timestamp("2025-01-01"),
                          "recency_days": np.where(lapsed, 200, 20) + rng.integers(0, 50, n),
                          "clv": clv, "churn_probability": p, "value_at_risk": p * clv, "lapsed": lapsed})
    frame["retention_uplift"] = 0.2
    frame["retention_priority"] = np.where(lapsed, np.nan, p * clv * 0.2 - 2.0)
    frame["retention_rank"] = _rank(frame["retention_priority"], ids)
    head = frame["retention_rank"].le(100).fillna(False).to_numpy()
    for k, reason in enumerate(("recency_days", "frequency", "revenue"), start=1):
        frame[f"reason_{k}"] = pd.Series(np.where(head, reason, None), dtype="string")
    frame["winback_uplift"] = np.where(lapsed, 0.1, np.nan)
    frame["winback_value"] = np.where(lapsed, rng.gamma(2.0, 200.0, n), np.nan)
    frame.loc[0, "winback_value"] = 20_000.0
    frame["winback_priority"] = frame["winback_uplift"] * frame["winback_value"] - 5.0
    frame["winback_rank"] = _rank(frame["winback_priority"], ids)
    frame["cross_sell_category"] = pd.Series(rng.choice(["books", "music", "video"], n), dtype="string")
    frame["cross_sell_score"] = rng.uniform(0, 3, n)
    frame.loc[2, "cross_sell_score"] = 50.0
    frame["cross_sell_rank"] = _rank(frame["cross_sell_score"], ids)
    cuts = frame["clv"].rank(pct=True)
    frame["tier"] = pd.cut(cuts, [0, 0.5, 0.8, 0.95, 1.0], labels=["lead", "iron", "gold", "platinum"])
    frame["lifecycle_stage"] = np.where(lapsed, "lapsed", rng.choice(["new", "active", "at risk"], n))
    return frame


def _table_after(page: str, heading: str) -> str:
    start = page.index(f"<h2>{heading}")
    return page[start:page.index("</table>", start)]


def test_report_shows_the_run_the_models_and_the_head_of_each_list():
    page = scoring_report_html(scores_frame(), metadata=METADATA, top=5)
    for text in ("2025-01-01", "run-42", "custval-clv", "models:/custval-churn/3", "save rate 0.2"):
        assert text in page
    for heading, first in (("retention list", "ret-first"), ("win-back list", "wb-first"),
                           ("cross-sell list", "xs-first")):
        table = _table_after(page, heading)
        rows = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>([^<]*)</td>", table)
        assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]  # the rank, then the customer id
        assert rows[0][1] == first
    assert "<th>reason_1</th>" in _table_after(page, "retention list")
    assert "<th>winback_value</th>" in _table_after(page, "win-back list")
    assert len(re.findall(r"<img ", page)) == 2 + 2 + 3  # pyramid, value at risk, 2 profit curves, 3 lists


def test_report_is_self_contained_every_image_a_png_data_uri():
    page = scoring_report_html(scores_frame(), metadata=METADATA)
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(base64.b64decode(s.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n") for s in sources)
    assert not re.search(r"https?://|<link|<script|@import|url\(", page, flags=re.IGNORECASE)
    assert "Content-Security-Policy" in page


def test_customer_ids_and_labels_are_escaped():
    frame = scores_frame(retention_first=NASTY)
    frame["cross_sell_category"] = frame["cross_sell_category"].replace("books", "<b>books & co</b>")
    page = scoring_report_html(frame, metadata={**METADATA, "custval.run_id": "<i>run</i>"},
                               title="<h1>report</h1>")
    assert "<script" not in page.lower() and "<b>" not in page and "<i>run" not in page
    assert html.escape(NASTY, quote=False) in page and "&lt;b&gt;books &amp; co&lt;/b&gt;" in page
    assert "<title>&lt;h1&gt;report&lt;/h1&gt;</title>" in page


def test_lists_and_plots_without_their_columns_are_skipped_with_a_note():
    frame = scores_frame().drop(columns=["winback_rank", "winback_priority", "winback_uplift", "winback_value",
                                         "cross_sell_score"])
    page = scoring_report_html(frame, metadata={})
    notes = re.findall(r'<p class="note">([^<]*)</p>', page)
    assert ("win-back list skipped: column(s) winback_rank, winback_uplift, winback_value, winback_priority "
            "absent from the scores") in notes
    assert "cross-sell list skipped: column(s) cross_sell_score absent from the scores" in notes
    assert "win-back profit curve skipped: column winback_priority absent from the scores" in notes
    assert "win-back list composition skipped: column winback_rank absent from the scores" in notes
    assert "no model recorded in the metadata (custval.models)" in notes
    assert "ret-first" in _table_after(page, "retention list")
    assert page.count("not recorded") == 2  # as_of and run id


def test_bad_top_is_a_config_error():
    with pytest.raises(ConfigError, match="top: must be a positive integer"):
        scoring_report_html(scores_frame(), metadata=METADATA, top=0)


def test_report_renders_in_headless_chromium_with_its_tables_and_images(tmp_path, chromium):
    frame = scores_frame(winback_first=NASTY)
    report = write_text(scoring_report_html(frame, metadata=METADATA), tmp_path / "scores.report.html")
    probe = chromium.probe(chromium.render(report.read_text(encoding="utf-8"), tmp_path))
    assert len(probe["images"]) == 7
    assert all(i["complete"] and i["width"] > 100 and i["height"] > 100 for i in probe["images"])
    lists = {t["heads"][0]: t for t in probe["tables"] if t["heads"] and t["heads"][0].endswith("_rank")}
    assert set(lists) == {"retention_rank", "winback_rank", "cross_sell_rank"}
    for rank, first in (("retention_rank", "ret-first"), ("winback_rank", NASTY), ("cross_sell_rank", "xs-first")):
        row = dict(zip(lists[rank]["heads"], lists[rank]["first"], strict=True))
        assert row[rank] == "1" and row["customer_id"] == first  # the id shows as text, never runs
    assert probe["scripts"] == 1  # the probe only


def test_report_policy_blocks_any_script_in_chromium(tmp_path, chromium):
    dom = chromium.render(scoring_report_html(scores_frame(), metadata=METADATA), tmp_path, allow_probe=False)
    assert '<pre id="probe">' not in dom and "<table" in dom
