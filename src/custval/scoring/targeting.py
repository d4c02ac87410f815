"""Campaign economics: break-even response rate and index, the test-and-rollout mailing, and the choice of
whom to contact with which offer from uplift estimates.

Test and rollout: mail every k-th customer after sorting by cell (`systematic_sample`), measure the response
per cell, keep the cells whose break-even index BEI = (R - BE) / BE x 100 is >= 0, with BE = cost per contact /
net profit per response (`break_even_rate`, `break_even_index`, `rollout_plan`).

Uplift targeting: the expected incremental profit of contacting customer i with arm a is
uplift[i, a] x value[i] - cost[a] (`incremental_profit`); `select_targets` gives every customer at most one
arm and maximises the total under a budget of contacts (exact: each customer's best arm, then the best
customers) or of money (a multiple-choice knapsack: the Lagrangian relaxation, each customer's arm maximising
profit - lambda x cost with lambda found by bisection, then the budget left filled greedily).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, SchemaError
from custval.features.validation import check_positive, require_columns
from custval.metrics.ranking import profit_curve

__all__ = ["RolloutPlan", "TargetPlan", "break_even_index", "break_even_rate", "cost_per_response",
           "incremental_profit", "response_rate", "rollout_plan", "select_targets",
           "systematic_sample"]


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


# --------------------------------------------------------------------------------------- uplift targeting
def _arm_costs(cost, arms: list[str]) -> np.ndarray:
    """Cost per contact of each arm: one number for all, or a mapping arm -> number (every arm named)."""
    if isinstance(cost, dict):
        missing = [a for a in arms if a not in cost]
        if missing:
            raise ConfigError(f"cost: needs a cost per contact for every arm {arms}, missing {missing[0]!r}")
        values = [cost[a] for a in arms]
    else:
        values = [cost] * len(arms)
    for arm, value in zip(arms, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) \
                or value < 0:
            raise ConfigError(f"cost: the cost per contact of arm {arm!r} must be a finite number >= 0, got {value!r}")
    return np.asarray(values, dtype=float)


def _uplift_frame(uplift, arms: list[str] | None) -> pd.DataFrame:
    """Uplift as a frame with one column per treatment arm (a 1-d array: one arm, named `arms[0]` or "treatment")."""
    if isinstance(uplift, pd.DataFrame):
        frame = uplift.reset_index(drop=True)
        if arms is not None and list(map(str, frame.columns)) != list(arms):
            raise ConfigError(f"arms: {list(arms)} must name the uplift columns {list(frame.columns)}")
    else:
        values = np.asarray(uplift, dtype=float)
        values = values[:, None] if values.ndim == 1 else values
        if values.ndim != 2:
            raise DataError("uplift", "*", f"must be one column per arm, got shape {values.shape}")
        names = list(arms) if arms is not None else (["treatment"] if values.shape[1] == 1 else
                                                       [f"arm_{k}" for k in range(values.shape[1])])
        if len(names) != values.shape[1]:
            raise ConfigError(f"arms: {len(names)} names for {values.shape[1]} uplift columns")
        frame = pd.DataFrame(values, columns=names)
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError("uplift", "*", "is empty: there are no customers to target")
    numbers = frame.to_numpy(dtype=float)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError("uplift", frame.columns[col], "must be finite", f"row {row}: {numbers[row, col]}")
    return frame


def incremental_profit(uplift, value, cost, *, arms: list[str] | None = None) -> pd.DataFrame:
    """Expected incremental profit per customer and arm: uplift x value - cost.

    uplift: (n,) or (n, k) per-arm uplift of the response probability (or a frame with one column per arm);
    value: the net profit of one response, one number or one per customer (e.g. the margin, or for win-back
    the customer's second lifetime value); cost: cost per contact, one number or {arm: number}.
    Returns a frame with the same arm columns."""
    frame = _uplift_frame(uplift, arms)
    arm_names = list(frame.columns)
    worth = np.asarray(value, dtype=float)
    if worth.ndim == 0:
        worth = np.full(len(frame), float(worth))
    if worth.shape != (len(frame),):
        raise DataError("value", "*", f"must be one number or one per customer ({len(frame)}), got shape "
                        f"{worth.shape}")
    if not np.isfinite(worth).all():
        row = int(np.flatnonzero(~np.isfinite(worth))[0])
        raise DataError("value", "*", "must be finite", f"row {row}: {worth[row]}")
    costs = _arm_costs(cost, arm_names)
    return pd.DataFrame(frame.to_numpy(dtype=float) * worth[:, None] - costs[None, :], columns=arm_names)


@dataclass(frozen=True)
class TargetPlan:
    """Result of `select_targets`. `customers`: one row per customer, highest expected profit first (ties by
    customer id): customer_id, arm (<NA> = not contacted), expected_profit, cost, rank (1.. among the
    contacted); `curve`: expected profit against the share contacted when the best customers are taken first."""

    customers: pd.DataFrame
    total_profit: float
    contacts: int
    spend: float
    arm_mix: pd.Series  # contacts per arm
    break_even: pd.Series  # per arm: cost per contact / mean value of a response among the contacted
    curve: pd.DataFrame
    lagrange_multiplier: float  # money budget: the price of a unit of budget (0: the budget does not bind)

    @property
    def targets(self) -> pd.DataFrame:
        return self.customers[self.customers["arm"].notna()].reset_index(drop=True)


def _best_arm(profit: np.ndarray, costs: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Per customer the arm maximising profit - lam x cost (first arm on ties) and whether it is worth taking
    (its profit - lam x cost > 0)."""
    adjusted = profit - lam * costs[None, :]
    best = np.argmax(adjusted, axis=1)
    take = adjusted[np.arange(len(best)), best] > 0
    return best, take


def select_targets(profit: pd.DataFrame, customer_ids, *, cost=0.0, max_contacts: int | None = None,
                   budget: float | None = None, value=None, shares: int = 20) -> TargetPlan:
    """At most one arm per customer, maximising the total expected incremental profit (module docstring).

    profit: `incremental_profit(...)` (one column per arm); customer_ids: one per row (ties broken by them);
    cost: the same cost per contact as in `profit` (for the spend and the money budget); max_contacts: at most
    this many contacts; budget: at most this much spent on contacts; value: the value of a response per customer
    (for the break-even rates; None: not reported). Customers whose best expected profit is not positive are
    never contacted."""
    if not isinstance(profit, pd.DataFrame) or profit.shape[1] == 0:
        raise DataError("profit", "*", "must be a frame with one column per arm (incremental_profit)")
    arms = [str(c) for c in profit.columns]
    p = profit.to_numpy(dtype=float)
    if not np.isfinite(p).all():
        row, col = np.argwhere(~np.isfinite(p))[0]
        raise DataError("profit", arms[col], "must be finite", f"row {row}: {p[row, col]}")
    ids = pd.Index(customer_ids)
    if len(ids) != len(p):
        raise DataError("customer_ids", "*", f"must be one per row of profit ({len(p)}), got {len(ids)}")
    if ids.has_duplicates:
        raise DataError("customer_ids", "customer_id", "must be unique", ids[ids.duplicated()][0])
    if max_contacts is not None and (isinstance(max_contacts, bool) or not isinstance(max_contacts, int | np.integer)
                                     or max_contacts < 0):
        raise ConfigError(f"max_contacts: must be an integer >= 0 (null: no limit), got {max_contacts!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float | np.number)
                               or not np.isfinite(budget) or budget < 0):
        raise ConfigError(f"budget: must be a finite number >= 0 (null: no limit), got {budget!r}")
    costs = _arm_costs(cost, arms)
    id_order = pd.factorize(ids, sort=True)[0]

    lam = 0.0
    best, take = _best_arm(p, costs, 0.0)
    if budget is not None and costs[best[take]].sum() > budget:
        if not (costs > 0).any():
            raise ConfigError("budget: needs a positive cost per contact (cost) to limit the spend")
        low, high = 0.0, float(np.max(p) / np.min(costs[costs > 0])) + 1.0
        for _ in range(100):  # the spend of the Lagrangian choice falls as lambda grows
            mid = 0.5 * (low + high)
            b, t = _best_arm(p, costs, mid)
            low, high = (mid, high) if costs[b[t]].sum() > budget else (low, mid)
        lam = high
        best, take = _best_arm(p, costs, lam)
    chosen_profit = np.where(take, p[np.arange(len(p)), best], -np.inf)
    order = np.lexsort((id_order, -chosen_profit))
    keep = np.zeros(len(p), dtype=bool)
    spent, contacts = 0.0, 0
    limit = np.inf if max_contacts is None else max_contacts
    for i in order:  # best first, within the contact and money limits
        if not take[i] or contacts >= limit:
            break
        c = costs[best[i]]
        if budget is not None and spent + c > budget + 1e-9 * max(1.0, budget):
            continue
        keep[i], spent, contacts = True, spent + c, contacts + 1
    if budget is not None and contacts < limit:  # fill the budget left with the best affordable arm
        rest = ~keep
        gains = np.where((p > 0) & rest[:, None], p, -np.inf)
        for i in np.lexsort((id_order, -gains.max(axis=1))):
            if not np.isfinite(gains[i].max()) or contacts >= limit:
                break
            affordable = np.flatnonzero(np.isfinite(gains[i]) & (spent + costs <= budget + 1e-9 * max(1.0, budget)))
            if len(affordable):
                a = affordable[np.argmax(gains[i, affordable])]
                best[i], keep[i], spent, contacts = a, True, spent + costs[a], contacts + 1

    gain = np.where(keep, p[np.arange(len(p)), best], 0.0)
    arm = pd.array(np.where(keep, np.asarray(arms, dtype=object)[best], None), dtype="string")
    customers = pd.DataFrame({"customer_id": ids, "arm": arm, "expected_profit": gain,
                              "cost": np.where(keep, costs[best], 0.0)})
    ranking = np.lexsort((id_order, -np.where(keep, gain, -np.inf)))
    customers = customers.iloc[ranking].reset_index(drop=True)
    customers["rank"] = pd.array(np.where(customers["arm"].notna(), np.arange(1, len(customers) + 1), None),
                                 dtype="Int64")
    mix = customers["arm"].value_counts().reindex(arms, fill_value=0).astype(np.int64)
    mix.index.name = "arm"
    if value is None:
        break_even = pd.Series(np.nan, index=pd.Index(arms, name="arm"), name="break_even_rate")
    else:
        worth = np.broadcast_to(np.asarray(value, dtype=float), (len(p),))
        rates = []
        for k in range(len(arms)):
            mask = keep & (best == k)
            mean_value = float(np.mean(worth[mask])) if mask.any() else float(np.mean(worth))
            rates.append(costs[k] / mean_value if mean_value > 0 else np.nan)
        break_even = pd.Series(rates, index=pd.Index(arms, name="arm"), name="break_even_rate")
    return TargetPlan(customers=customers, total_profit=float(gain.sum()), contacts=int(keep.sum()),
                      spend=float(customers["cost"].sum()), arm_mix=mix, break_even=break_even,
                      curve=profit_curve(p.max(axis=1), shares=shares), lagrange_multiplier=float(lam))
