"""Dead-stock risk: labels, features at a cutoff, estimators (logistic regression, random
forest, XGBoost), calibration, time-split backtests, per-SKU explanations and scoring."""
