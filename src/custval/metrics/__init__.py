"""Pure metric functions: (y_true, y_score, ...) -> float, or small tables built from arrays."""
