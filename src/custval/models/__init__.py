"""Models: CLV (BG/NBD, Gamma-Gamma, value), classifiers, uplift, tuning."""
