"""Lazy matplotlib access shared by the plotting modules."""

from __future__ import annotations


def get_ax(ax=None, figsize=(6.4, 4.4)):
    """Return `ax`, or a new Axes on a new pyplot figure. The backend is the user's (matplotlib picks a
    non-interactive one when there is no display); a library does not change it."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax
