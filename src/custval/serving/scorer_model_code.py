"""Model-from-code entry point MLflow stores beside a logged scorer (see custval.serving.scorer)."""

from mlflow.models import set_model

from custval.serving.scorer import ScorerPyfunc

set_model(ScorerPyfunc())
