"""Typed, validated pipeline parameters.

Every stage reads ``params.yaml`` through :func:`load_params`. The schema lives here, once, as
dataclasses whose fields carry their constraints, so that a typo or an out-of-range value is
rejected with a one-line message *before* any compute runs and before any output is touched.
Keys are flat scalars (or flat lists of numbers) inside a section so ``dvc exp run -S
section.key=value`` always works.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml


class ConfigError(ValueError):
    """A bad parameter; the message is one line naming the key, the value and what is allowed."""


def _p(default: Any, *, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, choices: tuple[str, ...] | None = None, doc: str = "") -> Any:
    """A field with its constraint: ``lo``/``hi`` bounds (``lo_open`` makes ``lo`` exclusive)."""
    return field(default=default, metadata={
        "lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices, "doc": doc})


DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "npz", "folder")
ARCHS = ("smallcnn", "preact-resnet18", "wideresnet")
NORMS = ("linf", "l2")
ATTACKS = ("pgd", "fgsm-rs", "n-fgsm")
OBJECTIVES = ("pgd-at", "trades", "mart")
SCHEDULES = ("piecewise", "onecycle", "constant")
AUGMENTS = ("none", "crop-flip", "crop")


@dataclass(frozen=True)
class DataConfig:
    name: str = _p("fashion-mnist", choices=DATASET_NAMES)
    seed: int = _p(0, lo=0, doc="validation split and training subset; shared by every seed so "
                               "all runs train, validate and test on the same examples")
    path: str = _p("", doc="file (npz) or directory (folder, or an override of data/raw/<name>)")
    val_size: int = _p(5000, lo=0)
    train_size: int = _p(0, lo=0, doc="0 = all remaining training examples")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = _p("smallcnn", choices=ARCHS)
    wrn_depth: int = _p(28, lo=10)
    wrn_width: int = _p(10, lo=1)


@dataclass(frozen=True)
class AttackConfig:
    """The threat model (norm, eps) and the attack used *during training*."""

    norm: str = _p("linf", choices=NORMS)
    eps: float = _p(0.1, lo=0.0)
    name: str = _p("pgd", choices=ATTACKS)
    alpha: float = _p(0.02, lo=0.0, lo_open=True)
    steps: int = _p(10, lo=1)


@dataclass(frozen=True)
class ObjectiveConfig:
    name: str = _p("pgd-at", choices=OBJECTIVES)
    beta: float = _p(6.0, lo=0.0)


@dataclass(frozen=True)
class OptimConfig:
    """One training phase (warm-up or robust training): SGD with momentum and an LR schedule."""

    epochs: int = _p(1, lo=0)
    batch_size: int = _p(128, lo=1)
    lr: float = _p(0.05, lo=0.0, lo_open=True)
    momentum: float = _p(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _p(5e-4, lo=0.0)
    schedule: str = _p("onecycle", choices=SCHEDULES)
    augment: str = _p("none", choices=AUGMENTS)
    val_n: int = _p(1000, lo=0, doc="validation examples scored after each epoch; 0 = all")


MINING = ("none", "bullettrain")
SCORES = ("adv_loss", "el2n", "grand", "forgetting")
KEEP = ("hardest", "easiest")


@dataclass(frozen=True)
class SelectConfig:
    """Which examples are trained on (``method``) and how much attack each gets (``mining``)."""

    method: str = _p("full", doc="a subset selector registered in robustprune.selection")
    fraction: float = _p(1.0, lo=0.0, hi=1.0, lo_open=True)
    mining: str = _p("none", choices=MINING)
    bt_gamma: float = _p(0.8, lo=0.0, hi=1.0)
    bt_robust_steps: int = _p(2, lo=0)
    bt_robust_step_factor: float = _p(3.0, lo=0.0, lo_open=True)
    coreset_warm: float = _p(0.5, lo=0.0, hi=0.99, doc="share of epochs on full data first")
    coreset_every: int = _p(2, lo=1, doc="epochs between coreset reselections")
    coreset_features: bool = _p(True, doc="gradients include penultimate features")
    score: str = _p("adv_loss", choices=SCORES, doc="score method: which score ranks examples")
    keep: str = _p("hardest", choices=KEEP, doc="score method: which end is kept")


@dataclass(frozen=True)
class MethodConfig:
    """One entry of ``methods``: overrides of ``select`` and of the training attack.

    Unset keys (empty string / 0) inherit from the ``select`` and ``attack`` sections, so an
    entry names only what makes the method different, e.g. ``{method: random-online,
    fraction: 0.3}`` or ``{mining: bullettrain, attack: fgsm-rs, alpha: 0.125}``.
    """

    method: str = _p("", doc="subset selector (default: select.method)")
    fraction: float = _p(0.0, lo=0.0, hi=1.0, doc="0 = select.fraction")
    mining: str = _p("", choices=("", *MINING))
    attack: str = _p("", choices=("", *ATTACKS), doc="training attack (default: attack.name)")
    alpha: float = _p(0.0, lo=0.0, doc="0 = attack.alpha")
    steps: int = _p(0, lo=0, doc="0 = attack.steps")
    score: str = _p("", choices=("", *SCORES), doc="score method: default select.score")
    keep: str = _p("", choices=("", *KEEP), doc="score method: default select.keep")


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation tiers (sizes count test examples from the start; 0 = all) and the checks.

    Tier 1, PGD-k on ``n_pgd`` examples, is the paired comparison metric (cheap enough for the
    whole test set). Tier 2, the reference AutoAttack (standard version) on the first
    ``n_autoattack``, is the trusted figure and checks that tier 1 does not over-state.
    """

    n_clean: int = _p(0, lo=0, doc="0 = whole test set")
    n_pgd: int = _p(0, lo=0, doc="0 = whole test set")
    pgd_steps: int = _p(20, lo=1)
    pgd_restarts: int = _p(1, lo=1)
    n_autoattack: int = _p(200, lo=0, doc="first n test examples; 0 skips AutoAttack")
    autoattack_chunk: int = _p(100, lo=1, doc="examples per resumable AutoAttack chunk")
    trust_gap: float = _p(0.005, lo=0.0, doc="flag when AutoAttack is this far below PGD on "
                                             "the same examples")
    n_curve: int = _p(1000, lo=0, doc="examples for the accuracy-vs-eps curve; 0 skips it")
    eps_factors: tuple[float, ...] = _p((0.5, 1.0, 2.0, 4.0), lo=0.0, lo_open=True,
                                        doc="curve points, as multiples of attack.eps")
    curve_zero: float = _p(0.05, lo=0.0, hi=1.0, doc="accuracy at the largest eps must be <=")
    chance_margin: float = _p(0.1, lo=0.0, hi=1.0, doc="clean accuracy must beat the majority "
                                                       "class rate by this much")
    collapse_ratio: float = _p(0.5, lo=0.0, hi=1.0, doc="flag clean accuracy below this "
                                                        "share of the clean-trained model's")
    overfit_drop: float = _p(0.2, lo=0.0, hi=1.0, doc="flag a fall of validation PGD accuracy "
                                                      "this far below its best epoch")
    batch_size: int = _p(500, lo=1)


