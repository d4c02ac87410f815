"""A data-quality summary of a transaction log as its `data` section maps it (what `custval inspect` prints and
every training job logs as ``tables/data_quality.csv``): rows, customers, date span, what each export policy
found (`custval.data.prepare.Preparation`), categories, purchase days per customer, and the settings it suggests.

`timestamp_layout` recognises text dates such as ``12/1/2010 8:26`` (-> ``%m/%d/%Y %H:%M``): day-first when some
first number exceeds 12, month-first when some second one does; when every value has both <= 12 the order is
ambiguous and it says so rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from custval.data.prepare import COLUMNS_ATTR, PREPARATION_ATTR, SOURCE_ATTR, Preparation, prepare_log
from custval.data.schemas import parse_timestamps, source_columns
from custval.errors import DataError

__all__ = ["DataQuality", "Suggestion", "TimestampLayout", "inspect_log", "suggest_settings", "summarize",
           "timestamp_layout"]

# day and month (in an order to find out), then the year; optionally a time of day
_NUMERIC_DATE = re.compile(r"^(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
                           r"(?P<time>(?P<tsep>[ T])\d{1,2}:\d{2}(?P<sec>:\d{2})?)?$")
QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


@dataclass(frozen=True)
class TimestampLayout:
    """How a timestamp column is written. `format`: the strptime format that parses every value (None: the
    default rule, ISO 8601 / yyyymmdd / datetimes, does); `parses`: whether it (or the default rule) parses every
    value; `candidates`: the formats an ambiguous day/month order leaves open; `note`: one line for people."""

    format: str | None
    parses: bool
    note: str
    candidates: tuple[str, ...] = ()
    example: str | None = None


def _formats(match: pd.DataFrame) -> tuple[str, ...] | str:
    """The strptime formats consistent with the matched parts, or a reason why there is none."""
    for part in ("sep", "tsep"):
        if match[part].nunique(dropna=False) > 1:
            return "values mix separators or times of day"
    if match["sec"].isna().any() and match["sec"].notna().any():
        return "values mix times with and without seconds"
    if match["year"].str.len().nunique() > 1:
        return "values mix two- and four-digit years"
    sep = match["sep"].iloc[0]
    year = "%Y" if len(match["year"].iloc[0]) == 4 else "%y"
    time = "" if pd.isna(match["time"].iloc[0]) else match["tsep"].iloc[0] + "%H:%M" + (
        ":%S" if match["sec"].notna().iloc[0] else "")
    a_day = int(match["a"].astype(int).max()) > 12
    b_day = int(match["b"].astype(int).max()) > 12
    day_first, month_first = f"%d{sep}%m{sep}{year}{time}", f"%m{sep}%d{sep}{year}{time}"
    if a_day and b_day:
        return "both the first and the second number exceed 12 in some values"
    if a_day:
        return (day_first,)
    if b_day:
        return (month_first,)
    return (day_first, month_first)


def timestamp_layout(values: pd.Series, timestamp_format: str | None = None) -> TimestampLayout:
    """The layout of a raw timestamp column (module docstring): the configured `timestamp_format` when it parses
    every value, else the default rule when it does, else a detected format."""
    def parses(fmt: str | None) -> bool:
        try:
            parse_timestamps(values, fmt)
        except DataError:
            return False
        return True

    text = values.dropna()
    example = None if text.empty else str(text.iloc[0])
    if timestamp_format is not None and parses(timestamp_format):
        return TimestampLayout(timestamp_format, True, f"text dates in data.timestamp_format {timestamp_format!r}",
                               example=example)
    if parses(None):
        kind = "datetimes" if pd.api.types.is_datetime64_any_dtype(values.dtype) else \
            "yyyymmdd numbers" if pd.api.types.is_numeric_dtype(values.dtype) else "ISO 8601 text or yyyymmdd"
        return TimestampLayout(None, True, kind, example=example)
    distinct = pd.Series(pd.unique(text.astype("str").str.strip()), dtype="str")
    found = "no date layout custval recognises" + (" (data.timestamp_format does not parse them either)"
                                                   if timestamp_format is not None else "")
    match = distinct.str.extract(_NUMERIC_DATE)  # (year-first text is ISO 8601 enough for the default rule)
    if distinct.empty or match["year"].isna().any():
        return TimestampLayout(None, False, found, example=example)
    formats = _formats(match)
    if isinstance(formats, str):
        return TimestampLayout(None, False, formats, example=example)
    if len(formats) > 1:
        return TimestampLayout(None, False, f"day/month order is ambiguous: in every value both numbers are <= 12 "
                               f"(e.g. {example!r}); custval does not guess: set data.timestamp_format to "
                               f"{formats[0]!r} or {formats[1]!r}", candidates=formats, example=example)
    if not parses(formats[0]):
        return TimestampLayout(None, False, f"{formats[0]!r} fits the layout but some values are not dates",
                               example=example)
    order = "day/month/year" if formats[0].startswith("%d") else "month/day/year"
    return TimestampLayout(formats[0], True, f"{order} text such as {example!r}", example=example)


@dataclass(frozen=True)
class Suggestion:
    """A setting to change: the dotted key, its value as written after `--set key=`, and why."""

    setting: str
    value: str
    reason: str


@dataclass
class DataQuality:
    """The summary (module docstring). `purchase_days`: customers' numbers of distinct purchase days at the
    `QUANTILES` plus the mean (empty when the dates could not be read); `categories`: rows, share and customers
    per category (None without a category column)."""

    preparation: Preparation
    columns: dict[str, str]
    customers: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    purchase_days: pd.Series
    one_day_share: float | None
    categories: pd.DataFrame | None
    timestamps: TimestampLayout | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    source: str = ""

    @property
    def span_days(self) -> int | None:
        return None if self.first is None else int((self.last.normalize() - self.first.normalize()).days) + 1

    @property
    def midpoint(self) -> pd.Timestamp | None:
        """The day halfway through the span (a calibration end that leaves half the log as holdout)."""
        if self.first is None:
            return None
        first, last = self.first.normalize(), self.last.normalize()
        return first + pd.Timedelta(days=int((last - first).days) // 2)

    def overview(self) -> pd.DataFrame:
        p = self.preparation
        rows = [("source", self.source), ("rows read", f"{p.rows:,}"), ("rows kept", f"{p.kept:,}"),
                ("customers", f"{self.customers:,}"),
                ("columns", ", ".join(f"{k}={v}" for k, v in self.columns.items()))]
        if self.timestamps is not None:
            rows.append(("timestamps", self.timestamps.note))
        if self.first is not None:
            rows += [("first", str(self.first)), ("last", str(self.last)), ("span", f"{self.span_days:,} days")]
        return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")

    def issues(self) -> pd.DataFrame:
        """What each policy found: rows and their share of the rows read (None: the step did not apply)."""
        p = self.preparation
        items = [("missing customer ids", p.missing_ids), ("duplicate rows", p.duplicates),
                 ("cancellation lines", p.cancellations), ("  matched (removed with their line)", p.matched),
                 ("  unmatched (returns)", p.unmatched), ("zero unit prices", p.zero_prices),
                 ("negative unit prices", p.negative_prices), ("returns (negative amounts)", p.returns),
                 ("  removed by data.returns", p.returns_removed), ("rows without a category", p.unmapped),
                 ("  products missing from data.categories", p.unmapped_products)]
        frame = pd.DataFrame(items, columns=["issue", "rows"]).set_index("issue")
        frame["share"] = frame["rows"].astype("float64") / p.rows if p.rows else np.nan
        frame.loc["  products missing from data.categories", "share"] = np.nan
        return frame

    def history(self) -> pd.DataFrame:
        frame = self.purchase_days.rename("purchase days").to_frame()
        if self.one_day_share is not None:
            frame.loc["customers with one purchase day (share)"] = self.one_day_share
        return frame

    def table(self) -> pd.DataFrame:
        """Everything in one long table (section, item, value, share), as logged to MLflow."""
        parts = [("overview", k, str(v), np.nan) for k, v in self.overview()["value"].items()]
        parts += [("issues", k.strip(), "" if pd.isna(r.rows) else str(int(r.rows)), r.share)
                  for k, r in self.issues().iterrows()]
        parts += [("purchase days per customer", k, f"{v:.6g}", np.nan) for k, v in self.history().iloc[:, 0].items()]
        if self.categories is not None:
            parts += [("categories", str(k), str(int(r.rows)), r.share) for k, r in self.categories.iterrows()]
        parts += [("suggestions", s.setting, s.value, np.nan) for s in self.suggestions]
        return pd.DataFrame(parts, columns=["section", "item", "value", "share"])


def summarize(log: pd.DataFrame, preparation: Preparation | None = None, *, dated: bool = True,
              source: str | None = None, **extra) -> DataQuality:
    """The summary of a prepared log; `preparation`, its source columns and `source` default to what the log
    carries (``attrs``, see `custval.data.prepare`), else a report of the log alone. `dated=False`: the
    timestamps are placeholders (no span, no history)."""
    columns = dict(log.attrs.get(COLUMNS_ATTR) or {})
    source = str(log.attrs.get(SOURCE_ATTR, "")) if source is None else source
    if preparation is None:
        stored = log.attrs.get(PREPARATION_ATTR)
        preparation = Preparation.from_dict(stored) if stored else Preparation(rows=len(log), kept=len(log))
    customers = int(log["customer_id"].nunique()) if len(log) else 0
    first = last = None
    days = pd.Series(dtype="float64")
    one_day = None
    if dated and len(log):
        first, last = pd.Timestamp(log["timestamp"].min()), pd.Timestamp(log["timestamp"].max())
        day = log["timestamp"].to_numpy().astype("datetime64[D]")
        per_customer = pd.DataFrame({"c": log["customer_id"].to_numpy(), "d": day}).drop_duplicates().groupby(
            "c", sort=False).size()
        days = per_customer.quantile(list(QUANTILES))
        days.index = ["min", "25%", "median", "75%", "90%", "max"]
        days.loc["mean"] = float(per_customer.mean())
        one_day = float((per_customer == 1).mean())
    categories = None
    if "category" in log.columns and len(log):
        label = log["category"].astype("string").fillna("<NA>")
        grouped = pd.DataFrame({"category": label, "c": log["customer_id"]}).groupby("category", sort=True)
        categories = pd.DataFrame({"rows": grouped.size(), "customers": grouped["c"].nunique()})
        categories.insert(1, "share", categories["rows"] / len(log))
    return DataQuality(preparation=preparation, columns=columns, customers=customers, first=first, last=last,
                       purchase_days=days, one_day_share=one_day, categories=categories, source=source, **extra)


def suggest_settings(data, preparation: Preparation, layout: TimestampLayout | None = None, *,
                     default_duplicates: str = "error") -> list[Suggestion]:
    """The data.* settings that would let the log load (or load as intended), from what `prepare_log(...,
    strict=False)` found and the timestamp layout."""
    p = preparation
    out = []

    def share(n: int) -> str:
        return f"{n:,} rows ({n / p.rows:.1%})" if p.rows else f"{n:,} rows"

    if layout is not None and layout.format is not None and layout.format != data.timestamp_format:
        out.append(Suggestion("data.timestamp_format", layout.format, layout.note))
    elif layout is not None and layout.candidates:
        out.append(Suggestion("data.timestamp_format", " or ".join(layout.candidates), layout.note))
    if p.missing_ids and data.missing_ids == "error":
        out.append(Suggestion("data.missing_ids", "drop", f"{share(p.missing_ids)} have no customer id"))
    if p.duplicates and (data.duplicates or default_duplicates) == "error":
        out.append(Suggestion("data.duplicates", "drop", f"{share(p.duplicates)} repeat an earlier row exactly"))
    if p.cancellations and data.cancellations.policy == "returns":
        out.append(Suggestion("data.cancellations.policy", "match", f"{share(p.cancellations)} are cancellations: "
                              "remove them with the lines they cancel instead of counting the original sales"))
    if (p.zero_prices or p.negative_prices) and data.prices == "error":
        out.append(Suggestion("data.prices", "drop", f"{share(p.zero_prices + p.negative_prices)} have a zero or "
                              "negative unit price"))
    if p.returns and data.returns == "error":
        out.append(Suggestion("data.returns", "exclude", f"{share(p.returns)} have a negative amount"))
    if p.unmapped and data.categories.unmapped == "error":
        out.append(Suggestion("data.categories.unmapped", "warn", f"{share(p.unmapped)} have a product missing "
                              "from data.categories.file"))
    return out


def inspect_log(raw: pd.DataFrame, data, *, categories: pd.DataFrame | None = None, table: str = "transactions",
                default_duplicates: str = "error", source: str = "") -> DataQuality:
    """The summary of a raw log under `data`'s settings, with the settings it suggests: the timestamp layout is
    detected, then `prepare_log(..., strict=False)` counts what every policy finds. When the timestamps cannot
    be read (an ambiguous day/month order) the rest is still counted; span, history and the matching of
    cancellations (which need the time order) are then left out."""
    src = source_columns(raw, data.columns, table=table)
    layout = timestamp_layout(raw[src["timestamp"]], data.timestamp_format)
    settings = data.model_copy(update={"timestamp_format": layout.format})
    if not layout.parses:  # distinct placeholders keep the duplicate check right
        codes, _ = pd.factorize(raw[src["timestamp"]], use_na_sentinel=True)
        raw = raw.assign(**{src["timestamp"]: pd.Timestamp("2000-01-01") + pd.to_timedelta(codes, unit="s")})
    prepared = prepare_log(raw, settings, categories=categories, table=table, default_duplicates=default_duplicates,
                           strict=False)
    report = prepared.preparation
    if not layout.parses:
        report = replace(report, matched=None, unmatched=None)
    return summarize(prepared.log, report, dated=layout.parses, timestamps=layout,
                     suggestions=suggest_settings(data, report, layout, default_duplicates=default_duplicates),
                     source=source)
