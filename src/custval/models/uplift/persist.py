"""Save and load fitted uplift learners as data, without pickle.

Directory layout:
- `meta.json`: format, version, kind (the learner's class name), the constructor parameters (a base learner
  as {"class": name, "params": {...}}), the fitted values (arms, control, outcome, propensities, feature
  names) and, for each fitted base learner, the sub-directory that holds it;
- `models/<attribute>/` (or `models/<attribute>/<i>/` for a list): one fitted base learner each, a custval
  classifier or BoostedRegressor in custval's classifier layout (custval.models.classifiers.persist: JSON and
  XGBoost JSON), or an xgboost XGBClassifier / XGBRegressor as XGBoost's own JSON (`xgboost.json`).

An AveragedUplift stores its member learners' parameters as {"uplift": kind, "params": {...}} and each
fitted member as a whole saved uplift model in `models/models_/<i>/` (the same layout, nested).

Other base learners (a scikit-learn LogisticRegression, say) are refused with a ConfigError before anything
is written: they cannot be stored as data. Callbacks are training hooks and are not saved.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np
import xgboost as xgb

from custval.errors import ConfigError, ModelError
from custval.models.classifiers import (
    BoostedClassifier,
    BoostedRegressor,
    CalibratedClassifier,
    TreeClassifier,
    load_classifier,
    save_classifier,
)
from custval.models.uplift._base import UpliftEstimator
from custval.models.uplift.averaged import AveragedUplift
from custval.models.uplift.class_transformation import ClassTransformation
from custval.models.uplift.drlearner import DRLearner
from custval.models.uplift.slearner import SLearner
from custval.models.uplift.tlearner import TLearner
from custval.models.uplift.xlearner import XLearner
from custval.models.validation import check_fitted

FORMAT = "custval-uplift"
VERSION = 1
META = "meta.json"
MODELS_DIR = "models"
XGBOOST_FILE = "xgboost.json"
KINDS = {cls.__name__: cls for cls in (SLearner, TLearner, XLearner, DRLearner, ClassTransformation, AveragedUplift)}
SINGLE_KINDS = ", ".join(name for name in KINDS if name != "AveragedUplift")


def _unsavable_kind(model) -> str:
    return f"save_uplift saves {SINGLE_KINDS}, got {type(model).__name__} (and an AveragedUplift of them)"


CUSTVAL_LEARNERS = {cls.__name__: cls for cls in (BoostedClassifier, BoostedRegressor, TreeClassifier,
                                                  CalibratedClassifier)}
XGBOOST_LEARNERS = {"xgboost.XGBClassifier": xgb.XGBClassifier, "xgboost.XGBRegressor": xgb.XGBRegressor}
SAVABLE = "BoostedClassifier, BoostedRegressor, TreeClassifier, CalibratedClassifier, xgboost.XGBClassifier " \
          "or xgboost.XGBRegressor"


def _learner_name(learner) -> str | None:
    """The saved name of a base learner's class, None when it cannot be saved as data (exact types only: a
    subclass may hold state the saved form does not know)."""
    for name, cls in (CUSTVAL_LEARNERS | XGBOOST_LEARNERS).items():
        if type(learner) is cls:
            return name
    return None


def _plain(value, where: str):
    """A parameter value as JSON: None, bool, numbers, text, lists of them; dicts as key/value pairs (so
    integer keys such as a class_weight survive); base learners as {"class", "params"}."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool | numbers.Number):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {"__pairs__": [[_plain(k, where), _plain(v, where)] for k, v in value.items()]}
    if isinstance(value, UpliftEstimator):
        return _uplift_spec(value, where)
    if hasattr(value, "get_params"):
        return _learner_spec(value, where)
    raise ConfigError(f"{where}: cannot save {type(value).__name__} {value!r} as data; give a number, text or "
                      "list (a random_state as an integer seed)")


def _learner_spec(learner, where: str) -> dict:
    name = _learner_name(learner)
    if name is None:
        raise ConfigError(f"{where}: save_uplift stores base learners as data only for {SAVABLE}; "
                          f"{type(learner).__name__} cannot be saved without pickle")
    params = learner.get_params(deep=False)
    params.pop("callbacks", None)
    return {"class": name, "params": {k: _plain(v, f"{where}.{k}") for k, v in params.items()}}


def _uplift_spec(model, where: str) -> dict:
    """An (unfitted) member of an AveragedUplift: its kind and parameters."""
    if type(model) not in KINDS.values():
        raise ConfigError(f"{where}: {_unsavable_kind(model)}")
    return {"uplift": type(model).__name__,
            "params": {k: _plain(v, f"{where}.{k}") for k, v in model.get_params(deep=False).items()}}


