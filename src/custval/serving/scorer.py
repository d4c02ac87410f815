"""The composite scorer `custval-scorer`: a customer's transactions in, the batch job's per-customer scores out.

One MLflow pyfunc built from registered component models (CLV, churn, propensity, retention and win-back
uplift; any may be absent). It is logged *from code* (`scorer_model_code.py`) like the other custval pyfuncs;
its artifacts are copies of the components' own artifacts, as data (the CLV JSON, the classifier directories,
the uplift directories with value_model.json), one directory per role, plus `scorer.json`: the components
(name, version, URI, run), the resolved `ScoringRules` of `custval score` and the default history start.
`load_scorer_model` reads it as data, without running the logged Python file.

Input rows: transactions (customer_id, timestamp, amount, optional category) of one or many customers; any
other column is a customer attribute (the customer table the models were trained with), constant per
customer; a date attribute may come as ISO 8601 text. Params: `as_of` (date; default today; features use
rows before it, so `as_of` = tomorrow counts today's purchases; later is in the future), `history_start`
(the first day the calling system's log is complete from; windows reaching before it are missing, as in the
batch job, whose history start is the first day of the log it scores; default: that day of the base the
scorer was registered with), `reasons` (the churn model's reason_1..3 for every customer it scores; the
batch job gives them to the head of the retention list only) and `unknown_categories` ("error": a category
no component model knows is a 400; "ignore": scored as the batch job does, counted in the totals and in no
category's columns).

Output: one row per customer, sorted by customer_id, with every column of the batch output that depends on
that customer only: as_of, the RFM summary, CLV, churn_probability (+ reasons), value_at_risk, lapsed, the
retention and win-back uplift, value and priority, the propensities and the best cross-sell category and
score. Left out, because they are relative to the whole base: the ranks (retention_rank, winback_rank,
cross_sell_rank: a customer's place among everyone scored; the priority columns give the order, a rank needs
the base's priorities) and the segments (rfm_cell, r/f/m scores, tier, value_loyalty, cycle_class,
lifecycle_stage, loss_value: quantiles over the base; they could be added by storing the base's cut points in
the spec at registration). Malformed input -> MlflowException INVALID_PARAMETER_VALUE (HTTP 400) naming the
field.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ParamSchema, ParamSpec

from custval.config import SegmentConfig
from custval.data.schemas import MAPPABLE, parse_customer_ids, validate_transactions
from custval.errors import ConfigError, CustvalError, DataError, ModelError, SchemaError, shown
from custval.scoring.batch import (
    ROLES,
    ScoringModels,
    ScoringRules,
    add_priorities,
    chunks,
    ordered,
    score_chunk,
)
from custval.serving.server import GC_FREEZE
from custval.tracking.classifier_pyfunc import ClassifierPyfunc
from custval.tracking.model_inputs import bad_input, pip_requirements
from custval.tracking.models import ModelRef, model_artifacts
from custval.tracking.pyfunc import CLV_ARTIFACT
from custval.tracking.uplift_pyfunc import UpliftPyfunc
from custval.units import parse_date

SCORER_MODEL_CODE = Path(__file__).with_name("scorer_model_code.py")
SPEC_ARTIFACT = "scorer_spec"
SPEC_FILE = "scorer.json"
FORMAT = "custval-scorer"
FORMAT_VERSION = 1
INPUT = "input"
PARAMS = "params"
UNKNOWN_CATEGORIES = ("error", "ignore")
N_REASONS = 3
DAY = pd.Timedelta(days=1)
BASE_RELATIVE = ("retention_rank", "winback_rank", "cross_sell_rank", "rfm_cell", "rfm_score", "r_score",
                 "f_score", "m_score", "tier", "value_loyalty", "cycle_class", "lifecycle_stage", "loss_value")
KINDS = {"clv": "CLV", "churn": "classifier", "propensity": "classifier", "retention": "uplift",
         "winback": "uplift"}


# ------------------------------------------------------------------------------------------- the rules
def rules_to_dict(rules: ScoringRules) -> dict[str, Any]:
    """The rules as JSON values (the segment settings by their pydantic dump)."""
    values = {f.name: getattr(rules, f.name) for f in dataclasses.fields(rules)}
    values["segments"] = rules.segments.model_dump(mode="json")
    values["margins"] = dict(rules.margins)
    values["recipes"] = {role: dict(recipe) for role, recipe in rules.recipes.items()}
    return json.loads(json.dumps(values))


def rules_from_dict(values: dict[str, Any]) -> ScoringRules:
    """ScoringRules from `rules_to_dict`; ModelError for keys it does not know."""
    names = {f.name for f in dataclasses.fields(ScoringRules)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ModelError(f"{SPEC_FILE}: rules has unknown keys {unknown} (known: {sorted(names)})")
    return ScoringRules(**{**values, "segments": SegmentConfig(**values.get("segments", {}))})


# --------------------------------------------------------------------------------------- the pyfunc
class ScorerPyfunc(mlflow.pyfunc.PythonModel):
    """Transaction rows (+ attributes) -> one row of scores per customer (module docstring).

    Loaded: `spec` (scorer.json), `models` (ScoringModels of the components), `rules` (ScoringRules),
    `history_start` (the default history start) and `categories` (every category a component knows)."""

    def load_context(self, context) -> None:
        self.load_artifacts(context.artifacts)
        if os.environ.get(GC_FREEZE) == "1":  # a worker of `custval serve` (serving/server.py): long-lived
            gc.collect()
            gc.freeze()

    def load_artifacts(self, artifacts: dict[str, str]) -> ScorerPyfunc:
        """Read the spec and every component from its directory, as data; ModelError when they are not a
        custval scorer."""
        path = Path(artifacts.get(SPEC_ARTIFACT, ""))
        if not path.is_file():
            raise ModelError(f"no {SPEC_FILE} among the model's artifacts")
        spec = json.loads(path.read_text())
        if not isinstance(spec, dict) or spec.get("format") != FORMAT or spec.get("version") != FORMAT_VERSION:
            found = (spec.get("format"), spec.get("version")) if isinstance(spec, dict) else type(spec).__name__
            raise ModelError(f"{SPEC_FILE} is not a {FORMAT} v{FORMAT_VERSION} spec (found {found})")
        loaded = {role: self.load_component(role, artifacts.get(role, "")) for role in spec["components"]}
        self.spec = spec
        self.models = ScoringModels(**loaded)
        self.rules = rules_from_dict(spec["rules"])
        self.history_start = pd.Timestamp(spec["history_start"])
        self.categories = sorted({c for recipe in self.rules.recipes.values() for c in recipe["categories"] or ()})
        self.features = {f["name"] for m in self.models.present().values() for f in getattr(m, "features", ())}
        return self

    @staticmethod
    def load_component(role: str, directory: str | Path):
        """The component of `role` from its copied `artifacts/` directory, as data: CustomerValue (CLV),
        ClassifierPyfunc (churn, propensity) or UpliftPyfunc (retention, winback)."""
        from custval.models.clv.value import CustomerValue

        if role not in ROLES:
            raise ModelError(f"{SPEC_FILE}: unknown component role {role!r} (roles: {list(ROLES)})")
        directory = Path(directory)
        if role == "clv":
            return CustomerValue.from_dict(json.loads((directory / f"{CLV_ARTIFACT}.json").read_text()))
        if KINDS[role] == "classifier":
            return ClassifierPyfunc.from_directory(directory)
        return UpliftPyfunc.from_directory(directory)

    @classmethod
    def from_directory(cls, directory: str | Path) -> ScorerPyfunc:
        """The scorer from a downloaded `artifacts/` directory of a logged scorer: as data, without running
        the Python file MLflow stores beside it."""
        directory = Path(directory)
        spec = json.loads((directory / SPEC_FILE).read_text())
        paths = {SPEC_ARTIFACT: str(directory / SPEC_FILE)}
        paths.update({role: str(directory / role) for role in spec.get("components", {})})
        return cls().load_artifacts(paths)

    @property
    def components(self) -> dict[str, dict[str, str]]:
        """role -> name, version, uri, run_id of each component, as registered."""
        return self.spec["components"]

    def score(self, rows: pd.DataFrame, *, as_of=None, history_start=None, reasons: bool = True,
              unknown_categories: str = "error", today: pd.Timestamp | None = None) -> pd.DataFrame:
        """One row per customer of `rows` (module docstring); custval errors naming the field for input
        that cannot be scored. `today` (default: the machine's date) bounds `as_of`."""
        if unknown_categories not in UNKNOWN_CATEGORIES:
            raise DataError(PARAMS, "unknown_categories", f"must be one of {list(UNKNOWN_CATEGORIES)}",
                            unknown_categories)
        transactions, customers = self.split(rows, check_categories=unknown_categories == "error")
        today = pd.Timestamp.now().normalize() if today is None else pd.Timestamp(today).normalize()
        as_of = today if as_of in (None, "") else _date(as_of, "as_of")
        if as_of > today + DAY:
            raise DataError(PARAMS, "as_of", f"is in the future (today is {today.date()}; as_of "
                            f"{(today + DAY).date()} counts every purchase of today)", str(as_of.date()))
        start = self.history_start if history_start in (None, "") else _date(history_start, "history_start")
        if start >= as_of:
            raise DataError(PARAMS, "history_start", f"must be before as_of {as_of.date()}", str(start.date()))
        ids, stamps = transactions["customer_id"].to_numpy(), transactions["timestamp"].to_numpy()
        late = np.setdiff1d(ids, ids[stamps < as_of.to_datetime64()])  # sorted: the smallest id first
        if len(late):
            since = pd.Timestamp(stamps[ids == late[0]].min())
            raise DataError(PARAMS, "as_of", f"{as_of.date()} is on or before the first purchase of customer "
                            f"{shown(late[0])} ({since.date()}): no transaction before as_of to score it on",
                            str(as_of.date()))
        log, people = next(chunks(transactions, customers, as_of, len(ids)))  # one chunk: every customer
        out = add_priorities(score_chunk(log, people, as_of, self.models, self.rules, history_start=start,
                                         reasons=N_REASONS if reasons else 0), self.rules)
        out.insert(0, "as_of", as_of)
        return ordered(out.reset_index())

    def split(self, rows: pd.DataFrame, *, check_categories: bool = True
              ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """(transactions in the contract, customer attributes or None) of the input rows; custval errors
        naming the column for a missing column, a value of the wrong type, a customer with only returns (left
        with no purchase by the returns policy), an attribute that is not constant per customer or
        (`check_categories`) a category no component knows."""
        frame = pd.DataFrame(rows)
        if frame.empty:
            raise DataError(INPUT, "transactions", "is empty: send at least one transaction row (customer_id, "
                            "timestamp, amount) per customer to score")
        for column in ("customer_id", "timestamp", "amount"):
            if column not in frame.columns:
                raise SchemaError(INPUT, column, "required column missing",
                                  f"columns: {[str(c) for c in frame.columns]}")
        contract = [c for c in frame.columns if c in MAPPABLE]
        transactions = validate_transactions(frame[contract], returns=self.spec.get("returns", "exclude"),
                                             duplicates="keep", table=INPUT)
        if check_categories and self.categories and "category" in transactions.columns:
            known = transactions["category"].isna() | transactions["category"].isin(self.categories)
            if not bool(known.all()):
                raise DataError(INPUT, "category", f"is not a category the models know ({self.categories}); "
                                "params.unknown_categories=ignore scores it as the batch job does",
                                str(transactions.loc[~known, "category"].iloc[0]))
        attributes = [c for c in frame.columns if c not in MAPPABLE]
        if not attributes and len(transactions) == len(frame):
            return transactions, None
        ids = parse_customer_ids(frame["customer_id"], table=INPUT).to_numpy()  # the rows were validated above
        if len(transactions) < len(frame):  # rows dropped by the returns policy: is every customer still there?
            gone = np.setdiff1d(ids, transactions["customer_id"].to_numpy())  # sorted: the smallest id first
            if len(gone):
                raise DataError(INPUT, "amount", f"has only returns (negative amounts) for customer "
                                f"{shown(gone[0])}: a return is not a purchase; send at least one purchase "
                                "per customer", frame["amount"].to_numpy()[ids == gone[0]][0])
        if not attributes:
            return transactions, None
        customer, first = _first_rows(ids)
        for column in attributes:
            values = pd.factorize(frame[column], use_na_sentinel=False)[0]  # missing is one more value
            varying = values != values[first[customer]]
            if varying.any():
                example = ids[first[customer[varying].min()]]  # the first customer (in row order) it varies for
                raise DataError(INPUT, str(column), "is a customer attribute and must be the same on every row "
                                "of a customer", f"customer {shown(example)}")
        people = frame[attributes].iloc[first].assign(customer_id=ids[first]).reset_index(drop=True)
        for column in attributes:  # a date attribute became days_since_<column> in training
            if f"days_since_{column}" in self.features and column not in self.features:
                people[column] = _dates(people[column], str(column))
        return transactions, people[["customer_id", *attributes]]

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        params = dict(params or {})
        try:
            scores = self.score(model_input, as_of=params.get("as_of"), history_start=params.get("history_start"),
                                reasons=_flag(params.get("reasons", True), "reasons"),
                                unknown_categories=params.get("unknown_categories") or "error")
        except CustvalError as exc:
            raise bad_input(exc) from exc
        return jsonable(scores)


def jsonable(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores as a served answer: as_of as an ISO date, text columns as str / None, nullable integers as
    float (missing -> NaN)."""
    columns = {}
    for column in scores.columns:
        values = scores[column]
        if column == "as_of":
            values = values.dt.strftime("%Y-%m-%d")
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
            text = values.to_numpy(dtype=object, copy=True)
            text[values.isna().to_numpy()] = None
            values = pd.Series(text, index=scores.index, dtype=object, copy=False)
        elif pd.api.types.is_extension_array_dtype(dtype) and pd.api.types.is_integer_dtype(dtype):
            values = values.astype("float64")
        columns[column] = values
    return pd.DataFrame(columns, index=scores.index)


def _first_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each row's customer as 0..n-1 in order of first appearance, the first row of each customer)."""
    customer = pd.factorize(ids)[0]
    return customer, np.unique(customer, return_index=True)[1]


def _date(value, name: str) -> pd.Timestamp:
    try:
        return parse_date(value, name=name).normalize()
    except ConfigError:
        raise DataError(PARAMS, name, "must be a date in ISO 8601 form (YYYY-MM-DD)", value) from None


def _dates(values: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    bad = parsed.isna() & values.notna()
    if bool(bad.any()):
        raise DataError(INPUT, name, "must be a date in ISO 8601 form (YYYY-MM-DD)", values[bad].iloc[0])
    return parsed


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise DataError(PARAMS, name, "must be true or false", value)
    return bool(value)


# ------------------------------------------------------------------------------------ logging, loading
def scorer_signature() -> ModelSignature:
    """No input schema (the scorer checks its rows itself and names the field; MLflow's enforcement would
    drop the attribute columns it was not told of); params as_of, history_start, reasons, unknown_categories."""
    return ModelSignature(inputs=None, outputs=None, params=ParamSchema([
        ParamSpec("as_of", "string", None), ParamSpec("history_start", "string", None),
        ParamSpec("reasons", "boolean", True), ParamSpec("unknown_categories", "string", "error")]))


def log_scorer_model(components: dict[str, tuple[str | Path, ModelRef]], rules: ScoringRules, *,
                     history_start, returns: str = "exclude", input_example: pd.DataFrame | None = None,
                     name: str = "model"):
    """Log the composite scorer; returns MLflow's ModelInfo.

    `components`: role -> (the downloaded `artifacts/` directory of that component, its ModelRef), e.g.
    from `tracking.models.model_artifacts`; `rules`: the resolved ScoringRules (`scoring.batch.scoring_rules`);
    `history_start`: the default history start (the first day of the base scored in batch); `returns`: the
    returns policy of the rows (data.returns); `input_example`: a few customers' rows."""
    unknown = sorted(set(components) - set(ROLES))
    if not components or unknown:
        raise ConfigError(f"log_scorer_model: components must map roles {list(ROLES)} to models, got "
                          f"{sorted(components)}")
    spec = {"format": FORMAT, "version": FORMAT_VERSION,
            "components": {role: {"name": ref.name or "", "version": ref.version or "", "uri": ref.uri,
                                  "run_id": ref.run_id or ""} for role, (_, ref) in components.items()},
            "rules": rules_to_dict(rules), "history_start": str(pd.Timestamp(history_start).date()),
            "returns": returns, "base_relative": list(BASE_RELATIVE)}
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {}
        for role, (directory, _) in components.items():
            artifacts[role] = str(shutil.copytree(directory, Path(tmp) / role))
        (Path(tmp) / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        artifacts[SPEC_ARTIFACT] = str(Path(tmp) / SPEC_FILE)
        ScorerPyfunc().load_artifacts(artifacts)  # refuse to log what would not load
        return mlflow.pyfunc.log_model(name=name, python_model=str(SCORER_MODEL_CODE), artifacts=artifacts,
                                       signature=scorer_signature(), input_example=input_example,
                                       pip_requirements=pip_requirements())


def load_scorer_model(uri: str, *, setting: str = "model_uri") -> tuple[ScorerPyfunc, ModelRef]:
    """(ScorerPyfunc, ModelRef) of a logged scorer, read as data (scorer.json and each component's JSON,
    skops and XGBoost JSON files), without running the Python file logged beside them."""
    directory, ref = model_artifacts(uri, setting=setting)
    try:
        return ScorerPyfunc.from_directory(directory), ref
    except (OSError, KeyError, TypeError, ValueError, ModelError) as exc:
        raise ConfigError(f"{setting}: {uri!r} is not a custval scorer ({exc})") from None
