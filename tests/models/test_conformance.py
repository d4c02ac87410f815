"""Every custval estimator, found by walking `custval.models`, passes scikit-learn's generic checks here
(clone, get_params/set_params, parameters stored untouched by __init__, the fitted check, tags that declare
missing-value support), and is run through a Pipeline and GridSearchCV on data with a known answer by its
family's conformance module (tests/models/clv/, tests/models/classifiers/, tests/models/uplift/). A new estimator that no family
module covers fails this test."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init
from sklearn.utils.validation import check_is_fitted

import custval.models

HERE = Path(__file__).parent
FAMILY_MODULES = (HERE / "clv" / "test_conformance.py", HERE / "classifiers" / "test_conformance.py",
                  HERE / "test_second_value.py", HERE / "uplift" / "test_conformance.py")


def _estimators() -> list[type]:
    found = set()
    for info in pkgutil.walk_packages(custval.models.__path__, "custval.models."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseEstimator) and cls.__module__.startswith("custval.") and not inspect.isabstract(cls) \
                    and not cls.__name__.startswith("_") and "__init__" in vars(cls):
                found.add(cls)
    return sorted(found, key=lambda c: c.__name__)


ESTIMATORS = _estimators()


def test_the_walk_finds_the_known_estimators():
    names = {cls.__name__ for cls in ESTIMATORS}
    assert {"BetaGeo", "GammaGamma", "CustomerValue", "TabularPreprocessor", "TreeClassifier",
            "BoostedClassifier", "CalibratedClassifier", "BoostedRegressor", "SLearner", "TLearner", "XLearner",
            "DRLearner", "ClassTransformation"} <= names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_generic_scikit_learn_conformance(cls):
    estimator = cls()
    check_no_attributes_set_in_init(cls.__name__, estimator)
    check_get_params_invariance(cls.__name__, estimator)
    params = estimator.get_params(deep=False)
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params(deep=False).keys() == params.keys()
    assert copy.set_params(**params).get_params(deep=False) == params
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(estimator)
    assert isinstance(get_tags(estimator).input_tags.allow_nan, bool)
    assert callable(getattr(estimator, "check_params", None)), "a public check_params for jobs to call"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_estimator_goes_through_a_pipeline_and_a_grid_search_in_its_family_module(cls):
    text = "\n".join(path.read_text() for path in FAMILY_MODULES)
    assert cls.__name__ in text
    family = next(path for path in FAMILY_MODULES if cls.__name__ in path.read_text())
    source = family.read_text()
    assert "Pipeline(" in source and "GridSearchCV(" in source
