"""The batch scorer's checks of a model against the features built."""

from types import SimpleNamespace

import pandas as pd
import pytest

from custval.errors import SchemaError
from custval.scoring.batch import check_inputs


def test_a_model_input_that_was_not_built_is_named():
    built = pd.DataFrame({"recency_days": [1.0], "spend_30d": [2.0]})
    model = SimpleNamespace(features=[{"name": "spend_30d"}, {"name": "recency_days"}])
    assert check_inputs("churn", model, built) == ["spend_30d", "recency_days"]
    model = SimpleNamespace(features=[{"name": "spend_30d"}, {"name": "share_toys"}, {"name": "age"}])
    with pytest.raises(SchemaError, match=r"^features\.share_toys: models\.churn needs this input"):
        check_inputs("churn", model, built)
