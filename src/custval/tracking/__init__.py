"""MLflow at the side of the pipeline: runs, logging, the registry with aliases, and pyfunc wrappers."""
