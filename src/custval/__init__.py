"""custval: customer value modelling (CLV, churn, propensity, uplift, RFM) tracked in MLflow."""

__version__ = "0.1.0"
