"""Evaluation: benchmark specs (benchmarks.py), metrics (metrics.py), `limo eval` (run.py), `limo compare`."""
