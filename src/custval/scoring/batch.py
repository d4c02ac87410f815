"""Scoring a population with fitted models: every customer of a transaction log as of a date, in chunks of
customers, with the CLV, churn, propensity and uplift models; then the ranked lists and the segments over the
whole base (`score_base`). Also the probabilities-with-reasons helper of the training jobs.

Features are built with the training code (`custval.features.snapshots.build_snapshot`, from transactions before
`as_of` only) with each model's own recipe; a model whose input columns are not among the features built is
refused, naming the column. Chunks hold whole customers (a customer's features depend only on that customer's
rows and the log's history start), so the result does not depend on the chunk size. The ranks and the segments
(quantiles over the base) are computed once every chunk is scored; reasons only for the head of the retention
list.

Each model scores only the customers it is for, the others get NaN: churn and propensity their population
(`active_days` of the recipe), the retention uplift the customers who are not lapsed (the lapsed ones are the
win-back list's; the retention list skips them), the win-back uplift the lapsed ones.

The models are passed in loaded (duck-typed: `custval.tracking.models` loads them as data): a CLV model with
`period` and `predict(rfm)`; classifiers with `features`, `recipe` and `score(X, reasons)`; uplift models with
`features`, `recipe`, `arms`, `score(X)` and, for win-back, `value_model`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from custval.config import ScoreConfig, SegmentConfig
from custval.config.sections import WinbackSettings
from custval.errors import ConfigError, DataError, SchemaError
from custval.features import snapshots as snap
from custval.features.rfm import rfm_summary
from custval.features.rfm_scores import rfm_table
from custval.features.value_segments import segment_customers
from custval.features.winback import lapse_features, lapsed_customers
from custval.scoring.ranking import (
    cross_sell,
    purchased_categories,
    rank_list,
    retention_priority,
    winback_priority,
)

__all__ = ["ROLES", "ScoredBase", "ScoredChunks", "ScoringModels", "ScoringRules", "add_priorities", "chunks",
           "finish_base", "positive_probability", "score_base", "score_chunk", "score_chunks", "score_with_reasons",
           "scoring_rules", "summarise", "check_inputs", "ordered"]

ROLES = ("clv", "churn", "propensity", "retention", "winback")
DAY = pd.Timedelta(days=1)
N_REASONS = 3
CLV_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")


@contextmanager
def _stage(timings: dict[str, float] | None, name: str):
    """Adds the wall time of the block to timings[name] (nothing when timings is None)."""
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def positive_probability(model, X: pd.DataFrame) -> np.ndarray:
    """P(y = 1) of a fitted binary classifier, as float64."""
    return np.asarray(model.predict_proba(X))[:, 1].astype("float64")


def score_with_reasons(model, ids: pd.DataFrame, X: pd.DataFrame, *, column: str, reasons: int = 3) -> pd.DataFrame:
    """`ids` with the model's probability in `column` and reason_1..k (from `model.explain`), highest
    probability first (ties keep the order of `ids`)."""
    explained = pd.DataFrame(model.explain(X, top=reasons))
    keep = [f"reason_{i}" for i in range(1, reasons + 1) if f"reason_{i}" in explained.columns]
    scores = ids.reset_index(drop=True).assign(**{column: positive_probability(model, X)})
    scores = scores.join(explained[keep].reset_index(drop=True))
    order = np.argsort(-scores[column].to_numpy(), kind="stable")
    return scores.iloc[order].reset_index(drop=True)


# ------------------------------------------------------------------------------------------ models, rules
@dataclass
class ScoringModels:
    """The loaded models by role (None: not scored)."""

    clv: Any = None
    churn: Any = None
    propensity: Any = None
    retention: Any = None
    winback: Any = None

    def present(self) -> dict[str, Any]:
        return {role: getattr(self, role) for role in ROLES if getattr(self, role) is not None}


@dataclass(frozen=True)
class ScoringRules:
    """The economics and options of the lists, resolved (`scoring_rules`: config nulls from the models), and
    each model's checked recipe."""

    lapse_days: int = 120
    retention_arm: str | None = None  # the arm of the retention model (None: no retention model)
    save_rate: float = 0.2  # the uplift without a retention model
    retention_cost: float = 5.0
    reasons_top: int = 100
    winback_arm: str | None = None
    winback_cost: float = 10.0
    winback_value: str = "second_lifetime_value"  # how a return is valued: margin | second_lifetime_value | spend
    winback_margin: float | None = None  # response value margin: the profit of one return
    winback_margin_rate: float | None = None  # second_lifetime_value / spend: the profit share of spend
    margins: Mapping[str, float] = field(default_factory=dict)
    default_margin: float = 1.0
    new_only: bool = True
    segments: SegmentConfig = field(default_factory=SegmentConfig)
    recipes: Mapping[str, dict] = field(default_factory=dict)  # role -> checked recipe (check_recipe)


