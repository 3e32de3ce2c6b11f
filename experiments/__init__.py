"""What researchers use: the evaluation suite, training runs, evaluation with common random
numbers, comparison across runs, and MLflow tracking."""
