"""Serving: the composite scorer (`scorer.py`) and MLflow's scoring server for registered models
(`server.py`)."""
