"""Reading data: canonical tables and their schemas, loaders (Complete Journey, CSV/Parquet
folders, SQL databases), validation with clear errors, cleaning with a report, and the weekly
SKU panel."""