@dataclass(frozen=True)
class Params:
    seeds: tuple[int, ...] = _p((0,), lo=0, doc="one training run per seed (warm-up init, data "
                                                "order, attack starts, subset choice)")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    warmup: OptimConfig = field(default_factory=OptimConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    methods: dict[str, MethodConfig] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def for_method(self, name: str) -> Params:
        """These params with method ``name``'s overrides applied to ``select`` and ``attack``."""
        if name not in self.methods:
            allowed = ", ".join(self.methods) or "none defined"
            raise ConfigError(f"methods.{name}: no such method in params; defined: {allowed}")
        m = self.methods[name]
        select = dataclasses.replace(
            self.select, method=m.method or self.select.method,
            fraction=m.fraction or self.select.fraction, mining=m.mining or self.select.mining,
            score=m.score or self.select.score, keep=m.keep or self.select.keep)
        attack = dataclasses.replace(
            self.attack, name=m.attack or self.attack.name, alpha=m.alpha or self.attack.alpha,
            steps=m.steps or self.attack.steps)
        return dataclasses.replace(self, select=select, attack=attack)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _check_value(key: str, value: Any, typ: type, meta: dict[str, Any]) -> Any:
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
        raise ConfigError(f"{key} = {shown}: must be one of {', '.join(choices)}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        bound = f"> {lo:g}" if meta.get("lo_open") else f">= {lo:g}"
        if hi is not None:
            bound += f" and <= {hi:g}"
        raise ConfigError(f"{key} = {shown}: must be {bound}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key} = {shown}: must be <= {hi:g}")
    return value


def _check_list(key: str, value: Any, item_type: type, meta: dict[str, Any]) -> tuple[Any, ...]:
    """A non-empty list of distinct scalars, each checked like a scalar key."""
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{key} = {value!r}: must be a non-empty list")
    items = tuple(_check_value(f"{key}[{i}]", v, item_type, meta) for i, v in enumerate(value))
    if len(set(items)) != len(items):
        raise ConfigError(f"{key} = {list(value)!r}: must not repeat a value")
    return items


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and bad values."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'params'}: must be a mapping of keys to values")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(raw) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, value, key)
        elif typing.get_origin(typ) is tuple:
            kwargs[name] = _check_list(key, value, typing.get_args(typ)[0],
                                       dict(fields[name].metadata))
        elif typing.get_origin(typ) is dict:
            item_type = typing.get_args(typ)[1]
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: must be a mapping of names to settings")
            kwargs[name] = {}
            for item, body in value.items():
                if not isinstance(item, str) or not _NAME.fullmatch(item):
                    raise ConfigError(f"{key}.{item}: names use letters, digits, '-' and '_'")
                kwargs[name][item] = _build(item_type, body or {}, f"{key}.{item}")
        else:
            kwargs[name] = _check_value(key, value, typ, dict(fields[name].metadata))
    return cls(**kwargs)


