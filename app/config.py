"""The one config loader: a TOML file and command-line overrides -> the typed config of any
command.

Every command's settings are one frozen dataclass, nested by concern (``PipelineConfig`` holds
the fit's ``FitConfig``, the risk model's settings, the rules and the PPO settings; a
``TrainConfig`` holds a ``PPOConfig``). :func:`load_config` builds any of them the same way:

1. the dataclass defaults;
2. the class's quick preset (``QUICK_PRESET``, dotted keys) when ``quick`` is asked for;
3. the TOML file: top-level keys are fields, a table ``[fit]`` (or ``[fit.stock]``) fills the
   nested config of that name;
4. the overrides (the command-line flags), dotted keys, ``None`` meaning "not given".

Each later layer wins over the earlier ones. Values are checked against the field's type with
pydantic (strict: ``6.5`` is not an integer, ``"twelve"`` not a number), then the dataclass's
own ``__post_init__`` checks ranges and combinations. Unknown keys are refused with the
nearest valid name. Every error is a :class:`~ingest.errors.ConfigError` naming the file, the
key path, the bad value and what is expected::

    plan.toml [fit.stock] velocity_weeks = 6.5: expected an integer
    plan.toml [fit.stock] velocity_wekes: unknown key; did you mean 'velocity_weeks'?

A table that sets some keys keeps the other keys of its parent's default (the run's rules are
``DEFAULT_RULES``, not ``RulesConfig()``). A config class may declare, as class attributes,
``QUICK_PRESET`` (dotted keys to values), ``REFUSED_KEYS`` (dotted keys to the reason they
cannot be set: the run sets them itself, or they moved) and ``expand_file_values(values)``
(a static method rewriting a file's shorthands before the checks, as ``TrainConfig`` does
for ``[timesteps]``).

Why dataclasses and not pydantic models: the domain packages (``simulator``, ``risk_model``,
``envs``, ``agents``) must not depend on the app or on a validation library, and their configs
are also built in code and in tests; pydantic validates the same classes here (and in the API)
through ``TypeAdapter``. See ``docs/config.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, cast

from pydantic import TypeAdapter, ValidationError

from ingest.errors import ConfigError

T = TypeVar("T")

#: The name of the layer the command-line flags make, in error messages.
COMMAND_LINE = "command line"
#: The name of the quick preset's layer.
QUICK = "quick preset"
#: Longest value shown in an error message.
_MAX_SHOWN = 60


# ------------------------------------------------------------------------------ reading
def read_toml(path: str | Path) -> dict[str, Any]:
    """The values of a TOML file, or a :class:`ConfigError` saying why there are none."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a folder; expected a TOML file")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text; expected TOML") from None
    except OSError as err:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {err.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {err}") from None


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    quick: bool = False,
    section: str | None = None,
) -> T:
    """Build the config ``cls`` from its defaults, its quick preset, a TOML file and overrides.

    Parameters
    ----------
    cls : dataclass type
        The command's config (``PipelineConfig``, ``TrainConfig``, ``RulesConfig`` ...).
    path : path, optional
        TOML file. ``None``: defaults, preset and overrides only.
    overrides : mapping, optional
        Dotted keys (``"evaluation.n_episodes"``) to values, applied last; ``None`` values
        are skipped (a flag that was not given).
    quick : bool
        Apply ``cls.QUICK_PRESET`` (dotted keys) above the defaults and below the file.
    section : str, optional
        Read only this table of the file when it has one (``"rules"``: a rules file, or a
        pipeline file's ``[rules]``); otherwise the whole file.

    Raises
    ------
    ConfigError
        A missing, unreadable or invalid file; an unknown key; a value of the wrong type or
        out of range. The message names the file and key path.
    """
    file_values: dict[str, Any] | None = None
    prefix: tuple[str, ...] = ()
    if path is not None:
        file_values = read_toml(path)
        if section is not None and isinstance(file_values.get(section), dict):
            file_values, prefix = file_values[section], (section,)
        expand = getattr(cls, "expand_file_values", None)
        if expand is not None:
            try:
                file_values = expand(file_values)
            except ConfigError as err:  # name the file, as every other error here does
                raise ConfigError(f"{path}: {err}") from None
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    # A file or flag may ask for the quick mode too; the preset still sits below the file.
    quick = quick or given.get("quick") is True or (file_values or {}).get("quick") is True
    layers: list[tuple[str, dict[str, Any]]] = []
    if quick:
        preset = getattr(cls, "QUICK_PRESET", None)
        if preset is None:
            raise ConfigError(f"{cls.__name__} has no quick preset")
        mode = {"quick": True} if "quick" in {f.name for f in dataclasses.fields(cls)} else {}  # type: ignore[arg-type]
        layers.append((QUICK, _nest({**preset, **mode})))
    if file_values is not None:
        layers.append((str(path), file_values))
    if given:
        layers.append((COMMAND_LINE, _nest(given)))
    refused: Mapping[str, str] = getattr(cls, "REFUSED_KEYS", {})
    for source, values in layers:
        for dotted, why in refused.items():
            if _has(values, dotted):
                *parents, key = dotted.split(".")
                raise ConfigError(f"{_where(source, (*prefix, *parents), [key])}: {why}")
    return _build(cls, layers, prefix)


def config_from_values(
    cls: type[T], values: Mapping[str, Any], *, source: str, base: T | None = None
) -> T:
    """Build ``cls`` from one mapping of plain values (a request body, a stored run's config)
    with the loader's checks and messages; ``source`` names where the values came from in
    errors. Keys absent from ``values`` keep ``base``'s values (or the class defaults)."""
    return _build(cls, [(source, dict(values))], (), base)


