"""Save and load fitted classifiers (and the BoostedRegressor) without pickle.

Directory layout:
- `meta.json`: kind ("tree" | "boosted" | "logistic" | "averaged" | "calibrated" | "boosted_regressor"),
  constructor params, the preprocessor state (columns, dtypes, categories), fitted numbers (best iteration, leaf
  counts, the logistic regression's medians, scales and coefficients, calibrator state);
- `tree.skops`: the scikit-learn DecisionTreeClassifier (skops, loaded only if every type in it is on an
  explicit trusted list);
- `booster.json`: the XGBoost model in XGBoost's own JSON format;
- `estimator/`: for a calibrated model, the wrapped classifier in this same layout;
- `member_<i>/`: for an averaged model, each member in this same layout (names and weights in meta.json).
Loaded models predict and explain exactly as the saved ones. Callbacks are not saved (they are training
hooks); a loaded BoostedClassifier has `callbacks=None`.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np
import skops.io as sio
import xgboost as xgb
from sklearn.pipeline import Pipeline

from custval.errors import ConfigError, ModelError
from custval.models.classifiers.averaged import AveragedClassifier
from custval.models.classifiers.boosting import BoostedClassifier
from custval.models.classifiers.calibration import CalibratedClassifier
from custval.models.classifiers.logistic import LogisticClassifier
from custval.models.classifiers.preprocess import TabularPreprocessor
from custval.models.classifiers.regressor import BoostedRegressor
from custval.models.classifiers.tree import TreeClassifier
from custval.models.validation import check_fitted

FORMAT = "custval-classifier"
VERSION = 2  # 2: preprocessor keys numeric categories normalised (1 and 1.0 -> "1"); version 1 still loads
READABLE_VERSIONS = (1, 2)
META = "meta.json"
TREE_FILE = "tree.skops"
BOOSTER_FILE = "booster.json"
ESTIMATOR_DIR = "estimator"
MEMBER_DIR = "member_{}"
SAVED = (TreeClassifier, BoostedClassifier, LogisticClassifier, AveragedClassifier, CalibratedClassifier)
# Types in a saved DecisionTreeClassifier that skops does not trust by default; nothing else is loaded.
TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)
SAVED_TYPES = (*SAVED, BoostedRegressor)  # what save_classifier saves


def _jsonable(value):
    """Params as JSON: numpy scalars -> Python numbers; class_weight dicts keep int keys as a list of pairs."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {"__pairs__": [[_jsonable(k), _jsonable(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | numbers.Number):
        return value
    raise ModelError(f"cannot save parameter value {value!r} of type {type(value).__name__} as JSON")


def _from_jsonable(value):
    if isinstance(value, dict) and "__pairs__" in value:
        return {k: v for k, v in value["__pairs__"]}
    return value


def _params(model) -> dict:
    params = model.get_params(deep=False)
    params.pop("callbacks", None)
    params.pop("estimator", None)
    params.pop("estimators", None)
    return {k: _jsonable(v) for k, v in params.items()}


