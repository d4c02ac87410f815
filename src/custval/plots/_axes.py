"""Lazy matplotlib access shared by the plotting modules."""

from __future__ import annotations

from collections.abc import Mapping

from custval.errors import ConfigError


def get_ax(ax=None, figsize=(6.4, 4.4)):
    """Return `ax`, or a new Axes on a new pyplot figure. The backend is the user's (matplotlib picks a
    non-interactive one when there is no display); a library does not change it."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def by_name(scores) -> dict[str, object]:
    """name -> scores, for plots that draw one line per model: a mapping as given, one unnamed array called
    after its Series name, else "model"."""
    if isinstance(scores, Mapping):
        if not scores:
            raise ConfigError("scores: give at least one model (an array or a non-empty dict name -> array)")
        return {str(k): v for k, v in scores.items()}
    return {str(getattr(scores, "name", None) or "model"): scores}


def percent_axes(ax, x: bool = True, y: bool = True) -> None:
    """Tick labels as percentages (values are fractions) on the chosen axes."""
    from matplotlib.ticker import PercentFormatter

    if x:
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    if y:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
