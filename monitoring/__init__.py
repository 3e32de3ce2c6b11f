"""Monitoring of the models in production: feature drift of the risk model (PSI, KS),
calibration of the risk score once labels mature, the demand model's forecast error on new
weeks against its holdout error, and adherence of executed prices to approved schedules.

The package sits above :mod:`planning` and below the app, which reads the data source,
compares against a reference run, logs to MLflow and decides the exit code.
"""
