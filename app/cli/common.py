"""What every ``deadstock`` command shares: how a command is added (a description and shown
defaults), command groups that print their help, the common flags' names and help texts, and
the step from flags to a config (:func:`app.config.load_config`, flags as overrides).

Flags that set a config field default to ``None`` ("not given"), so the config's own default
applies (one default per setting); their help shows that default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from app.config import field_default, load_config

T = TypeVar("T")

DATA_HELP = (
    "data source: 'completejourney', a folder of <table>.csv/.parquet files, or a SQLAlchemy URL"
)
CONFIG_HELP = "TOML config file (see docs/config.md); flags override it"
SEED_HELP = "random seed"
NO_TRACK_HELP = "do not log to MLflow"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default. A flag made by :func:`config_arg` shows its config field's
    default (looked up only when the help is printed, so building the parser imports no
    domain package); flags without a default (``None``, ``False``, empty) show none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        sources = getattr(action, "config_default", None)
        if sources is not None:
            none = getattr(action, "config_none", "None")
            values = [(label, _config_default(c, k)) for label, c, k in sources]
            shown = "; ".join(f"{label}{none if v == 'None' else v}" for label, v in values)
            return f"{text} (default: {shown.replace('%', '%%')})" if shown else text
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def config_arg(
    parser: argparse.ArgumentParser | Any,
    *names: str,
    config: str,
    key: str,
    also: Mapping[str, tuple[str, str]] | None = None,
    none: str = "None",
    **kwargs: Any,
) -> argparse.Action:
    """A flag that sets the field ``key`` of the config ``config`` (``"module:Class"``): its
    parsed default is ``None`` (not given: the config's default applies) and its help shows
    that default (``none``: what a ``None`` default means, e.g. ``"no cap"``), and those of
    the configs in ``also`` (label -> (config, key)) for a flag that serves two modes."""
    action: argparse.Action = parser.add_argument(*names, default=None, **kwargs)
    sources = [("", config, key), *((f"{k}: ", c, f) for k, (c, f) in (also or {}).items())]
    action.config_default = sources  # type: ignore[attr-defined]
    action.config_none = none  # type: ignore[attr-defined]
    return action


def _config_default(config: str, key: str) -> str:
    module, _, name = config.partition(":")
    value = field_default(getattr(importlib.import_module(module), name), key)
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def add_command(
    subparsers: Any, name: str, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A sub-command with a description (``help`` when none is given) and shown defaults."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        formatter_class=HelpFormatter,
    )
    add_verbosity(parser)
    return parser


def add_group(
    subparsers: Any, name: str, *, help: str, description: str | None = None
) -> tuple[argparse.ArgumentParser, Any]:
    """A command group (``deadstock data``): without a sub-command it prints its help to
    stderr and exits 2. Returns the group's parser and its sub-parsers."""
    group = add_command(subparsers, name, help=help, description=description)
    sub = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    group.set_defaults(func=lambda _args: usage_error(group))
    return group, sub


def usage_error(parser: argparse.ArgumentParser) -> int:
    """Print ``parser``'s help to stderr; the exit code of a command that needs more."""
    parser.print_help(sys.stderr)
    return 2


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-q`` on every parser, so they work before or after the command name."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more detail; with an unexpected error, the traceback",
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=argparse.SUPPRESS, help="only warnings and errors"
    )


def build(
    cls: type[T],
    args: argparse.Namespace,
    flags: Mapping[str, Any],
    *,
    quick: bool = False,
    section: str | None = None,
) -> T:
    """The command's config: ``--config`` (when the command has one) with ``flags`` (dotted
    config keys to the parsed values, ``None`` = not given) on top."""
    path = getattr(args, "config", None)
    return load_config(cls, path, overrides=flags, quick=quick, section=section)


def comma_list(text: str | None) -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")``; ``None`` stays None (flag not given)."""
    if text is None:
        return None
    return tuple(t.strip() for t in text.split(",") if t.strip())
