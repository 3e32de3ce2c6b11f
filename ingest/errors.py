"""User-facing errors.

Every error that reaches a user derives from :class:`DeadstockError`. The CLI prints its
message and exits with :attr:`DeadstockError.exit_code`; it never prints a traceback for one.
Messages name the file, table, column or field, the bad value and what was expected.
"""

from __future__ import annotations


class DeadstockError(Exception):
    """An error caused by the user's input or configuration, with a readable message."""

    exit_code: int = 2


class ConfigError(DeadstockError):
    """A configuration value is invalid; the message says which field and what to change."""


class DataError(DeadstockError):
    """Input data cannot be used; the message says where and why."""
