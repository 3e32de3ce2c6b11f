"""Field tests of a pricing policy: the design of an A/B test over SKUs (stratified
assignment, power by simulation in the fitted market with CUPED, checked against the
analytic formula), its analysis (effects with confidence intervals, guardrails, balance and
sample-ratio checks) and the validation of both on synthetic worlds with a known effect.

The package sits above :mod:`planning` (it simulates plans on paired paths to size a test)
and below the app, which reads files, logs to MLflow and prints.
"""
