"""Model-from-code entry point MLflow stores beside a logged classifier model
(see custval.tracking.classifier_pyfunc)."""

from mlflow.models import set_model

from custval.tracking.classifier_pyfunc import ClassifierPyfunc

set_model(ClassifierPyfunc())
