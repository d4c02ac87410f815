"""Plotting functions: plot_*(..., ax=None) -> Axes. matplotlib is imported lazily inside each function."""
