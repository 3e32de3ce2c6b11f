"""Coupon targeting: which households should get a coupon for a SKU, learned from household
baskets by collaborative filtering (implicit ALS) and measured on a time split against
hard-to-beat grocery baselines (past buyers, sub-category buyers, the busiest households).

The package sits beside :mod:`risk_model` and :mod:`simulator` and uses only :mod:`ingest`:
the at-risk SKUs to rank households for are given to it, never chosen here.
"""
