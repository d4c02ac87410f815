"""The one-page HTML report of a scoring run: the run (as_of, run id, model names and versions, counts), the
head of each ranked list, the segment pyramid, value at risk by decile, the profit curves and the lists'
composition by segment.

The page is self-contained: inline CSS, images as base64 PNG data URIs, no script, and a Content-Security-Policy
that lets the browser load nothing else. Every value is HTML-escaped (customer ids and segment names are user
data). Figures are rendered on matplotlib's Agg canvas through `Figure` objects, never through pyplot, so the
caller's backend and open figures are untouched. A list or a plot whose columns are absent (its model was not
configured) is replaced by a one-line note naming what is missing.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from custval.errors import ConfigError, SchemaError
from custval.plots.scoring import (
    plot_list_composition,
    plot_list_profit_curve,
    plot_segment_pyramid,
    plot_value_at_risk_by_decile,
)

__all__ = ["RANKED_LISTS", "scoring_report_html"]

# list name -> (rank column, the columns shown)
RANKED_LISTS = {
    "retention": ("retention_rank", ("customer_id", "churn_probability", "clv", "value_at_risk", "retention_uplift",
                                     "retention_priority", "reason_1", "reason_2", "reason_3")),
    "win-back": ("winback_rank", ("customer_id", "recency_days", "winback_uplift", "winback_value",
                                  "winback_priority")),
    "cross-sell": ("cross_sell_rank", ("customer_id", "cross_sell_category", "cross_sell_score")),
}
PRIORITIES = {"retention": "retention_priority", "win-back": "winback_priority", "cross-sell": "cross_sell_score"}
COMPOSITION_SEGMENTS = ("tier", "lifecycle_stage")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; }
table { border-collapse: collapse; font-size: 0.82em; margin-bottom: 0.6em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.note { color: #666; font-style: italic; margin: 0.3em 0; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } .figures img { max-width: 100%; height: auto; }
"""


