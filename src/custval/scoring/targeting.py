"""Campaign economics: break-even response rate and index, and the test-and-rollout mailing.

Mail every k-th customer after sorting by cell (`systematic_sample`), measure the response per cell, keep the
cells whose break-even index BEI = (R - BE) / BE x 100 is >= 0, with BE = cost per contact / net profit per
response (`break_even_rate`, `break_even_index`, `rollout_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, SchemaError
from custval.features.validation import check_positive, require_columns

__all__ = ["RolloutPlan", "break_even_index", "break_even_rate", "cost_per_response", "response_rate",
           "rollout_plan", "systematic_sample"]


def break_even_rate(cost_per_contact: float, net_profit_per_response: float) -> float:
    """BE = cost per contact / net profit per response: the response rate at which a mailing pays for itself."""
    cost = check_positive("cost_per_contact", cost_per_contact)
    return cost / check_positive("net_profit_per_response", net_profit_per_response)


def break_even_index(response_rate, break_even: float):
    """BEI = (R - BE) / BE x 100: percent above (>0) or below (<0) break-even. Scalar or array in, same out."""
    be = check_positive("break_even", break_even)
    rate = np.asarray(response_rate, dtype=float)
    if np.any(~np.isfinite(rate) | (rate < 0) | (rate > 1)):
        bad = float(rate[~np.isfinite(rate) | (rate < 0) | (rate > 1)].ravel()[0]) if rate.ndim else float(rate)
        raise ConfigError(f"response_rate: must be in [0, 1], got {bad!r}")
    bei = (rate - be) / be * 100.0
    return float(bei) if bei.ndim == 0 else bei


def response_rate(responses: int, contacted: int) -> float:
    """Observed response rate: 510 responses of 30,000 mailed -> 0.017."""
    contacted = check_positive("contacted", contacted)
    if not np.isfinite(responses) or not 0 <= responses <= contacted:
        raise ConfigError(f"responses: must be between 0 and contacted ({contacted:g}), got {responses!r}")
    return float(responses) / contacted


def cost_per_response(total_cost: float, responses: int) -> float:
    """Cost per acquired customer: a 5,100 budget for 510 responses -> 10."""
    return check_positive("total_cost", total_cost) / check_positive("responses", responses)


def systematic_sample(frame: pd.DataFrame, k: int, *, by: str = "rfm_cell", start: int = 0,
                      descending: bool = True) -> pd.DataFrame:
    """Every k-th customer (positions start, start+k, ...) after sorting by `by` then by customer id.

    Sorting by the cell first spreads the test sample over all cells in proportion to their size
    (implicit stratification); the id as secondary key makes the draw reproducible.
    """
    require_columns(frame, [by], "customers")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k: must be a positive integer (sample every k-th customer), got {k!r}")
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or not 0 <= start < k:
        raise ConfigError(f"start: must be an integer in [0, k) = [0, {k}), got {start!r}")
    if frame[by].isna().any():
        raise DataError("customers", by, "must not be missing", None)
    id_rank = pd.factorize(frame.index, sort=True)[0]
    primary = pd.factorize(frame[by], sort=True)[0]
    sequence = np.lexsort((id_rank, -primary if descending else primary))
    return frame.iloc[sequence[start::k]]


@dataclass(frozen=True)
class RolloutPlan:
    """Result of `rollout_plan`. `cells` has one row per cell; profits are in the currency of the inputs."""

    break_even_rate: float
    pooled_response_rate: float
    cells: pd.DataFrame
    contacts_rollout: int
    contacts_all: int
    expected_profit_rollout: float
    expected_profit_all: float

    @property
    def selected_cells(self) -> list[str]:
        return [str(c) for c in self.cells.index[self.cells["rollout"]]]


def rollout_plan(test: pd.DataFrame, population: pd.DataFrame, *, cost_per_contact: float,
                 net_profit_per_response: float, cell: str = "rfm_cell",
                 response: str = "responded") -> RolloutPlan:
    """Choose the cells to mail from a test mailing and compare with mailing everyone.

    Per cell: response rate R in the test, BEI = (R - BE) / BE x 100; cells with BEI >= 0 (i.e. R >= BE) are
    rolled out. Expected profit of mailing n customers of a cell = n (R x profit - cost). Cells of
    `population` (the customers still to mail) absent from the test are not rolled out; in the mail-everyone
    baseline they get the pooled test response rate.
    """
    be = break_even_rate(cost_per_contact, net_profit_per_response)
    require_columns(test, [cell, response], "test")
    require_columns(population, [cell], "population")
    resp = test[response]
    if not (pd.api.types.is_bool_dtype(resp.dtype) or pd.api.types.is_numeric_dtype(resp.dtype)):
        raise SchemaError("test", response, f"must be 0/1 or boolean, got dtype {resp.dtype}", resp.iloc[0])
    r = resp.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(r, (0.0, 1.0))
    if bad.any():
        raise DataError("test", response, "must be 0 or 1 (did the customer respond?)", float(r[bad][0]))
    for name, frame in (("test", test), ("population", population)):
        if frame[cell].isna().any():
            raise DataError(name, cell, "must not be missing", None)
    by_cell = pd.DataFrame({"cell": test[cell].astype("string").to_numpy(), "r": r}).groupby("cell")["r"]
    cells = pd.DataFrame({"tested": by_cell.size(), "responses": by_cell.sum().astype(np.int64)})
    customers = population[cell].astype("string").value_counts().rename("customers")
    cells = cells.join(customers, how="outer").sort_index(ascending=False)
    cells.index.name = cell
    cells["tested"] = cells["tested"].fillna(0).astype(np.int64)
    cells["responses"] = cells["responses"].fillna(0).astype(np.int64)
    cells["customers"] = cells["customers"].fillna(0).astype(np.int64)
    tested = cells["tested"].to_numpy()
    rate = np.divide(cells["responses"].to_numpy(dtype=float), tested, out=np.full(len(cells), np.nan),
                     where=tested > 0)
    pooled = float(r.mean())
    cells["response_rate"] = rate
    cells["break_even_index"] = (rate - be) / be * 100.0
    cells["rollout"] = (tested > 0) & (np.nan_to_num(rate, nan=-1.0) >= be)
    used = np.where(tested > 0, rate, pooled)
    n = cells["customers"].to_numpy(dtype=float)
    cells["expected_responses"] = n * used
    cells["expected_profit"] = n * (used * float(net_profit_per_response) - float(cost_per_contact))
    selected = cells["rollout"].to_numpy()
    return RolloutPlan(
        break_even_rate=be, pooled_response_rate=pooled, cells=cells,
        contacts_rollout=int(n[selected].sum()), contacts_all=int(n.sum()),
        expected_profit_rollout=float(cells["expected_profit"].to_numpy()[selected].sum()),
        expected_profit_all=float(cells["expected_profit"].sum()),
    )


def rollout_from_responses(customers: pd.DataFrame, responses: pd.DataFrame, *, cost_per_contact: float,
                           net_profit_per_response: float, cell: str = "rfm_cell", response: str = "responded"
                           ) -> tuple[RolloutPlan, pd.Series]:
    """The rollout plan of a test mailing (`responses`: customer_id and a 0/1 `response` column, customers of
    `customers`, indexed by customer_id) and the per-customer `rollout` flag: in a selected cell and not tested."""
    for column in ("customer_id", response):
        if column not in responses.columns:
            raise SchemaError("responses", column, f"required column is missing (columns: {list(responses.columns)})")
    if cell not in customers.columns:
        raise ConfigError(f"rollout.cell must be a segment column such as rfm_cell or rfm_score, got {cell!r}")
    ids = responses["customer_id"]
    if pd.api.types.is_string_dtype(customers.index.dtype):
        ids = ids.astype(str)
    ids = pd.Index(ids)
    if ids.has_duplicates:
        raise DataError("responses", "customer_id", "must be unique (one response per tested customer)",
                        ids[ids.duplicated()][0])
    unknown = ~ids.isin(customers.index)
    if unknown.any():
        raise DataError("responses", "customer_id", "must be customers of the segmented population", ids[unknown][0])
    test = customers.loc[ids].assign(**{response: responses[response].to_numpy()})
    plan = rollout_plan(test, customers.drop(index=ids), cost_per_contact=cost_per_contact,
                        net_profit_per_response=net_profit_per_response, cell=cell, response=response)
    selected = customers[cell].astype("string").isin(plan.selected_cells).to_numpy()
    return plan, pd.Series(selected & ~customers.index.isin(ids), index=customers.index, name="rollout")
