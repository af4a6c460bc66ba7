"""What every ``stages/*.py`` script shares: common flags and one-line errors.

A user error (bad params, missing or corrupt data, incompatible inputs) prints ``error: …`` on
one line and exits with status 2, before any output is written; bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from robustprune.errors import USER_ERRORS, ConfigError


class StageParser(argparse.ArgumentParser):
    """An argument parser whose path flags default to the pipeline's own layout (dvc.yaml's
    paths for the run's seed and method), so that ``python stages/train.py --method full``
    reads and writes what ``dvc repro`` does. The seed (and method) come from params when not
    given, so the defaults are filled in by :meth:`fill` once params are loaded."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout: dict[str, str] = {}

    def path(self, flag: str, pattern: str, help: str = "") -> None:
        """A path flag defaulting to ``pattern`` with {seed} and {method} filled in."""
        dest = flag.lstrip("-").replace("-", "_")
        self.layout[dest] = pattern
        shown = pattern.replace("{seed}", "<seed>").replace("{method}", "<method>")
        self.add_argument(flag, type=Path, default=None,
                          help=f"{help + ' ' if help else ''}(default: {shown})")

    def fill(self, args: argparse.Namespace, seed: int, method: str | None = None) -> None:
        """Set every path flag the user did not give from the layout."""
        for dest, pattern in self.layout.items():
            if getattr(args, dest) is None:
                setattr(args, dest, Path(pattern.format(seed=seed, method=method)))


WARMUP_MODEL = "models/warmup-s{seed}.pt"
"""The warm-up model of a seed, as dvc.yaml lays it out (read by scoring and train)."""


def parser(description: str | None, *, compute: bool = False,
           init: bool = False) -> StageParser:
    """``--params``; with ``compute`` also ``--device``, ``--seed`` and ``--data`` (stages that
    train or attack a model); with ``init`` also ``--init`` (stages that start from the
    warm-up model)."""
    p = StageParser(description=description,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: %(default)s)")
    if compute:
        add_device(p)
        add_seed(p)
        p.add_argument("--data", type=Path, default=Path("data/prepared/dataset.npz"),
                       help="the prepare stage's output (default: %(default)s)")
    if init:
        p.path("--init", WARMUP_MODEL, "the warm-up model")
    return p


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, … "
                        "(default: %(default)s)")


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None,
                   help="the training seed of this run (default: the first of `seeds`)")


def seed_of(arg: int | None, params: Any) -> int:
    """The run's seed: ``--seed`` or, without it, the first entry of ``seeds``."""
    if arg is None:
        return params.seeds[0]
    if arg < 0:
        raise ConfigError(f"--seed = {arg}: must be >= 0")
    return arg


def method_of(arg: str | None, params: Any) -> str:
    """The run's method: ``--method`` or, without it, the first entry of ``methods``."""
    if arg is not None:
        params.method(arg)  # a one-line error naming the defined methods
        return arg
    if not params.methods:
        raise ConfigError("methods: no methods defined in params")
    return next(iter(params.methods))


def distributed_device(name: str) -> torch.device:
    """The device of this process (``--device``), joining the torchrun process group when
    torchrun started it (one GPU per local rank on CUDA, gloo on CPU); plain ``python`` runs a
    single process as before. :func:`run` leaves the group at the end."""
    from robustprune import distributed

    try:
        return distributed.setup(distributed.resolve_device(name))[1]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run(fn: Callable[[], Any]) -> int:
    """Run a stage: a user error is one line on stderr (from rank 0 only under torchrun, where
    every rank meets it) and exit status 2."""
    from robustprune import distributed

    try:
        fn()
    except USER_ERRORS as exc:
        if distributed.env_world().main:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    return 0
