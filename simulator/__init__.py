"""The market: the demand model, fitting it from the weekly panel, the catalog of SKU
parameters, the vectorized market step, and a synthetic world with known truth."""
