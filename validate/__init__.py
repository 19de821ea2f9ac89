"""Fitting and comparison: predictions against measured and published data."""