def _arm(model, role: str, arm: str | None) -> str:
    arms = [str(a) for a in model.arms]
    if arm is None:
        if len(arms) != 1:
            raise ConfigError(f"{role}.arm must name the arm of models.{role} to price: the model has the arms "
                              f"{arms}, e.g. {role}.arm={arms[0]}")
        return arms[0]
    if arm not in arms:
        raise ConfigError(f"{role}.arm: {arm!r} is not an arm of models.{role} (arms: {arms})")
    return arm


def _recipes(models: ScoringModels, *, has_customers: bool) -> dict[str, dict]:
    """Every model's recipe, checked and checked against the others (snapshots.compatible_recipes); a model
    this job cannot rebuild the features of is a ConfigError naming models.<role> or the data setting."""
    try:
        recipes = snap.compatible_recipes({role: getattr(model, "recipe", None)
                                           for role, model in models.present().items() if role != "clv"})
    except ConfigError as exc:
        raise ConfigError(f"models.{exc}") from None
    for role, recipe in recipes.items():
        if recipe["kind"] != "snapshot":
            raise ConfigError(f"models.{role}: the model was trained on a customer table (no transactions), so "
                              "it cannot score a transaction log; train it on transactions")
        if recipe["clv_features"]:
            raise ConfigError(f"models.{role}: the model was trained with snapshots.clv_features=true, whose "
                              "BG/NBD fit spans the whole log and cannot be rebuilt chunk by chunk; retrain with "
                              "snapshots.clv_features=false")
        if recipe["customers"] and not has_customers:
            raise ConfigError(f"data.customers: models.{role} was trained with customer attributes as features; "
                              "name the customer table, e.g. data.customers=customers.csv")
    return recipes


def scoring_rules(config: ScoreConfig, models: ScoringModels, *, has_customers: bool = True) -> ScoringRules:
    """The rules of `config`, its nulls resolved from the models (the arms to price: a model's only arm; the
    win-back lapse, cost and value as the win-back model was trained with), and the models' recipes checked
    against each other and the data (`has_customers`: a customer table is given). Nothing is loaded."""
    recipes = _recipes(models, has_customers=has_customers)
    retention_arm = None if models.retention is None else _arm(models.retention, "retention", config.retention.arm)
    winback = config.winback
    lapse_days, cost, margin_rate, margin, arm = winback.lapse_days, winback.cost, winback.margin_rate, None, None
    kind = "second_lifetime_value"
    if models.winback is not None:
        arm = _arm(models.winback, "winback", winback.arm)
        value = recipes["winback"]["value"]
        if value is None:
            raise ConfigError("models.winback: the model records no response value; retrain it with custval train "
                              "uplift --config pipelines/uplift_winback.yaml")
        kind = value["response_value"]
        lapse_days = lapse_days if lapse_days is not None else int(value["lapse_days"])
        cost = cost if cost is not None else float(value["costs"][arm])
        if kind == "margin":
            if margin_rate is not None:
                raise ConfigError("winback.margin_rate would be ignored: models.winback values a return by a fixed "
                                  f"margin ({value['margin']:g})")
            margin = float(value["margin"])
        else:
            margin_rate = margin_rate if margin_rate is not None else float(value["margin_rate"])
        if kind == "second_lifetime_value" and getattr(models.winback, "value_model", None) is None:
            raise ConfigError("models.winback: the model is valued by the second lifetime value but carries no "
                              "value model; retrain it with custval train uplift")
    return ScoringRules(
        lapse_days=lapse_days if lapse_days is not None else WinbackSettings().lapse_days,
        retention_arm=retention_arm, save_rate=config.retention.save_rate, retention_cost=config.retention.cost,
        reasons_top=config.retention.top, winback_arm=arm, winback_cost=cost if cost is not None else 0.0,
        winback_value=kind, winback_margin=margin, winback_margin_rate=margin_rate,
        margins=dict(config.cross_sell.margins), default_margin=config.cross_sell.default_margin,
        new_only=config.cross_sell.new_only, segments=config.segments, recipes=recipes)


