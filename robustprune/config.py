"""The pipeline's parameters: the sections of ``params.yaml``, typed and validated.

Every stage reads ``params.yaml`` through :func:`load_params`. Allowed names come from the
registries (``data.name`` from :data:`robustprune.data.DATASETS`, ``model.arch`` from
:data:`robustprune.models.ARCHS`, a method's ``selector`` from
:data:`robustprune.selection.SELECTORS`, …), and a selector's or miner's own keys from its
``Options`` section, so nothing here repeats a name. A typo or an out-of-range value is
rejected with a one-line :class:`ConfigError` before any compute runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robustprune.attacks import ATTACKS, NORMS
from robustprune.augmentations import AUGMENTS
from robustprune.data import DATASETS
from robustprune.data.corrupted import CIFAR_C, CORRUPTED_SOURCES
from robustprune.errors import ConfigError
from robustprune.fast import PRECISIONS
from robustprune.models import ARCHS
from robustprune.objectives import OBJECTIVES
from robustprune.schedules import SCHEDULES
from robustprune.schema import NAME, as_dict, build
from robustprune.schema import param as _p
from robustprune.selection import MINERS, SELECTORS

__all__ = ["ConfigError", "Method", "Params", "as_dict", "fingerprint", "load_params",
           "params_from_dict"]


@dataclass(frozen=True)
class DataConfig:
    name: str = _p("fashion-mnist", choices=DATASETS.names)
    seed: int = _p(0, lo=0, doc="validation split and training subset; shared by every seed so "
                               "all runs train, validate and test on the same examples")
    path: str = _p("", doc="file (npz) or directory (folder, or an override of data/raw/<name>)")
    val_size: int = _p(5000, lo=0)
    train_size: int = _p(0, lo=0, doc="0 = all remaining training examples")
    test_size: int = _p(0, lo=0, doc="held out (stratified) from the training data when the "
                                     "dataset has no test set; ignored when it has one")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = _p("smallcnn", choices=ARCHS.names)
    wrn_depth: int = _p(28, lo=10)
    wrn_width: int = _p(10, lo=1)


@dataclass(frozen=True)
class AttackConfig:
    """The threat model (norm, eps) and the attack used *during training*."""

    norm: str = _p("linf", choices=NORMS)
    eps: float = _p(0.1, lo=0.0, lo_open=True)
    name: str = _p("pgd", choices=ATTACKS.names)
    alpha: float = _p(0.02, lo=0.0, lo_open=True)
    steps: int = _p(10, lo=1)


@dataclass(frozen=True)
class ObjectiveConfig:
    name: str = _p("pgd-at", choices=OBJECTIVES.names)
    beta: float = _p(6.0, lo=0.0, doc="trades / mart robust-term weight")
    jsd_lambda: float = _p(12.0, lo=0.0, doc="augmix: weight of the Jensen-Shannon term")
    mix_severity: int = _p(3, lo=1, hi=10, doc="augmix: strength of each operation")
    mix_width: int = _p(3, lo=1, doc="augmix: augmentation chains mixed into a view")
    mix_depth: int = _p(-1, lo=-1, doc="augmix: operations per chain; -1 = random 1-3")
    mix_alpha: float = _p(1.0, lo=0.0, lo_open=True, doc="augmix: Dirichlet/Beta parameter")
    mix_views: int = _p(2, lo=1, doc="augmix: augmented views per example (the paper: 2)")


@dataclass(frozen=True)
class OptimConfig:
    """One training phase (warm-up or robust training): SGD with momentum and an LR schedule."""

    epochs: int = _p(1, lo=0)
    batch_size: int = _p(128, lo=1)
    lr: float = _p(0.05, lo=0.0, lo_open=True)
    momentum: float = _p(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _p(5e-4, lo=0.0)
    schedule: str = _p("onecycle", choices=SCHEDULES.names)
    augment: str = _p("none", choices=AUGMENTS.names)
    val_n: int = _p(1000, lo=0, doc="validation examples scored after each epoch; 0 = all")
    co_drop: float = _p(0.2, lo=0.0, hi=1.0, doc="catastrophic overfitting: an epoch whose "
                                                 "validation PGD accuracy falls this far below "
                                                 "the best earlier epoch's is flagged")
    co_rollback: bool = _p(False, doc="on such a collapse, stop and keep the best epoch's "
                                      "weights (early stopping, as fast adversarial training "
                                      "does)")


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
    target_drop: float = _p(0.01, lo=0.0, hi=1.0, doc="time-to-accuracy target: the baseline's "
                                                      "final validation PGD accuracy minus this")
    batch_size: int = _p(500, lo=1)


@dataclass(frozen=True)
class ReportConfig:
    """How the report stage presents the runs (no evaluation depends on it)."""

    pareto_axis: str = _p("adversarial", choices=("adversarial", "corruption"),
                          doc="the Pareto plot's robustness axis: AutoAttack-calibrated "
                              "accuracy, or mean common-corruption accuracy")


@dataclass(frozen=True)
class CorruptionsConfig:
    """The common-corruption test set every evaluation adds (the ``corrupt`` stage)."""

    source: str = _p("generated", choices=CORRUPTED_SOURCES,
                     doc="generated: the 15 corruptions x 5 severities made from the test set; "
                         "cifar10-c / cifar100-c: the official archives")
    n: int = _p(2000, lo=0, doc="first n test examples; 0 = all")
    seed: int = _p(0, lo=0, doc="the generated corruptions' random draws")
    path: str = _p("", doc="cifar*-c: directory holding the archive (default data/raw/<source>)")


@dataclass(frozen=True)
class ScaleConfig:
    """How a run uses its hardware: processes (torchrun data parallelism) and the GPU path.

    The GPU settings apply on CUDA only, so one params file runs anywhere and the CPU path is
    unchanged; what a run actually used is recorded in its metrics (``runtime``)."""

    nproc: int = _p(1, lo=1, doc="processes per warm-up/scoring/train run (torchrun, one per "
                                 "GPU; gloo on CPU); 1 = a plain single process")
    precision: str = _p("fp32", choices=tuple(PRECISIONS), doc="cuda: bf16 autocast for training's "
                                                         "forwards (attacks included)")
    channels_last: bool = _p(False, doc="cuda: channels-last memory format for the model "
                                        "and its inputs during training")
    compile: bool = _p(False, doc="cuda: torch.compile the model for training")


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
    methods: dict[str, Method] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    corruptions: CorruptionsConfig = field(default_factory=CorruptionsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)

    def method(self, name: str) -> Method:
        """The resolved entry ``methods.<name>``."""
        if name not in self.methods:
            allowed = ", ".join(self.methods) or "none defined"
            raise ConfigError(f"methods.{name}: no such method in params; defined: {allowed}")
        return self.methods[name]


def build_method(raw: Any, prefix: str, attack: AttackConfig) -> Method:
    """Validate one ``methods`` entry: its common keys, then the rest against the ``Options``
    of the selector and the miner it names (so a new selector's keys need no edit here), and
    what those classes and the attack say about the common keys."""
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
    resolved = dataclasses.replace(attack, name=name, alpha=keys.alpha or attack.alpha,
                                   steps=keys.steps or attack.steps)
    return Method(selector=keys.selector, fraction=keys.fraction, selector_options=sel_opts,
                  miner=keys.miner, miner_options=miner_opts, attack=resolved,
                  budget=keys.budget)


def _cross_checks(p: Params) -> None:
    """Constraints that involve more than one key (each owner states its own)."""
    ARCHS[p.model.arch].check_params(p.model)
    if DATASETS[p.data.name].needs_path and not p.data.path:
        raise ConfigError(f'data.path = "": required when data.name is {p.data.name}')
    if p.attack.norm == "linf" and p.attack.eps > 1.0:
        raise ConfigError(f"attack.eps = {p.attack.eps}: must be <= 1 for linf on [0,1] inputs")
    if p.objective.mix_depth == 0:
        raise ConfigError("objective.mix_depth = 0: must be -1 (random 1-3 per chain) or >= 1")
    source = p.corruptions.source
    if source in CIFAR_C and CIFAR_C[source].dataset != p.data.name:
        raise ConfigError(f"corruptions.source = {source}: corrupts the "
                          f"{CIFAR_C[source].dataset} test set, but data.name is {p.data.name} "
                          "(use generated)")
    for name, m in p.methods.items():
        if m.budget and p.train.epochs == 0:
            raise ConfigError(f"train.epochs = 0: must be > 0 for methods.{name}.budget (the "
                              "budget is a share of full-data training at train.epochs)")
        if SELECTORS[m.selector].needs_val and p.data.val_size == 0:
            raise ConfigError(f"data.val_size = 0: must be > 0 for methods.{name} (selector "
                              f"{m.selector} selects against the validation split)")


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Validate a parsed params mapping (missing keys take the documented defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError("params: must be a mapping of keys to values")
    params = build(Params, {k: v for k, v in raw.items() if k != "methods"}, "")
    methods = raw.get("methods") or {}
    if not isinstance(methods, dict):
        raise ConfigError("methods: must be a mapping of names to settings")
    resolved = {}
    for name, body in methods.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(f"methods.{name}: names use letters, digits, '-' and '_'")
        resolved[name] = build_method(body, f"methods.{name}", params.attack)
    params = dataclasses.replace(params, methods=resolved)
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


def fingerprint(*parts: Any) -> str:
    """Stable short hash of JSON-able parts: keys resume checkpoints to exactly these inputs."""
    blob = json.dumps([as_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
