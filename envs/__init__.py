"""Gymnasium environments over the market simulator, with business rules as action masks."""