def _text(value: object) -> str:
    if isinstance(value, Mapping | list | tuple):
        value = json.dumps(value, default=str)
    return html.escape(str(value))


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _table(frame: pd.DataFrame, *, index: bool = False) -> str:
    """The frame as an escaped HTML table: amounts by `_number`, missing values (NaN, <NA>, None) blank."""
    text = frame.select_dtypes(exclude="number").columns
    frame = frame.astype({c: object for c in text})
    frame[text] = frame[text].where(frame[text].notna(), "")
    return frame.to_html(escape=True, index=index, na_rep="", float_format=_number, border=0)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _png(draw: Callable, *, figsize=(7.0, 4.2), axes: int = 1) -> str:
    """The figure drawn by draw(ax) (or draw(axes) for several) as an <img> with a base64 PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    subplots = figure.subplots(1, axes, squeeze=False)[0]
    draw(subplots[0] if axes == 1 else list(subplots))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    title = subplots[0].get_title() or "plot"
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def _figure(scores: pd.DataFrame, what: str, draw: Callable, **kwargs) -> str:
    """`_png`, or a one-line note when the frame lacks a column the plot needs (or its values cannot be drawn:
    e.g. no customer ranked), naming the column."""
    try:
        return _png(draw, **kwargs)
    except SchemaError as exc:
        if exc.column not in scores.columns:
            return _note(f"{what} skipped: column {exc.column} absent from the scores")
        return _note(f"{what} skipped: {exc}")


def _missing(scores: pd.DataFrame, columns) -> list[str]:
    return [c for c in columns if c not in scores.columns]


def _head(scores: pd.DataFrame, rank: str, columns, top: int) -> pd.DataFrame:
    """The first `top` rows of a ranked list, by rank (1 first), with its rank as the first column."""
    ranks = pd.to_numeric(scores[rank], errors="coerce")
    chosen = scores.loc[ranks.notna() & (ranks <= top), [rank, *columns]]
    return chosen.sort_values(rank, kind="mergesort").head(top)


def _counts(scores: pd.DataFrame) -> pd.DataFrame:
    """What the run produced: customers, customers scored for churn, lapsed, value at risk, and per list its
    customers ranked and their total priority (expected profit; cross-sell: total score)."""
    rows = [("customers", len(scores))]  # (what, an int or a float amount)
    if "churn_probability" in scores.columns:
        rows.append(("customers with a churn probability", int(scores["churn_probability"].notna().sum())))
    if "lapsed" in scores.columns:
        rows.append(("lapsed customers", int(scores["lapsed"].fillna(False).astype(bool).sum())))
    if "value_at_risk" in scores.columns:
        rows.append(("total value at risk", float(np.nansum(scores["value_at_risk"].to_numpy(dtype=float)))))
    for name, (rank, _) in RANKED_LISTS.items():
        if rank not in scores.columns:
            continue
        ranked = scores[rank].notna().to_numpy()
        rows.append((f"{name} list: customers ranked", int(ranked.sum())))
        priority = PRIORITIES[name]
        if priority in scores.columns:
            total = float(np.nansum(scores.loc[ranked, priority].to_numpy(dtype=float)))
            label = "total score" if name == "cross-sell" else "expected profit"
            rows.append((f"{name} list: {label}", total))
    return pd.DataFrame([(what, _number(v) if isinstance(v, float) else f"{v:,}") for what, v in rows],
                        columns=["", "value"])


def _models(metadata: Mapping) -> str:
    models = metadata.get("custval.models")
    if not isinstance(models, Mapping) or not models:
        return _note("no model recorded in the metadata (custval.models)")
    rows = [{"role": role, **({k: spec.get(k) for k in ("name", "version", "uri", "run_id")}
                              if isinstance(spec, Mapping) else {"name": spec})}
            for role, spec in models.items()]
    return _table(pd.DataFrame(rows).astype(object))


def _lists(scores: pd.DataFrame, top: int) -> list[str]:
    parts = []
    for name, (rank, columns) in RANKED_LISTS.items():
        parts.append(f"<h2>{html.escape(name)} list (top {top})</h2>")
        missing = _missing(scores, [rank, *columns])
        if missing:
            parts.append(_note(f"{name} list skipped: column(s) {', '.join(missing)} absent from the scores"))
            continue
        head = _head(scores, rank, columns, top)
        parts.append(_table(head) if len(head) else _note(f"{name} list is empty: no customer ranked"))
    return parts


def _plots(scores: pd.DataFrame, composition_top: int) -> list[str]:
    figures = [_figure(scores, "segment pyramid", lambda ax: plot_segment_pyramid(scores, ax=ax)),
               _figure(scores, "value at risk by decile", lambda ax: plot_value_at_risk_by_decile(scores, ax=ax))]
    for name in ("retention", "win-back"):
        figures.append(_figure(scores, f"{name} profit curve",
                               lambda ax, p=PRIORITIES[name]: plot_list_profit_curve(scores, priority=p, ax=ax)))
    segments = [s for s in COMPOSITION_SEGMENTS if s in scores.columns]
    for name, (rank, _) in RANKED_LISTS.items():
        what = f"{name} list composition"
        if not segments:
            figures.append(_note(f"{what} skipped: columns {' and '.join(COMPOSITION_SEGMENTS)} absent from the "
                                 "scores"))
            continue

        def draw(axes, rank=rank):
            for ax, segment in zip(axes if isinstance(axes, list) else [axes], segments, strict=True):
                plot_list_composition(scores, rank=rank, segment=segment, top=composition_top, ax=ax)

        figures.append(_figure(scores, what, draw, axes=len(segments), figsize=(4.6 * len(segments), 4.2)))
    return ['<div class="figures">', *figures, "</div>"]


def scoring_report_html(scores: pd.DataFrame, *, metadata: Mapping, top: int = 10, composition_top: int = 100,
                        title: str = "custval scoring report") -> str:
    """The one-page, self-contained HTML report of a scoring run.

    `scores` is the scoring output frame (one row per customer), `metadata` the scoring metadata (custval.as_of,
    custval.run_id, custval.models {role: {name, version, uri, run_id}}, and any other entries, shown as given).
    `top` rows of each ranked list are shown; the lists' composition by segment compares their first
    `composition_top` customers with the whole base.
    """
    if not isinstance(scores, pd.DataFrame):
        raise SchemaError("scores", "*", f"must be a pandas DataFrame, got {type(scores).__name__}")
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ConfigError(f"top: must be a positive integer (rows shown of each list), got {top!r}")
    metadata = metadata or {}
    run = [("as_of", metadata.get("custval.as_of", "not recorded")),
           ("run id", metadata.get("custval.run_id", "not recorded"))]
    run += [(key.removeprefix("custval."), value) for key, value in metadata.items()
            if key not in ("custval.as_of", "custval.run_id", "custval.models")]
    header = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in run)
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<table class="run">{header}</table>',
            "<h2>models</h2>", _models(metadata),
            "<h2>counts</h2>", _table(_counts(scores)),
            *_lists(scores, int(top)),
            "<h2>segments, value at risk, profit and list composition</h2>", *_plots(scores, int(composition_top))]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