def check_inputs(role: str, model, built: pd.DataFrame) -> list[str]:
    """The model's feature columns, each present among the features built; a SchemaError naming the first
    missing one."""
    names = [f["name"] for f in model.features]
    missing = [n for n in names if n not in built.columns]
    if missing:
        raise SchemaError("features", missing[0], f"models.{role} needs this input, but the features built as of "
                          "the scoring date have no such column (another feature recipe or missing customer "
                          f"attributes; built: {len(built.columns)} columns)")
    return names


# ------------------------------------------------------------------------------------------------- chunks
def chunks(transactions: pd.DataFrame, customers: pd.DataFrame | None, as_of: pd.Timestamp, size: int
           ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None]]:
    """(transactions, customers) of at most `size` customers at a time, in customer id order, every row of a
    customer in one chunk (in the log's order); only rows before `as_of` (nothing later is ever used). The log
    is sorted by customer once (not at all when it already is: then the chunks are views of it)."""
    before = (transactions["timestamp"] < as_of).to_numpy(dtype=bool)
    log = transactions if before.all() else transactions.loc[before]
    keys = log["customer_id"].to_numpy()
    if not pd.api.types.is_numeric_dtype(keys.dtype):
        keys = pd.factorize(log["customer_id"], sort=True)[0]
    if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():
        order = np.argsort(keys, kind="stable")
        log, keys = log.iloc[order], keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, dtype=np.int64)
    bounds = np.r_[starts[::size], len(keys)]
    people = _people_by_id(customers, log["customer_id"])
    for start, stop in zip(bounds[:-1], bounds[1:], strict=False):
        part = log.iloc[start:stop]
        yield part, None if customers is None else people(part["customer_id"])


def _people_by_id(customers: pd.DataFrame | None, log_ids: pd.Series) -> Callable[[pd.Series], pd.DataFrame | None]:
    """A function: a chunk's customer ids -> the rows of `customers` with those ids, in the table's order. With
    numeric ids on both sides it looks the chunk's id range up in the table sorted once, rather than testing
    every row of the table per chunk."""
    if customers is None:
        return lambda ids: None
    table_ids = customers["customer_id"].to_numpy()
    if not (pd.api.types.is_numeric_dtype(table_ids.dtype) and pd.api.types.is_numeric_dtype(log_ids.dtype)):
        return lambda ids: customers.loc[customers["customer_id"].isin(ids.unique())]
    order = np.argsort(table_ids, kind="stable")
    sorted_ids = table_ids[order]

    def people(ids: pd.Series) -> pd.DataFrame:
        values = ids.to_numpy()
        lo = np.searchsorted(sorted_ids, values.min(), side="left")
        hi = np.searchsorted(sorted_ids, values.max(), side="right")
        rows = customers.iloc[np.sort(order[lo:hi])]
        return rows.loc[rows["customer_id"].isin(ids.unique())]

    return people


def _features(cache: dict, log, customers, as_of, history_start, recipe: dict,
              timings: dict[str, float] | None = None) -> pd.DataFrame:
    """The snapshot features of `recipe` as of `as_of` for every customer of `log` (the population rule is
    applied by the caller), indexed by customer_id; one build per distinct feature recipe (cross_sell_new_only
    shapes only the labels, which are not built: recipes differing only in it share a build)."""
    options = snap.recipe_options(recipe, customers=customers)
    options["active_days"] = None
    key = (options["windows"], tuple(options["categories"] or ()),
           options["cross_sell_new_only"] if options["labels"] else None, options["customers"] is not None)
    if key not in cache:
        with _stage(timings, "features"):
            cache[key] = snap.build_snapshot(log, as_of, history_start=history_start, **options).set_index(
                "customer_id")
    return cache[key]


def _uplift_column(model, arm: str, X: pd.DataFrame) -> np.ndarray:
    scores = model.score(X, arms=[arm])  # only the priced arm's models are evaluated
    return scores[f"uplift_{arm}"].to_numpy(dtype=float)


