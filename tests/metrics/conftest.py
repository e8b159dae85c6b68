"""The metrics tests: their helpers are in metrics_support.py (this folder is on sys.path, as tests/cli's)."""