def _from_plain(value):
    if isinstance(value, dict) and "uplift" in value and "params" in value:
        cls = KINDS.get(value["uplift"])
        if cls is None:
            raise ModelError(f"unknown uplift model kind {value['uplift']!r} in a saved uplift model")
        return cls(**{k: _from_plain(v) for k, v in value["params"].items()})
    if isinstance(value, dict) and "__pairs__" in value:
        return {k: _from_plain(v) for k, v in value["__pairs__"]}
    if isinstance(value, dict) and "class" in value and "params" in value:
        cls = (CUSTVAL_LEARNERS | XGBOOST_LEARNERS).get(value["class"])
        if cls is None:
            raise ModelError(f"unknown base learner class {value['class']!r} in a saved uplift model")
        return cls(**{k: _from_plain(v) for k, v in value["params"].items()})
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value


def _is_estimator(value) -> bool:
    return hasattr(value, "get_params") and hasattr(value, "fit")


def _save_learner(learner, directory: Path, relative: str) -> dict:
    """Write one fitted base learner to `directory`/models/`relative`; its entry in meta.json."""
    name, target = _learner_name(learner), directory / MODELS_DIR / relative
    if name in XGBOOST_LEARNERS:
        target.mkdir(parents=True, exist_ok=True)
        learner.save_model(target / XGBOOST_FILE)
    else:
        save_classifier(learner, target)
    return {"model": relative, "class": name}


def _fitted_values(model) -> dict:
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def _check_savable(model) -> None:
    """Refuse, before writing anything, what cannot be saved as data."""
    for role, value in model.get_params(deep=False).items():
        _plain(value, role)
    for name, value in _fitted_values(model).items():
        for learner in value if isinstance(value, list) else [value]:
            if isinstance(learner, UpliftEstimator):
                if type(learner) not in KINDS.values():
                    raise ConfigError(f"{name}: {_unsavable_kind(learner)}")
                _check_savable(learner)
            elif _is_estimator(learner) and _learner_name(learner) is None:
                raise ConfigError(f"{name}: save_uplift stores base learners as data only for {SAVABLE}; "
                                  f"{type(learner).__name__} cannot be saved without pickle")


def save_uplift(model, directory) -> Path:
    """Write a fitted uplift learner to `directory` (created if needed; files in it are overwritten).
    Returns the directory."""
    if type(model) not in KINDS.values():
        raise ConfigError(_unsavable_kind(model))
    check_fitted(model)
    _check_savable(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = {k: _plain(v, k) for k, v in model.get_params(deep=False).items()}
    fitted: dict = {}
    for name, value in _fitted_values(model).items():
        if isinstance(value, list) and value and all(isinstance(v, UpliftEstimator) for v in value):
            fitted[name] = {"uplifts": [f"{name}/{i}" for i in range(len(value))]}
            for i, member in enumerate(value):
                save_uplift(member, directory / MODELS_DIR / name / str(i))
        elif _is_estimator(value):
            fitted[name] = _save_learner(value, directory, name)
        elif isinstance(value, list) and value and all(_is_estimator(v) for v in value):
            fitted[name] = {"models": [_save_learner(v, directory, f"{name}/{i}") for i, v in enumerate(value)]}
        elif isinstance(value, np.ndarray):
            fitted[name] = {"array": [_plain(v, name) for v in value.tolist()], "dtype": str(value.dtype)}
        else:
            fitted[name] = {"value": _plain(value, name)}
    meta = {"format": FORMAT, "version": VERSION, "kind": type(model).__name__, "params": params, "fitted": fitted}
    (directory / META).write_text(json.dumps(meta, indent=1, allow_nan=True))
    return directory


def _load_learner(entry: dict, directory: Path):
    path = directory / MODELS_DIR / entry["model"]
    if entry["class"] in XGBOOST_LEARNERS:
        learner = XGBOOST_LEARNERS[entry["class"]]()
        learner.load_model(path / XGBOOST_FILE)
        return learner
    return load_classifier(path)


def load_uplift(directory):
    """Read an uplift learner written by save_uplift; it predicts exactly as the saved one."""
    directory = Path(directory)
    path = directory / META
    if not path.is_file():
        raise ModelError(f"no saved uplift model at {directory} ({META} not found)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ModelError(f"{path} is not a {FORMAT} v{VERSION} file (format={meta.get('format')!r}, "
                         f"version={meta.get('version')!r})")
    cls = KINDS.get(meta.get("kind"))
    if cls is None:
        raise ModelError(f"{path}: unknown uplift model kind {meta.get('kind')!r}")
    model = cls(**{k: _from_plain(v) for k, v in meta["params"].items()})
    for name, entry in meta["fitted"].items():
        if "model" in entry:
            value = _load_learner(entry, directory)
        elif "models" in entry:
            value = [_load_learner(e, directory) for e in entry["models"]]
        elif "uplifts" in entry:
            value = [load_uplift(directory / MODELS_DIR / relative) for relative in entry["uplifts"]]
        elif "array" in entry:
            value = np.asarray(entry["array"], dtype=entry["dtype"])
        else:
            value = _from_plain(entry["value"])
        setattr(model, name, value)
    return model