def score_chunk(log: pd.DataFrame, customers: pd.DataFrame | None, as_of: pd.Timestamp, models: ScoringModels,
                rules: ScoringRules, *, history_start: pd.Timestamp, reasons: int = 0,
                timings: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per customer with a purchase before `as_of` in `log` (sorted by customer_id): the RFM summary in
    the CLV model's period, the model scores, lapsed and the winback value; no ranks (see score_base).
    `reasons` > 0: also reason_1..k of the churn model for every customer it scores, from the same pass (the
    served scorer; the batch job explains only the head of its list). `timings` (optional) accumulates the
    seconds of each stage: rfm, features, one per model role, lists."""
    clv = models.clv
    period = clv.period if clv is not None else "D"
    last_day = as_of - DAY
    with _stage(timings, "rfm"):
        summary = rfm_summary(log, last_day, period=period)[["frequency", "recency", "T", "monetary_value"]]
        classic = rfm_table(log, as_of=last_day)
        if not classic.index.equals(summary.index):
            classic = classic.reindex(summary.index)  # a left join on the summary's customers
        out = pd.DataFrame({
            **{column: summary[column].to_numpy() for column in summary.columns},
            "purchases": classic["frequency"].to_numpy(), "revenue": classic["monetary"].to_numpy(),
            # days from the last purchase day to as_of (>= 1)
            "recency_days": classic["recency_days"].to_numpy() + 1.0,
        }, index=summary.index.rename("customer_id"))
    if clv is not None:
        with _stage(timings, "clv"):
            values = clv.predict(summary)
            for column in CLV_COLUMNS:
                out[column] = values[column].to_numpy(dtype=float)
    cache: dict = {}
    if models.churn is not None:
        recipe = rules.recipes["churn"]
        X = _features(cache, log, customers, as_of, history_start, recipe, timings)
        with _stage(timings, "churn"):
            names = check_inputs("churn", models.churn, X)
            active = recipe.get("active_days")
            # outside the model's population (it never learnt about such customers) nothing is scored: NaN
            inside = X if active is None else X.loc[X["recency_days"].to_numpy(dtype=float) <= active]
            churn = models.churn.score(inside[names], reasons=reasons) if len(inside) else pd.DataFrame(
                {"churn_probability": np.empty(0), **{f"reason_{j}": [] for j in range(1, reasons + 1)}},
                index=inside.index)
            out["churn_probability"] = churn["churn_probability"].astype(float).reindex(out.index).to_numpy()
            for j in range(1, reasons + 1):
                out[f"reason_{j}"] = churn[f"reason_{j}"].astype("string").reindex(out.index).array
            if "clv" in out.columns:
                out["value_at_risk"] = out["churn_probability"] * out["clv"]
    with _stage(timings, "rfm"):
        lapsed = lapsed_customers(log, as_of, lapse_days=rules.lapse_days).set_index("customer_id")
        out["lapsed"] = out.index.isin(lapsed.index)
    if models.retention is not None:
        recipe = rules.recipes["retention"]
        X = _features(cache, log, customers, as_of, history_start, recipe, timings)
        with _stage(timings, "retention"):
            names = check_inputs("retention", models.retention, X)
            # priced where the retention list can use it: lapsed customers are the win-back list's (NaN here)
            who = X.index[~X.index.isin(lapsed.index)]
            uplift = _uplift_column(models.retention, rules.retention_arm, X.loc[who, names]) if len(who) \
                else np.empty(0)
            out["retention_uplift"] = pd.Series(uplift, index=who, dtype=float).reindex(out.index).to_numpy()
    else:
        out["retention_uplift"] = rules.save_rate
    if models.winback is not None:
        recipe = rules.recipes["winback"]
        X = _features(cache, log, customers, as_of, history_start, recipe, timings)
        with _stage(timings, "winback"):
            out = _winback(out, X, lapsed, models, rules)
    if models.propensity is not None:
        recipe = rules.recipes["propensity"]
        X = _features(cache, log, customers, as_of, history_start, recipe, timings)
        with _stage(timings, "propensity"):
            out = _propensity(out, X, log, as_of, recipe, models, rules)
    return out


def _winback(out: pd.DataFrame, X: pd.DataFrame, lapsed: pd.DataFrame, models: ScoringModels,
             rules: ScoringRules) -> pd.DataFrame:
    """winback_uplift and winback_value of the lapsed customers (NaN for the others)."""
    names = check_inputs("winback", models.winback, X)
    who = X.index[X.index.isin(lapsed.index)]
    uplift = _uplift_column(models.winback, rules.winback_arm, X.loc[who, names]) if len(who) else np.empty(0)
    out["winback_uplift"] = pd.Series(uplift, index=who, dtype=float).reindex(out.index).to_numpy()
    if rules.winback_value == "margin":
        value = np.full(len(who), float(rules.winback_margin))
    elif rules.winback_value == "spend":  # the uplift is already money: a unit of spend uplift earns its margin
        value = np.full(len(who), float(rules.winback_margin_rate))
    elif len(who):
        value = rules.winback_margin_rate * models.winback.value_model.predict(lapse_features(lapsed.loc[who]))
    else:
        value = np.empty(0)
    out["winback_value"] = pd.Series(value, index=who, dtype=float).reindex(out.index).to_numpy()
    return out


def _propensity(out: pd.DataFrame, X: pd.DataFrame, log: pd.DataFrame, as_of: pd.Timestamp, recipe: dict,
                models: ScoringModels, rules: ScoringRules) -> pd.DataFrame:
    """The p_<category> columns and the best cross-sell category of each customer."""
    names = check_inputs("propensity", models.propensity, X)
    active = recipe.get("active_days")
    # only the model's population is scored; the others get NaN
    inside = X if active is None else X.loc[~(X["recency_days"].to_numpy(dtype=float) > active)]
    outputs = models.propensity.spec["outputs"]
    p = models.propensity.score(inside[names]) if len(inside) else pd.DataFrame(
        {column: np.empty(0) for column in outputs}, index=inside.index)
    p = p.reindex(out.index)
    for column in p.columns:
        out[column] = p[column].to_numpy(dtype=float)
    categories = [c.removeprefix("p_") for c in p.columns]
    if rules.new_only and "category" in log.columns:
        bought = purchased_categories(log, as_of, categories, out.index)
    else:
        bought = pd.DataFrame(False, index=out.index, columns=categories)
    margins = [rules.margins.get(c, rules.default_margin) for c in categories]
    best = cross_sell(p, bought, margins)
    out["cross_sell_category"] = best["cross_sell_category"].to_numpy()
    out["cross_sell_score"] = best["cross_sell_score"].to_numpy()
    return out


# -------------------------------------------------------------------------------------------- the base
@dataclass
class ScoredBase:
    """The scoring output (one row per customer, the columns of docs/architecture.md's scoring output), and
    what it was computed with."""

    scores: pd.DataFrame
    as_of: pd.Timestamp
    n_chunks: int
    rules: ScoringRules
    summary: dict[str, float]


@dataclass
class ScoredChunks:
    """`score_chunks`' result: the chunks' rows, and of the log only what `finish_base` reads again: the rows
    (before as_of) and customer attributes of each chunk's retention head, among whom are the customers that
    get reasons. The caller can release the log and the customer table once it has this."""

    parts: list[pd.DataFrame]
    as_of: pd.Timestamp
    history_start: pd.Timestamp
    head_log: pd.DataFrame | None = None
    head_customers: pd.DataFrame | None = None


def score_base(transactions: pd.DataFrame, as_of, models: ScoringModels, rules: ScoringRules, *,
               customers: pd.DataFrame | None = None, chunk_size: int = 250_000,
               progress: Callable[[int], None] | None = None,
               timings: dict[str, float] | None = None) -> ScoredBase:
    """Every customer with a purchase before `as_of`, scored in chunks of `chunk_size` customers, then ranked
    and segmented over the whole base (module docstring): `finish_base(score_chunks(...))`. `progress(n)` is
    called with the customers of each chunk done; `timings` (optional) accumulates the seconds of each stage
    (`score_chunk`'s, and chunks, lists, segments, reasons)."""
    scored = score_chunks(transactions, as_of, models, rules, customers=customers, chunk_size=chunk_size,
                          progress=progress, timings=timings)
    return finish_base(scored, models, rules, timings=timings)


def score_chunks(transactions: pd.DataFrame, as_of, models: ScoringModels, rules: ScoringRules, *,
                 customers: pd.DataFrame | None = None, chunk_size: int = 250_000,
                 progress: Callable[[int], None] | None = None,
                 timings: dict[str, float] | None = None) -> ScoredChunks:
    """The first half of `score_base`: every chunk scored (`score_chunk`), and the log rows of each chunk's
    retention head kept for the reasons."""
    as_of = pd.Timestamp(as_of).normalize()
    if not (transactions["timestamp"] < as_of).any():
        raise DataError("transactions", "timestamp", f"has no rows before as_of {as_of.date()}",
                        str(transactions["timestamp"].min()))
    if not models.present():
        raise ConfigError("models: every model is null; name at least one registered model to score with")
    start = snap.history_start(transactions)
    parts, head_logs, head_people = [], [], []
    pieces = chunks(transactions, customers, as_of, chunk_size)
    while True:
        with _stage(timings, "chunks"):
            piece = next(pieces, None)
        if piece is None:
            break
        part = score_chunk(*piece, as_of, models, rules, history_start=start, timings=timings)
        parts.append(part)
        with _stage(timings, "reasons"):
            head = _retention_head(part, models, rules)
            if head is not None:
                log, people = piece
                head_logs.append(log.loc[log["customer_id"].isin(head)])
                if people is not None:
                    head_people.append(people.loc[people["customer_id"].isin(head)])
        del piece
        if progress is not None:
            progress(len(part))
    return ScoredChunks(parts=parts, as_of=as_of, history_start=start,
                        head_log=pd.concat(head_logs) if head_logs else None,
                        head_customers=pd.concat(head_people) if head_people else None)


def _retention_head(part: pd.DataFrame, models: ScoringModels, rules: ScoringRules) -> pd.Index | None:
    """The customers of one chunk ranked within it in the top `reasons_top` of the retention list: the list's
    top over the whole base is among the union of these (a customer ahead of it overall is ahead in its chunk
    too). None when no reasons are given."""
    if models.churn is None or rules.reasons_top == 0 or not {"churn_probability", "clv"} <= set(part.columns):
        return None
    priority = add_priorities(part[["churn_probability", "clv", "retention_uplift", "lapsed"]].copy(), rules)
    rank = rank_list(priority["retention_priority"], part.index.to_numpy())
    return part.index[(rank <= rules.reasons_top).fillna(False).to_numpy(dtype=bool)]


def finish_base(scored: ScoredChunks, models: ScoringModels, rules: ScoringRules, *,
                timings: dict[str, float] | None = None) -> ScoredBase:
    """The second half of `score_base`: the chunks put together (`scored.parts` is emptied), ranked,
    segmented, and the head of the retention list given reasons from the rows kept."""
    parts = scored.parts
    n_chunks = len(parts)
    with _stage(timings, "lists"):
        base = _concat(parts)
        base = _lists(base, models, rules)
    with _stage(timings, "segments"):
        base = _segments(base, rules.segments)
    with _stage(timings, "reasons"):
        base = _reasons(base, scored.head_log, scored.head_customers, scored.as_of, models, rules,
                        scored.history_start)
    with _stage(timings, "lists"):
        base.insert(0, "as_of", scored.as_of)
        scores = ordered(base.reset_index())
    return ScoredBase(scores=scores, as_of=scored.as_of, n_chunks=n_chunks, rules=rules,
                      summary=summarise(scores))


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """pd.concat(parts), one column at a time, each chunk's column released once copied: the base is held
    about once, not twice (the chunks then the whole). Empties `parts`."""
    if len(parts) == 1:
        return parts.pop()
    index = parts[0].index.append([part.index for part in parts[1:]])
    columns = {}
    for column in list(parts[0].columns):
        columns[column] = pd.concat([part[column] for part in parts], ignore_index=True).set_axis(index)
        for part in parts:
            del part[column]
    parts.clear()
    return pd.DataFrame(columns, index=index, copy=False)


def add_priorities(scores: pd.DataFrame, rules: ScoringRules) -> pd.DataFrame:
    """`scores` (score_chunk's rows) with retention_priority (NaN for lapsed customers) and winback_priority
    where their inputs were scored: per customer, unlike the ranks of score_base."""
    if "churn_probability" in scores.columns and "clv" in scores.columns:
        priority = retention_priority(scores["churn_probability"], scores["clv"], scores["retention_uplift"],
                                      rules.retention_cost)
        scores["retention_priority"] = np.where(scores["lapsed"].to_numpy(dtype=bool), np.nan, priority)
    if "winback_uplift" in scores.columns:
        scores["winback_priority"] = winback_priority(scores["winback_uplift"], scores["winback_value"],
                                                      rules.winback_cost)
    return scores


def _lists(base: pd.DataFrame, models: ScoringModels, rules: ScoringRules) -> pd.DataFrame:
    ids = base.index.to_numpy()
    base = add_priorities(base, rules)
    if "retention_priority" in base.columns:
        base["retention_rank"] = rank_list(base["retention_priority"], ids)
    if "winback_priority" in base.columns:
        base["winback_rank"] = rank_list(base["winback_priority"], ids)
    if "cross_sell_score" in base.columns:
        base["cross_sell_rank"] = rank_list(base["cross_sell_score"], ids)
    return base


def _segments(base: pd.DataFrame, config: SegmentConfig) -> pd.DataFrame:
    """The segment columns added to `base` in place; segment_customers is given only the columns it reads
    (it copies its input)."""
    if len(base) < 2:
        return base
    reads = dict.fromkeys(["frequency", "recency", "T", config.monetary, "clv", config.loyalty, "p_alive"])
    segmented = segment_customers(base[[c for c in reads if c in base.columns]], config)
    for column in segmented.columns:
        if column not in base.columns and column not in ("time_since_last", "interpurchase_time"):
            base[column] = segmented[column]
    return base


def _reasons(base, head_log, head_customers, as_of, models, rules, history_start) -> pd.DataFrame:
    """reason_1..3 of the churn model for the head of the retention list (the only rows a person reads), from
    the log rows and attributes kept of its candidates (score_chunks)."""
    if models.churn is None or "retention_rank" not in base.columns or rules.reasons_top == 0:
        return base
    rank = base["retention_rank"]
    head = base.index[(rank <= rules.reasons_top).fillna(False).to_numpy(dtype=bool)]
    for j in range(1, N_REASONS + 1):
        base[f"reason_{j}"] = pd.array([pd.NA] * len(base), dtype="string")
    if not len(head):
        return base
    log = head_log.loc[head_log["customer_id"].isin(head)]  # rows before as_of only (chunks)
    people = None if head_customers is None else head_customers.loc[head_customers["customer_id"].isin(head)]
    X = _features({}, log, people, as_of, history_start, rules.recipes["churn"])
    names = check_inputs("churn", models.churn, X)
    explained = models.churn.score(X[names], reasons=N_REASONS)
    for j in range(1, N_REASONS + 1):
        values = explained[f"reason_{j}"].astype("string")
        base.loc[values.index, f"reason_{j}"] = values
    return base


OUTPUT_ORDER = ("customer_id", "as_of", "frequency", "recency", "T", "monetary_value", "purchases", "revenue",
                "recency_days", *CLV_COLUMNS, "churn_probability", "reason_1", "reason_2", "reason_3",
                "value_at_risk", "lapsed", "retention_uplift", "retention_priority", "retention_rank",
                "winback_uplift", "winback_value", "winback_priority", "winback_rank")
SEGMENT_ORDER = ("rfm_cell", "rfm_score", "r_score", "f_score", "m_score", "tier", "value_loyalty", "cycle_class",
                 "lifecycle_stage", "loss_value")


def ordered(scores: pd.DataFrame) -> pd.DataFrame:
    """The scoring output's columns in their documented order: ids and RFM, CLV, churn, the retention and
    win-back lists, the propensities and the cross-sell list, the segments."""
    head = [c for c in OUTPUT_ORDER if c in scores.columns]
    propensity = [c for c in scores.columns if c.startswith("p_") and c != "p_alive"]
    cross = [c for c in ("cross_sell_category", "cross_sell_score", "cross_sell_rank") if c in scores.columns]
    segments = [c for c in SEGMENT_ORDER if c in scores.columns]
    rest = [c for c in scores.columns if c not in {*head, *propensity, *cross, *segments}]
    return scores[head + propensity + cross + segments + rest]


def summarise(scores: pd.DataFrame) -> dict[str, float]:
    """The run's counts and money: customers, lapsed, value at risk, each list's length and expected profit."""
    summary = {"n_customers": float(len(scores)), "n_lapsed": float(scores["lapsed"].sum())}
    if "value_at_risk" in scores.columns:
        summary["value_at_risk"] = float(np.nansum(scores["value_at_risk"]))
    if "clv" in scores.columns:
        summary["total_clv"] = float(np.nansum(scores["clv"]))
    for name, priority in (("retention", "retention_priority"), ("winback", "winback_priority"),
                           ("cross_sell", "cross_sell_score")):
        if priority in scores.columns:
            listed = scores[f"{name}_rank"].notna().to_numpy(dtype=bool)
            summary[f"{name}_listed"] = float(listed.sum())
            if name != "cross_sell":
                summary[f"{name}_expected_profit"] = float(scores.loc[listed, priority].sum())
    return summary
