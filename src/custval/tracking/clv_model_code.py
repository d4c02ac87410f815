"""Model-from-code entry point MLflow stores beside a logged CLV model (see custval.tracking.pyfunc)."""

from mlflow.models import set_model

from custval.tracking.pyfunc import CLVPyfunc

set_model(CLVPyfunc())
