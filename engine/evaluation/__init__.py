"""Evaluation and benchmark helpers shared by the `eval` and `bench` commands (numpy only)."""
