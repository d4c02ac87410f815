"""Model-from-code entry point MLflow stores beside a logged uplift model
(see custval.tracking.uplift_pyfunc)."""

from mlflow.models import set_model

from custval.tracking.uplift_pyfunc import UpliftPyfunc

set_model(UpliftPyfunc())