def _cross_checks(p: Params) -> None:
    """Constraints that involve more than one key."""
    if p.model.arch == "wideresnet" and (p.model.wrn_depth - 4) % 6 != 0:
        raise ConfigError(f"model.wrn_depth = {p.model.wrn_depth}: must be 6k+4 (e.g. 16, 28, 34)")
    if p.data.name in ("npz", "folder") and not p.data.path:
        raise ConfigError(f'data.path = "": required when data.name is {p.data.name}')
    if p.attack.norm == "linf" and p.attack.eps > 1.0:
        raise ConfigError(f"attack.eps = {p.attack.eps}: must be <= 1 for linf on [0,1] inputs")
    from robustprune.selection import SELECTORS  # late import: selection imports config

    allowed = ", ".join(sorted(SELECTORS))
    if p.select.method not in SELECTORS:
        raise ConfigError(f'select.method = "{p.select.method}": must be one of {allowed}')
    for name, m in p.methods.items():
        if m.method and m.method not in SELECTORS:
            raise ConfigError(f'methods.{name}.method = "{m.method}": must be one of {allowed}')


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Validate a parsed params mapping (missing keys take the documented defaults)."""
    params = _build(Params, raw, "")
    _cross_checks(params)
    return params


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


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raises :class:`ConfigError` with a one-line message."""
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
    return params_from_dict(raw)


def as_dict(obj: Any) -> Any:
    """Plain-dict view of a config (for hashing, logging and JSON metrics)."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def fingerprint(*parts: Any) -> str:
    """Stable short hash of JSON-able parts: keys resume checkpoints to exactly these inputs."""
    blob = json.dumps([as_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
