"""The REST API (FastAPI): the application (:mod:`service.api.app`), its routes, request and
response bodies, and what every route needs (:mod:`service.api.deps`)."""