# ------------------------------------------------------------------------------ building
def _build(
    cls: type[T],
    layers: list[tuple[str, dict[str, Any]]],
    path: tuple[str, ...],
    base: Any = None,
) -> T:
    """One dataclass from the layers' values at ``path`` (later layers win), on top of
    ``base`` (the parent's default for this field, which may differ from the class's
    defaults: the run's rules are not ``RulesConfig()``) or of the class defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    names = list(fields)
    for source, values in layers:
        for key in values:
            if key not in fields:
                raise ConfigError(_unknown(source, path, key, names, cls))
    hints = _hints(cast(Any, cls))
    kwargs: dict[str, Any] = {}
    for name in names:
        given = [(source, values[name]) for source, values in layers if name in values]
        if not given:
            continue
        tp = hints.get(name, Any)
        sub = _dataclass_in(tp)
        if sub is not None:
            for source, value in given:
                if not isinstance(value, Mapping):
                    raise ConfigError(
                        f"{_where(source, path, [name])} = {_shown(value)}: expected a table "
                        f"[{'.'.join((*path, name))}] of {sub.__name__} settings"
                    )
            inner = getattr(base, name) if base is not None else _default(fields[name])
            inner = inner if dataclasses.is_dataclass(inner) else None
            kind = type(inner) if inner is not None else sub
            parts = [(s, dict(v)) for s, v in given]
            kwargs[name] = _build(kind, parts, (*path, name), inner)
        else:
            source, value = given[-1]
            kwargs[name] = _check_type(tp, value, source, (*path, name))
    if base is None:
        missing = [n for n in names if n not in kwargs and _required(fields[n])]
        if missing:
            label = " + ".join(dict.fromkeys(s for s, _ in layers)) or "config"
            where = _where(label, path, [missing[0]])
            expected = describe_type(hints.get(missing[0], Any))
            raise ConfigError(f"{where} is missing: expected {expected}")
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except ConfigError as err:
        sources = list(dict.fromkeys(s for s, v in layers if v)) or ["defaults"]
        section = f" [{'.'.join(path)}]" if path else ""
        raise ConfigError(f"{' + '.join(sources)}{section}: {err}") from None
    except TypeError as err:  # a required field without a value
        raise ConfigError(f"{cls.__name__}: {err}") from None


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _default(f: dataclasses.Field[Any]) -> Any:
    """A field's default value (``None`` when it has none)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _check_type(tp: Any, value: Any, source: str, path: tuple[str, ...]) -> Any:
    """``value`` validated (strictly) as ``tp``; TOML arrays become tuples."""
    try:
        return _adapter(tp).validate_python(_tuples(value), strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        loc = "".join(f"[{p}]" for p in first["loc"] if isinstance(p, int))
        where = _where(source, path[:-1], [path[-1]]) + loc
        raise ConfigError(f"{where} = {_shown(value)}: expected {describe_type(tp)}") from None


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved: check nothing
        return {}


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass ``tp`` is (or is optional of), else None."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        subs = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(subs) == 1:
            return _dataclass_in(subs[0])
    return None


# ------------------------------------------------------------------------------ messages
def describe_type(tp: Any) -> str:
    """What a value of type ``tp`` looks like in TOML, for error messages and the docs."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        subs = [a for a in args if a is not type(None)]
        text = " or ".join(describe_type(a) for a in subs)
        return text + (" (or leave it out)" if len(subs) < len(args) else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe_type(args[0]))}"
        return f"a list of {len(args)}: " + ", ".join(describe_type(a) for a in args)
    if origin in (dict, Mapping):
        return f"a table of {_plural(describe_type(args[1]))}" if args else "a table"
    return getattr(tp, "__name__", str(tp))


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article) :] + "s"
    return text


def _where(source: str, path: tuple[str, ...] | list[str], keys: list[str]) -> str:
    """``plan.toml [fit.stock] velocity_weeks`` for a file, ``command line: fit.stock...``
    for the other layers."""
    if source in (COMMAND_LINE, QUICK):
        return f"{source}: {'.'.join((*path, *keys))}"
    section = f" [{'.'.join(path)}]" if path else ""
    return f"{source}{section} {'.'.join(keys)}"


def _unknown(source: str, path: tuple[str, ...], key: str, names: list[str], cls: type) -> str:
    where = f"{_where(source, path, [key])}: unknown key"
    inside = _nested_home(cls, key)
    if inside:
        return f"{where}; did you mean [{'.'.join((*path, *inside))}] {key}?"
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"{where}; did you mean {close[0]!r}?"
    return f"{where}; expected one of {', '.join(names)}"


def _nested_home(cls: type, key: str) -> tuple[str, ...]:
    """The path of the nested section that has a field ``key`` (a key in the wrong table)."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        sub = _dataclass_in(hints.get(f.name, Any))
        if sub is None:
            continue
        if key in {g.name for g in dataclasses.fields(sub)}:
            return (f.name,)
        deeper = _nested_home(sub, key)
        if deeper:
            return (f.name, *deeper)
    return ()


def _shown(value: Any) -> str:
    """A value as TOML writes it (``true``, ``"text"``, ``[1, 2]``), shortened."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


# ------------------------------------------------------------------------------ helpers
def _nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _has(values: Mapping[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def field_default(cls: type, dotted: str) -> Any:
    """The default of a (nested) field, for help texts: ``field_default(PipelineConfig,
    "evaluation.n_episodes")``."""
    value: Any = None
    for part in dotted.split("."):
        value = _default({f.name: f for f in dataclasses.fields(cls)}[part])
        cls = type(value)
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples as lists), for JSON, MLflow and the report."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out
