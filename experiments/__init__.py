"""Configs, runners (train, evaluate, compare, sweep, the end-to-end pipeline), MLflow
tracking, the ``deadstock`` CLI, reports and plots."""
