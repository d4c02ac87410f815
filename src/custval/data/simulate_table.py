"""A telecom-like churn export (IBM Telco style): a plain customer table with a label and no transactions,
shaped like the real exports (Yes/No labels, blank numbers as text), with each row's exact churn probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.data.simulate_checks import check_count, check_seed, check_unit

__all__ = ["CONTRACTS", "INTERNET", "PAYMENT_METHODS", "simulate_churn_table"]

CONTRACTS = ("Month-to-month", "One year", "Two year")
PAYMENT_METHODS = ("Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)")
INTERNET = ("DSL", "Fiber optic", "No")
_TELCO_STREAMS = ("id", "gender", "senior", "partner", "dependents", "contract", "tenure", "internet", "payment",
                  "paperless", "charges", "missing", "churn")


def simulate_churn_table(n_customers: int = 5_000, *, seed: int = 0,
                         monthly_missing: float = 0.03) -> tuple[pd.DataFrame, pd.Series]:
    """A telecom-like churn export (IBM Telco style) with no transactions, and its truth.

    Columns: customerID ("7590-VHVEG"-like strings, unique), gender, SeniorCitizen (int64 0/1), Partner,
    Dependents (Yes/No), tenure (int64 months, 0 = new), InternetService, Contract, PaperlessBilling,
    PaymentMethod, MonthlyCharges (float64, `monthly_missing` share NaN), TotalCharges (TEXT: "1889.5"-like,
    " " for tenure 0), Churn ("Yes"/"No") ~ Bernoulli(p_i). Text columns are pandas `string`.
    p_i = logistic(f(observed row)), with a missing MonthlyCharges having its own effect, so p_i is the exact
    Bayes probability given the row. Returns (table, truth): truth is p_i indexed by customerID (name
    "churn_probability").
    """
    n = check_count("n_customers", n_customers)
    seed = check_seed(seed)
    monthly_missing = check_unit("monthly_missing", monthly_missing, low_open=False, high_closed=False)
    rngs = dict(zip(_TELCO_STREAMS,
                    (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0x7E1C0]).spawn(
                        len(_TELCO_STREAMS))), strict=True))
    code = rngs["id"].choice(10_000 * 26**5, size=n, replace=False)
    digits, letters = code // 26**5, code % 26**5
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), dtype=object)
    letter_cols = [alphabet[(letters // 26**p) % 26] for p in range(4, -1, -1)]
    ids = [f"{dg:04d}-{''.join(chars)}" for dg, *chars in zip(digits.tolist(), *letter_cols, strict=True)]

    gender = rngs["gender"].random(n) < 0.5
    senior = (rngs["senior"].random(n) < 0.16).astype(np.int64)
    partner = rngs["partner"].random(n) < 0.48
    dependents = rngs["dependents"].random(n) < np.where(partner, 0.5, 0.1)
    contract = rngs["contract"].choice(3, n, p=(0.55, 0.21, 0.24))
    # tenure: new customers (0) exist; longer contracts go with longer tenure
    scale = np.array([14.0, 35.0, 55.0])[contract]
    tenure = np.minimum(1 + np.floor(rngs["tenure"].exponential(scale)), 72).astype(np.int64)
    tenure[rngs["tenure"].random(n) < 0.012] = 0
    internet = rngs["internet"].choice(3, n, p=(0.34, 0.44, 0.22))
    payment = rngs["payment"].choice(4, n, p=(0.34, 0.23, 0.22, 0.21))
    paperless = rngs["paperless"].random(n) < 0.59
    base_charge = np.array([55.0, 85.0, 22.0])[internet]
    monthly = np.round(np.maximum(base_charge + rngs["charges"].normal(0.0, 12.0, n), 18.25), 2)
    total = np.round(monthly * tenure * rngs["charges"].uniform(0.95, 1.05, n), 2)
    monthly_obs = monthly.copy()
    monthly_obs[rngs["missing"].random(n) < monthly_missing] = np.nan

    mc_missing = np.isnan(monthly_obs)
    logit = (-1.3 + np.array([1.6, 0.3, -0.8])[contract] - 1.8 * np.log1p(tenure) / np.log(73)
             + np.array([0.0, 0.65, -0.6])[internet] + np.array([0.45, 0.0, -0.2, -0.2])[payment]
             + 0.35 * senior - 0.2 * partner - 0.15 * dependents + 0.25 * paperless
             + np.where(mc_missing, 0.3, 0.012 * (np.nan_to_num(monthly_obs) - 65.0)))
    p = 1.0 / (1.0 + np.exp(-logit))
    churn = rngs["churn"].random(n) < p

    yes_no = np.array(["No", "Yes"], dtype=object)
    total_text = np.array([" " if t == 0 else f"{v:g}" for t, v in zip(tenure.tolist(), total.tolist(),
                                                                        strict=True)], dtype=object)
    table = pd.DataFrame({
        "customerID": pd.array(ids, dtype="string"),
        "gender": pd.array(np.where(gender, "Female", "Male").astype(object), dtype="string"),
        "SeniorCitizen": senior,
        "Partner": pd.array(yes_no[partner.astype(int)], dtype="string"),
        "Dependents": pd.array(yes_no[dependents.astype(int)], dtype="string"),
        "tenure": tenure,
        "InternetService": pd.array(np.asarray(INTERNET, dtype=object)[internet], dtype="string"),
        "Contract": pd.array(np.asarray(CONTRACTS, dtype=object)[contract], dtype="string"),
        "PaperlessBilling": pd.array(yes_no[paperless.astype(int)], dtype="string"),
        "PaymentMethod": pd.array(np.asarray(PAYMENT_METHODS, dtype=object)[payment], dtype="string"),
        "MonthlyCharges": monthly_obs,
        "TotalCharges": pd.array(total_text, dtype="string"),
        "Churn": pd.array(yes_no[churn.astype(int)], dtype="string"),
    })
    truth = pd.Series(p, index=pd.Index(table["customerID"], name="customerID"), name="churn_probability")
    return table, truth

