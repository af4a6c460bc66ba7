"""The selector and miner registries, and the ``methods`` section they validate.

Every selector and miner is imported here, once: the import line registers it, its ``Options``
section declares the keys a ``methods`` entry may set for it, and :func:`build_methods`
validates an entry against exactly those (so a new selector's keys need no edit elsewhere).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from robustprune.attacks import ATTACKS, AttackConfig
from robustprune.errors import ConfigError, InputError
from robustprune.registry import Registry
from robustprune.schema import NAME, build
from robustprune.schema import param as _p
from robustprune.selection.base import BatchMiner, SubsetSelector
from robustprune.selection.bullettrain import BulletTrain
from robustprune.selection.coreset import CoresetCRAIG, CoresetGradMatch
from robustprune.selection.full import Full
from robustprune.selection.glister import Glister
from robustprune.selection.infobatch import InfoBatch
from robustprune.selection.prune import Prune
from robustprune.selection.random_subset import RandomOnline, RandomStatic

SELECTORS: Registry[type[SubsetSelector]] = Registry.collect("selector", SubsetSelector, vars())
MINERS: Registry[type[BatchMiner]] = Registry.collect("miner", BatchMiner, vars())

__all__ = ["MINERS", "SELECTORS", "BulletTrain", "CoresetCRAIG", "CoresetGradMatch", "Full",
           "Glister", "InfoBatch", "Method", "MethodKeys", "Prune", "RandomOnline", "RandomStatic",
           "build_method", "build_methods", "build_miner", "build_selector"]


def build_selector(name: str, fraction: float, seed: int, options: Any = None,
                   inputs: Mapping[str, Any] | None = None) -> SubsetSelector:
    """Selector ``name`` with its options and the pipeline inputs it declares it ``needs``."""
    cls = SELECTORS.lookup(name)
    inputs = inputs or {}
    missing = [n for n in cls.needs if inputs.get(n) is None]
    if missing:
        raise InputError(f"selector {name} needs the {missing[0]} input, which was not given")
    return cls(fraction, seed, options, **{n: inputs[n] for n in cls.needs})


def build_miner(name: str, options: Any = None) -> BatchMiner:
    """Miner ``name`` with its options."""
    return MINERS.lookup(name)(options)


@dataclass(frozen=True)
class MethodKeys:
    """The keys every entry of ``methods`` may set; the rest are its selector's and miner's own
    options. Unset attack keys (empty / 0) inherit from the ``attack`` section."""

    selector: str = _p("full", choices=SELECTORS.names, doc="which examples, each epoch")
    fraction: float = _p(1.0, lo=0.0, hi=1.0, lo_open=True, doc="per-epoch data budget")
    miner: str = _p("none", choices=MINERS.names, doc="how much attack each example gets")
    attack: str = _p("", choices=("", *ATTACKS.names), doc="training attack (default: "
                                                           "attack.name)")
    alpha: float = _p(0.0, lo=0.0, doc="0 = attack.alpha")
    steps: int = _p(0, lo=0, doc="0 = attack.steps")
    budget: float = _p(0.0, lo=0.0, doc="0 = train for train.epochs; else the example-passes "
                                        "to spend, as a share of full-data training's at "
                                        "train.epochs (the LR schedule anneals to it)")
    ema: float = _p(0.0, lo=0.0, hi=0.99999, doc="weight averaging: the decay per step of an EMA "
                                                "of the weights and batch-norm buffers, which "
                                                "is validated, saved and evaluated (e.g. "
                                                "0.999); 0 = off")


@dataclass(frozen=True)
class Method:
    """One entry of ``methods``, resolved: exactly what its ``train@`` branches train, and what
    the training metrics record (the report reads the record, never the current params)."""

    selector: str
    fraction: float
    selector_options: Any
    miner: str
    miner_options: Any
    attack: AttackConfig
    budget: float = 0.0
    ema: float = 0.0


def build_method(raw: Any, prefix: str, attack: AttackConfig) -> Method:
    """Validate one ``methods`` entry: its common keys, then the rest against the ``Options``
    of the selector and the miner it names, and what those classes and the attack say about
    the common keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix}: must be a mapping of keys to values")
    common = [f.name for f in dataclasses.fields(MethodKeys)]
    keys = build(MethodKeys, {k: v for k, v in raw.items() if k in common}, prefix)
    selector_cls, miner_cls = SELECTORS[keys.selector], MINERS[keys.miner]
    sel_keys = [f.name for f in dataclasses.fields(selector_cls.Options)]
    miner_keys = [f.name for f in dataclasses.fields(miner_cls.Options)]
    unknown = sorted(str(k) for k in raw if k not in (*common, *sel_keys, *miner_keys))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key; allowed: "
                          f"{', '.join([*common, *sel_keys, *miner_keys])}")
    if not selector_cls.uses_fraction and keys.fraction != 1.0:
        raise ConfigError(f"{prefix}.fraction = {keys.fraction:g}: selector {keys.selector} "
                          "trains on all data; leave fraction out")
    name = keys.attack or attack.name
    for key in ATTACKS[name].fixed:
        if key in raw:
            raise ConfigError(f"{prefix}.{key} = {raw[key]}: the {name} attack fixes its {key}; "
                              "leave it out")
    sel_opts = build(selector_cls.Options, {k: raw[k] for k in sel_keys if k in raw}, prefix)
    miner_opts = build(miner_cls.Options, {k: raw[k] for k in miner_keys if k in raw}, prefix)
    check = getattr(sel_opts, "check_fraction", None)
    if check is not None:  # options that constrain the common fraction (a coreset's pool)
        check(keys.fraction, prefix)
    resolved = dataclasses.replace(attack, name=name, alpha=keys.alpha or attack.alpha,
                                   steps=keys.steps or attack.steps)
    return Method(selector=keys.selector, fraction=keys.fraction, selector_options=sel_opts,
                  miner=keys.miner, miner_options=miner_opts, attack=resolved,
                  budget=keys.budget, ema=keys.ema)


def build_methods(raw: Any, loaded: Mapping[str, Any]) -> dict[str, Method]:
    """The ``methods`` section: every entry resolved against the ``attack`` section (which must
    be loaded first) and checked against ``train.epochs`` when the stage loaded ``train``."""
    methods = raw or {}
    if not isinstance(methods, dict):
        raise ConfigError("methods: must be a mapping of names to settings")
    attack = loaded.get("attack") or AttackConfig()
    train = loaded.get("train")
    resolved = {}
    for name, body in methods.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(f"methods.{name}: names use letters, digits, '-' and '_'")
        m = build_method(body, f"methods.{name}", attack)
        if m.budget and train is not None and train.epochs == 0:
            raise ConfigError(f"train.epochs = 0: must be > 0 for methods.{name}.budget (the "
                              "budget is a share of full-data training at train.epochs)")
        resolved[name] = m
    return resolved
