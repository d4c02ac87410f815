"""The campaign contract (`schemas.CAMPAIGNS`) and the guard rails of a randomised campaign.

A campaign log has one row per customer and campaign: customer_id, campaign_id, treatment (an arm name, or
0/1 with 0 the control), sent_at. `validate_campaigns` parses it; the checks below apply to a log or to a
campaign table alike, each a DataError naming the column, the arm and an example:
  * `check_arms`: no missing treatment value, the control arm present, every expected arm with customers and at
    least one treatment arm;
  * `check_binary_outcome`: an outcome for a binary learner has the two classes 0/1 (yes/no, true/false);
  * `check_responders`: every arm has at least `min_responders` responders, else its uplift cannot be
    evaluated;
  * `sample_ratio_test`: the arm counts against the design split (Pearson's chi-square, scipy); a mismatch
    (p < alpha) is a CustvalWarning, since a broken randomisation biases every uplift estimate.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from custval.data.schemas import CAMPAIGNS, parse_binary_label, parse_customer_ids, parse_timestamps
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError, shown

__all__ = ["MIN_RESPONDERS", "SRM_ALPHA", "Arms", "SampleRatio", "check_arms", "check_binary_outcome",
           "check_responders", "sample_ratio_test", "treatment_values", "validate_campaigns"]

MIN_RESPONDERS = 10
SRM_ALPHA = 0.001
_TABLE = CAMPAIGNS.name


@dataclass(frozen=True)
class Arms:
    """The arms of a campaign: the control and the treatment arms in column order, with their counts."""

    control: object
    treatments: tuple
    counts: dict

    @property
    def names(self) -> tuple:
        """Every arm, control first."""
        return (self.control, *self.treatments)


@dataclass(frozen=True)
class SampleRatio:
    """Pearson's chi-square test of the arm counts against the design split."""

    counts: dict
    expected: dict
    statistic: float
    p_value: float
    alpha: float

    @property
    def mismatch(self) -> bool:
        """True when the counts are unlikely under the design (p < alpha)."""
        return self.p_value < self.alpha


