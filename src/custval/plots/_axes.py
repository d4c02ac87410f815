"""Lazy matplotlib access shared by the plotting modules."""

from __future__ import annotations


def get_ax(ax=None, figsize=(6.4, 4.4)):
    """Return `ax`, or a new Axes on a new figure (Agg backend when no display is configured)."""
    if ax is not None:
        return ax
    import matplotlib

    if matplotlib.get_backend().lower() not in {"agg", "module://matplotlib_inline.backend_inline"}:
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover - a backend already in use elsewhere
            pass
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax
