"""The whole ``params.yaml`` at once: every section, typed and validated.

The stages do not use this module: each loads only the sections it reads through
:mod:`robustprune.params`, so that it depends on that code alone. This one is for what needs
the whole file: ``python -m robustprune.config [params.yaml]`` validates every section in a
second (before a long ``dvc repro``), the tests, and the benchmark scripts. Allowed names come
from the registries next to each section, so nothing here repeats a name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustprune.attacks import AttackConfig
from robustprune.data import DataConfig
from robustprune.data.corrupted import CIFAR_C, CorruptionsConfig
from robustprune.errors import ConfigError
from robustprune.evaluation import EvalConfig
from robustprune.models import ModelConfig
from robustprune.objectives import ObjectiveConfig
from robustprune.optim import OptimConfig
from robustprune.params import Section, method_entry, read_params
from robustprune.params import params_from_dict as _load_sections
from robustprune.report import ReportConfig
from robustprune.scale import ScaleConfig
from robustprune.schema import as_dict
from robustprune.schema import param as _p
from robustprune.selection.registry import SELECTORS, Method, MethodKeys, build_methods

__all__ = ["SECTIONS", "AttackConfig", "ConfigError", "CorruptionsConfig", "DataConfig",
           "EvalConfig", "Method", "MethodKeys", "ModelConfig", "ObjectiveConfig",
           "OptimConfig", "Params", "ReportConfig", "ScaleConfig", "as_dict", "load_params",
           "params_from_dict"]

SECTIONS: dict[str, Section] = {
    "data": DataConfig, "model": ModelConfig, "attack": AttackConfig,
    "objective": ObjectiveConfig, "warmup": OptimConfig, "train": OptimConfig,
    "methods": build_methods, "eval": EvalConfig, "corruptions": CorruptionsConfig,
    "report": ReportConfig, "scale": ScaleConfig}
"""Every section of the file, in an order where a section comes after those it reads."""


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
        return method_entry(self.methods, name)


def _cross_checks(p: Params) -> None:
    """Constraints between sections that no single stage sees whole (each stage checks the
    part it can against its inputs too, e.g. the train stage an empty validation split)."""
    source = p.corruptions.source
    if source in CIFAR_C and CIFAR_C[source].dataset != p.data.name:
        raise ConfigError(f"corruptions.source = {source}: corrupts the "
                          f"{CIFAR_C[source].dataset} test set, but data.name is {p.data.name} "
                          "(use generated)")
    for name, m in p.methods.items():
        if SELECTORS[m.selector].needs_val and p.data.val_size == 0:
            raise ConfigError(f"data.val_size = 0: must be > 0 for methods.{name} (selector "
                              f"{m.selector} selects against the validation split)")


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Validate a parsed params mapping (missing keys take the documented defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError("params: must be a mapping of keys to values")
    unknown = sorted(str(k) for k in raw if k not in SECTIONS and k != "seeds")
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key; allowed: seeds, {', '.join(SECTIONS)}")
    loaded = _load_sections(raw, SECTIONS)
    params = Params(seeds=loaded.seeds, **loaded.sections)
    _cross_checks(params)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole of ``params.yaml``; one-line :class:`ConfigError`."""
    return params_from_dict(read_params(path))


def main(argv: list[str] | None = None) -> int:
    """``python -m robustprune.config [params.yaml]``: validate every section, or say why not."""
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "params.yaml"
    try:
        p = load_params(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: valid ({len(p.methods)} methods x {len(p.seeds)} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