def save_classifier(model, directory) -> Path:
    """Write a fitted Tree/Boosted/Logistic/Averaged/Calibrated classifier or a BoostedRegressor to `directory`
    (created if needed; files in it are overwritten). Returns the directory."""
    directory = Path(directory)
    names = ", ".join(kind.__name__ for kind in SAVED_TYPES)
    inner = ", ".join(kind.__name__ for kind in SAVED[:-1])
    if not isinstance(model, SAVED_TYPES):
        raise ConfigError(f"save_classifier saves {names}, got {type(model).__name__}")
    check_fitted(model)
    directory.mkdir(parents=True, exist_ok=True)
    meta: dict = {"format": FORMAT, "version": VERSION, "params": _params(model)}
    if isinstance(model, CalibratedClassifier):
        if not isinstance(model.estimator, SAVED[:-1]):
            raise ConfigError(f"save_classifier saves a CalibratedClassifier only around one of {inner}, "
                              f"got {type(model.estimator).__name__}")
        save_classifier(model.estimator, directory / ESTIMATOR_DIR)
        meta |= {"kind": "calibrated", "estimator": ESTIMATOR_DIR, "method_": model.method_,
                 "validation_scores_": model.validation_scores_, "n_splits_": model.n_splits_,
                 "calibrator_": model.calibrator_}
    elif isinstance(model, AveragedClassifier):
        members = list(model.named_estimators_.items())
        for i, (_, member) in enumerate(members):
            if not isinstance(member, SAVED[:-1]):
                raise ConfigError(f"save_classifier saves an AveragedClassifier only of {inner}, got "
                                  f"{type(member).__name__}")
            save_classifier(member, directory / MEMBER_DIR.format(i))
        meta |= {"kind": "averaged", "members": [[name, MEMBER_DIR.format(i)] for i, (name, _) in enumerate(members)],
                 "weights_": model.weights_.tolist()}
    elif isinstance(model, LogisticClassifier):
        meta |= {"kind": "logistic", "preprocessor": model.preprocessor_.to_state(), "fitted": model.fitted_state()}
    elif isinstance(model, TreeClassifier):
        sio.dump(model.tree_model_, directory / TREE_FILE)
        meta |= {"kind": "tree", "preprocessor": model.preprocessor_.to_state(),
                 "leaf_counts_": model.leaf_counts_.tolist(), "leaf_positives_": model.leaf_positives_.tolist()}
    elif isinstance(model, BoostedRegressor):
        model.model_.save_model(directory / BOOSTER_FILE)
        meta |= {"kind": "boosted_regressor", "preprocessor": model.preprocessor_.to_state(),
                 "best_iteration_": model.best_iteration_, "evals_result_": model.evals_result_}
    else:
        model.model_.save_model(directory / BOOSTER_FILE)
        meta |= {"kind": "boosted", "preprocessor": model.preprocessor_.to_state(),
                 "best_iteration_": model.best_iteration_, "scale_pos_weight_": model.scale_pos_weight_,
                 "evals_result_": model.evals_result_}
    (directory / META).write_text(json.dumps(meta, indent=1, allow_nan=True))
    return directory


def _load_tree_model(path: Path):
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ModelError(f"{path} contains types outside the trusted list, refusing to load: {unexpected}")
    return sio.load(path, trusted=list(TRUSTED_TYPES))


def load_classifier(directory):
    """Read a classifier written by save_classifier."""
    directory = Path(directory)
    path = directory / META
    if not path.is_file():
        raise ModelError(f"no saved classifier at {directory} ({META} not found)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT or meta.get("version") not in READABLE_VERSIONS:
        raise ModelError(f"{path} is not a {FORMAT} v{READABLE_VERSIONS} file (format={meta.get('format')!r}, "
                         f"version={meta.get('version')!r})")
    params = {k: _from_jsonable(v) for k, v in meta["params"].items()}
    kind = meta.get("kind")
    if kind == "calibrated":
        model = CalibratedClassifier(estimator=load_classifier(directory / meta["estimator"]), **params)
        model.method_ = meta["method_"]
        model.validation_scores_ = dict(meta["validation_scores_"])
        model.n_splits_ = int(meta["n_splits_"])
        model.classes_ = np.array([0, 1])
        if hasattr(model.estimator, "feature_names_in_"):
            model.feature_names_in_ = model.estimator.feature_names_in_
            model.n_features_in_ = len(model.feature_names_in_)
        model.calibrator_ = meta["calibrator_"]
        return model
    if kind == "averaged":
        members = [(name, load_classifier(directory / sub)) for name, sub in meta["members"]]
        return AveragedClassifier.restore(params, members, meta["weights_"])
    preprocessor = TabularPreprocessor.from_state(meta["preprocessor"])
    if kind == "tree":
        pipeline = Pipeline([("preprocess", preprocessor), ("tree", _load_tree_model(directory / TREE_FILE))])
        return TreeClassifier.restore(params, pipeline, meta["leaf_counts_"], meta["leaf_positives_"])
    if kind == "boosted":
        booster_model = xgb.XGBClassifier()
        booster_model.load_model(directory / BOOSTER_FILE)
        return BoostedClassifier.restore(params, preprocessor, booster_model, int(meta["best_iteration_"]),
                                         float(meta["scale_pos_weight_"]), meta["evals_result_"])
    if kind == "logistic":
        return LogisticClassifier.restore(params, preprocessor, meta["fitted"])
    if kind == "boosted_regressor":
        regressor = xgb.XGBRegressor()
        regressor.load_model(directory / BOOSTER_FILE)
        return BoostedRegressor.restore(params, preprocessor, regressor, int(meta["best_iteration_"]),
                                        meta["evals_result_"])
    raise ModelError(f"{path}: unknown classifier kind {kind!r}")