def validate_campaigns(frame: pd.DataFrame, *, columns: Mapping[str, str] | None = None,
                       timestamp_format: str | None = None, table: str = _TABLE) -> pd.DataFrame:
    """A campaign log in the contract's columns (customer_id int64 or str, campaign_id string, treatment as
    given (text -> string, whole numbers -> int64), sent_at datetime64[ns], outcome when present), fresh index.

    `columns` maps contract names to source columns ({"treatment": "group"}). A missing column is a
    SchemaError; missing ids, campaign ids or treatments, unparseable times and a customer listed twice in a
    campaign are DataErrors with an example row.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(table, "*", "must be a pandas DataFrame", type(frame).__name__)
    mapping = dict(columns or {})
    unknown = [name for name in mapping if name not in CAMPAIGNS.names]
    if unknown:
        raise ConfigError(f"campaign columns: {unknown[0]!r} is not a campaign column; the names are "
                          f"{list(CAMPAIGNS.names)}")
    source = {name: mapping.get(name, name) for name in CAMPAIGNS.names}

    def label(name: str) -> str:
        return name if source[name] == name else f"{name} (source column {source[name]!r})"

    for name in CAMPAIGNS.required:
        if source[name] not in frame.columns:
            raise SchemaError(table, label(name), f"required column missing; available columns: "
                              f"{[str(c) for c in frame.columns]}")
    if len(frame) == 0:
        raise DataError(table, "*", "table is empty (no rows)")
    raw = frame.reset_index(drop=True)
    out = pd.DataFrame({"customer_id": parse_customer_ids(raw[source["customer_id"]], table=table,
                                                          label=label("customer_id"))})
    campaign = raw[source["campaign_id"]]
    missing = _blank(campaign)
    if missing.any():
        raise DataError(table, label("campaign_id"), "missing campaign id", f"row {int(np.flatnonzero(missing)[0])}")
    out["campaign_id"] = campaign.astype("string").str.strip()
    out["treatment"] = treatment_values(raw[source["treatment"]], table=table, column=label("treatment"))
    out["sent_at"] = parse_timestamps(raw[source["sent_at"]], timestamp_format, table=table, label=label("sent_at"))
    if source["outcome"] in raw.columns:
        out["outcome"] = raw[source["outcome"]].to_numpy()
    dup = out.duplicated(["customer_id", "campaign_id"], keep=False).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(table, label("customer_id"), "one row per customer and campaign; a customer is listed "
                        "twice in a campaign", f"customer {shown(out['customer_id'].iloc[i])} in campaign "
                        f"{out['campaign_id'].iloc[i]!r}, rows {np.flatnonzero(dup)[:2].tolist()}")
    return out


def treatment_values(values: pd.Series, *, table: str = _TABLE, column: str = "treatment") -> pd.Series:
    """A treatment column as arm names (string, stripped) or whole numbers (int64, e.g. 0/1); a missing or
    blank value is a DataError with its row."""
    missing = _blank(values)
    if missing.any():
        raise DataError(table, column, "missing treatment value: every row needs its arm",
                        f"row {int(np.flatnonzero(missing)[0])}")
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(values.to_numpy().astype(np.int64), index=values.index, name=values.name)
    if pd.api.types.is_numeric_dtype(values.dtype):
        v = values.to_numpy(dtype=float)
        if np.any(v != np.floor(v)):
            raise DataError(table, column, "a numeric treatment must be whole numbers (0 = control, 1 = treated)",
                            shown(values.iloc[int(np.flatnonzero(v != np.floor(v))[0])]))
        return pd.Series(v.astype(np.int64), index=values.index, name=values.name)
    return values.astype("string").str.strip()


def check_arms(treatment: pd.Series, *, control=None, arms: Sequence | None = None, table: str = _TABLE,
               column: str = "treatment") -> Arms:
    """The control and treatment arms of `treatment` (names or 0/1; `control` defaults to 0 for numbers and is
    required for names). `arms`: the expected treatment arms in column order (default: those present,
    sorted). DataError: a missing value, the control absent, an expected arm with no customers, an arm not
    expected, no treatment arm."""
    values = treatment_values(pd.Series(treatment), table=table, column=column)
    numeric = pd.api.types.is_integer_dtype(values.dtype)
    if control is None:
        if not numeric:
            raise ConfigError(f"control must name the control arm of {table}.{column} (arms present: "
                              f"{sorted(values.unique().tolist())})")
        control = 0
    counts = {_plain(k): int(v) for k, v in values.value_counts(sort=False).items()}
    control = _plain(control)
    if control not in counts:
        raise DataError(table, column, f"the control arm {control!r} has no customers; arms present: "
                        f"{sorted(counts, key=str)}", shown(values.iloc[0]))
    present = sorted((a for a in counts if a != control), key=str)
    if arms is None:
        treatments = tuple(present)
    else:
        treatments = tuple(_plain(a) for a in arms)
        empty = [a for a in treatments if a not in counts]
        if empty:
            raise DataError(table, column, f"arm {empty[0]!r} has no customers (the control {control!r} has "
                            f"{counts[control]})", f"arms present: {sorted(counts, key=str)}")
        extra = [a for a in present if a not in treatments]
        if extra:
            row = int(np.flatnonzero((values == extra[0]).to_numpy())[0])
            raise DataError(table, column, f"arm {extra[0]!r} is not one of the expected arms "
                            f"{[control, *treatments]}", f"row {row}")
    if not treatments:
        raise DataError(table, column, f"no treatment arm: every row is the control {control!r}",
                        f"{counts[control]} rows")
    return Arms(control=control, treatments=treatments, counts={a: counts.get(a, 0) for a in (control, *treatments)})


def check_binary_outcome(values: pd.Series, *, table: str = _TABLE, column: str = "outcome") -> pd.Series:
    """An outcome for a binary learner as int8 0/1: a third value, an unknown token or a missing value is a
    DataError (the rules of `schemas.parse_binary_label`)."""
    return parse_binary_label(pd.Series(values), table=table, column=column, require_both_classes=True)


def check_responders(y, treatment, arms: Arms, *, min_responders: int = MIN_RESPONDERS, table: str = _TABLE,
                     column: str = "outcome") -> dict:
    """Responders (y > 0) per arm; an arm with fewer than `min_responders` is a DataError: its response rate,
    and so the uplift against it, cannot be evaluated. Returns {arm: responders}."""
    y = np.asarray(y, dtype=float)
    t = pd.Series(treatment).to_numpy(dtype=object)
    responders = {a: int(np.sum((y > 0) & (t == a))) for a in arms.names}
    short = [a for a in arms.names if responders[a] < min_responders]
    if short:
        a = short[0]
        kind = "control" if a == arms.control else "treated"
        raise DataError(table, column, f"too few {kind} responders to evaluate: arm {a!r} has {responders[a]} "
                        f"responders among {arms.counts[a]} customers (need at least {min_responders})", responders)
    return responders


def sample_ratio_test(treatment, design: Mapping, *, alpha: float = SRM_ALPHA, table: str = _TABLE,
                      column: str = "treatment", warn: bool = True) -> SampleRatio:
    """Pearson's chi-square of the arm counts against `design` ({arm: share}, shares normalised); with `warn`,
    a mismatch (p < alpha) is a CustvalWarning naming the arms, their counts and the expected counts."""
    shares = {_plain(k): float(v) for k, v in dict(design).items()}
    if len(shares) < 2 or any(not np.isfinite(v) or v <= 0 for v in shares.values()):
        raise ConfigError(f"design must give a positive share to each of at least two arms, got {dict(design)!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}")
    values = pd.Series(treatment).to_numpy(dtype=object)
    unknown = sorted({_plain(v) for v in values} - set(shares), key=str)
    if unknown:
        raise DataError(table, column, f"arm {unknown[0]!r} is not in the design {sorted(shares, key=str)}",
                        shown(unknown[0]))
    arms = list(shares)
    observed = np.array([np.sum(values == a) for a in arms], dtype=float)
    total = float(sum(shares.values()))
    expected = observed.sum() * np.array([shares[a] / total for a in arms])
    statistic, p_value = stats.chisquare(observed, expected)
    result = SampleRatio(counts=dict(zip(arms, observed.astype(int).tolist(), strict=True)),
                         expected=dict(zip(arms, expected.tolist(), strict=True)), statistic=float(statistic),
                         p_value=float(p_value), alpha=alpha)
    if warn and result.mismatch:
        shown_counts = ", ".join(f"{a}: {int(n)} vs {e:.1f}" for a, n, e in zip(arms, observed, expected,
                                                                                   strict=True))
        warnings.warn(CustvalWarning(
            f"{table}.{column}: the arm counts do not match the design split (sample-ratio test p = "
            f"{p_value:.3g} < {alpha:g}; {shown_counts}), so the randomisation may be broken and uplift "
            "estimates biased"), stacklevel=2)
    return result


def _blank(values: pd.Series) -> np.ndarray:
    missing = values.isna().to_numpy(dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_object_dtype(values.dtype):
        text = values.astype("string").str.strip()
        missing = missing | (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
