"""The API (FastAPI) and the what-if dashboard, thin over ``experiments``, ``agents`` and
``risk_model``. Not built yet: see the README's status table."""
