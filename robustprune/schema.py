"""Typed, validated parameter sections: the machinery, with no knowledge of any section.

A section is a frozen dataclass whose fields carry their constraints (:func:`param`), so the
schema is written once, where the thing it configures lives (a selector's options next to the
selector), and :func:`build` rejects a typo or an out-of-range value with a one-line
:class:`ConfigError` *before* any compute runs and before any output is touched. This module
imports nothing from the package but the errors, so any module can declare a section without
an import cycle.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from robustprune.errors import ConfigError

__all__ = ["NoOptions", "as_dict", "build", "check_list", "check_value", "param"]


def param(default: Any, *, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, choices: Iterable[str] | None = None, doc: str = "") -> Any:
    """A field with its constraint: ``lo``/``hi`` bounds (``lo_open`` makes ``lo`` exclusive),
    or ``choices`` (typically a registry's names, so the allowed values have one source)."""
    return field(default=default, metadata={
        "lo": lo, "hi": hi, "lo_open": lo_open,
        "choices": None if choices is None else tuple(choices), "doc": doc})


@dataclass(frozen=True)
class NoOptions:
    """The options of a selector or miner that has none."""


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_value(key: str, value: Any, typ: type, meta: dict[str, Any]) -> Any:
    """Return ``value`` coerced to ``typ`` or raise a one-line :class:`ConfigError`."""
    shown = json.dumps(value) if isinstance(value, str) else repr(value)
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {shown}: must be true or false")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {shown}: must be an integer")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {shown}: must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key} = {shown}: must be a finite number")
    elif typ is str and not isinstance(value, str):
        raise ConfigError(f"{key} = {shown}: must be a string")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        allowed = ", ".join(c if c else '""' for c in choices)
        raise ConfigError(f"{key} = {shown}: must be one of {allowed}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        bound = f"> {lo:g}" if meta.get("lo_open") else f">= {lo:g}"
        if hi is not None:
            bound += f" and <= {hi:g}"
        raise ConfigError(f"{key} = {shown}: must be {bound}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key} = {shown}: must be <= {hi:g}")
    return value


def check_list(key: str, value: Any, item_type: type, meta: dict[str, Any]) -> tuple[Any, ...]:
    """A non-empty list of distinct scalars, each checked like a scalar key."""
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{key} = {value!r}: must be a non-empty list")
    items = tuple(check_value(f"{key}[{i}]", v, item_type, meta) for i, v in enumerate(value))
    if len(set(items)) != len(items):
        raise ConfigError(f"{key} = {list(value)!r}: must not repeat a value")
    return items


def build(cls: type, raw: Any, prefix: str, allowed: Iterable[str] = ()) -> Any:
    """Build section ``cls`` from a mapping, rejecting unknown keys and bad values.

    ``allowed`` names further keys the caller handles itself (they are left out here), so an
    unknown-key message can list everything that is accepted.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'params'}: must be a mapping of keys to values")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = tuple(allowed)
    unknown = sorted(str(k) for k in set(raw) - set(fields) - set(extra))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key; allowed: "
                          f"{', '.join([*fields, *extra]) or 'none'}")
    kwargs = {}
    for name, value in raw.items():
        if name not in fields:
            continue
        key = f"{prefix}.{name}" if prefix else name
        typ = hints[name]
        meta = dict(fields[name].metadata)
        if dataclasses.is_dataclass(typ):
            kwargs[name] = build(typ, value, key)
        elif typing.get_origin(typ) is tuple:
            kwargs[name] = check_list(key, value, typing.get_args(typ)[0], meta)
        else:
            kwargs[name] = check_value(key, value, typ, meta)
    return cls(**kwargs)


def as_dict(obj: Any) -> Any:
    """Plain-dict view of a section (for hashing, logging and JSON metrics)."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
