"""The params layer: ``params.yaml`` read once, and only the sections a stage asks for
validated and typed.

Why per section: each section's schema lives next to the code it configures (``data`` in
:mod:`robustprune.data`, ``train`` in :mod:`robustprune.optim`, ``methods`` in
:mod:`robustprune.selection.registry`, …). A stage script imports the sections it reads and
passes them here, so it depends on that code and nothing else: an edit to BulletTrain reruns
no warm-up and no evaluation, and DVC sees exactly the modules each stage runs. The library
never imports this module; it receives the typed sections. :mod:`robustprune.config` names
every section at once (``python -m robustprune.config`` checks a whole file in a second).

A section is a frozen dataclass (built by :func:`robustprune.schema.build`, its own
``__post_init__`` checks what involves several of its keys) or, for a section that depends on
others (``methods`` on ``attack``), a builder ``(raw, loaded sections) -> value``; sections are
built in the order given. Errors are one-line :class:`ConfigError`, before any compute.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from robustprune.errors import ConfigError
from robustprune.schema import check_list

Section = type | Callable[[Any, Mapping[str, Any]], Any]

__all__ = ["Params", "Section", "load_params", "method_entry", "params_from_dict",
           "read_params"]


class Params:
    """The validated sections one stage loaded, as attributes (``params.train.epochs``), plus
    ``seeds``. Reading a section the stage did not load is a bug in the stage, said so."""

    def __init__(self, seeds: tuple[int, ...], sections: Mapping[str, Any]) -> None:
        self.seeds = seeds
        self._sections = dict(sections)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._sections[name]
        except KeyError:
            raise AttributeError(f"params section {name!r} was not loaded by this stage "
                                 f"(loaded: {', '.join(self._sections) or 'none'})") from None

    @property
    def sections(self) -> dict[str, Any]:
        return dict(self._sections)

    def method(self, name: str) -> Any:
        """The resolved entry ``methods.<name>`` (one-line error naming the defined ones)."""
        return method_entry(self.methods, name)


def method_entry(methods: Mapping[str, Any], name: str) -> Any:
    """``methods[name]``, or a one-line :class:`ConfigError` naming the defined methods."""
    if name not in methods:
        allowed = ", ".join(methods) or "none defined"
        raise ConfigError(f"methods.{name}: no such method in params; defined: {allowed}")
    return methods[name]


def _seeds(raw: Any) -> tuple[int, ...]:
    return check_list("seeds", [0] if raw is None else raw, int, {"lo": 0})


def params_from_dict(raw: Any, sections: Mapping[str, Section]) -> Params:
    """Validate the ``sections`` of a parsed params mapping (missing keys take the defaults
    their dataclass declares); ``seeds`` is always read."""
    from robustprune.schema import build

    if not isinstance(raw, dict):
        raise ConfigError("params: must be a mapping of keys to values")
    loaded: dict[str, Any] = {}
    for name, spec in sections.items():
        body = raw.get(name)
        if isinstance(spec, type) and dataclasses.is_dataclass(spec):
            if name in raw and body is None:
                raise ConfigError(f"{name}: must be a mapping of keys to values (an empty "
                                  "section: leave it out)")
            loaded[name] = build(spec, {} if body is None else body, name)
        else:
            loaded[name] = spec(body, loaded)
    return Params(_seeds(raw.get("seeds")), loaded)


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 numbers, as DVC (ruamel) reads them: ``5e-4`` is a float, not a string."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The parsed file (a mapping), or a one-line :class:`ConfigError` naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of sections to keys, got {raw!r}")
    return raw


def load_params(path: str | Path, sections: Mapping[str, Section]) -> Params:
    """Read ``path`` and validate the given sections (see :func:`params_from_dict`)."""
    return params_from_dict(read_params(path), sections)
