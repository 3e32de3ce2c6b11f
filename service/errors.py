"""The service's errors, each mapped to one HTTP status by the API.

They derive from :class:`ingest.errors.DataError`, so the command line prints them as one
line too. Bad input the library refuses (:class:`~ingest.errors.ConfigError`,
:class:`~ingest.errors.DataError`) becomes a 422 naming the field.
"""

from __future__ import annotations

from ingest.errors import DataError


class NotFound(DataError):
    """The object does not exist (HTTP 404)."""


class Forbidden(DataError):
    """The user's role or categories do not allow this (HTTP 403)."""


class Conflict(DataError):
    """The request conflicts with what the database holds (HTTP 409)."""


class Invalid(DataError):
    """A request field is well-formed but refused (HTTP 422), e.g. an override that breaks a
    business rule.

    Parameters
    ----------
    message : str
    loc : tuple
        Where in the request (``("body", "discount", 3)``).
    kind : str
        A short machine-readable type (``"rule_violation"``).
    extra : dict, optional
        More fields for the error entry (``{"rule": "markdown_only", "week": 4}``).
    """

    def __init__(
        self, message: str, loc: tuple = ("body",), kind: str = "value_error", extra=None
    ) -> None:
        super().__init__(message)
        self.loc = loc
        self.kind = kind
        self.extra = dict(extra or {})
