"""Scoring a population with fitted models: probabilities, with each customer's top reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
