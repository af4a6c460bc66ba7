"""Saved models as the stages read them: checked against the data (and, to train further,
against the ``model`` section) before any compute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from robustprune.data import Splits
from robustprune.errors import InputError
from robustprune.models import ARCHS, model_from_payload, model_spec, read_model_file


def check_model_fits(params: Any, splits: Splits) -> None:
    _, h, w = splits.shape
    need = ARCHS[params.model.arch].min_image_size
    if min(h, w) < need:
        raise InputError(f"model.arch = {params.model.arch} needs images >= {need} px; "
                         f"{splits.name} is {h}x{w}")


def spec_for(params: Any, splits: Splits) -> dict[str, Any]:
    c, h, _ = splits.shape
    return model_spec(params.model.arch, in_channels=c, num_classes=splits.num_classes,
                      image_size=h, mean=splits.mean, std=splits.std,
                      wrn_depth=params.model.wrn_depth, wrn_width=params.model.wrn_width)


def _read_model(path: Path, expected: dict[str, Any], keys: tuple[str, ...],
                what: str) -> tuple[nn.Module, dict[str, Any]]:
    """A saved model whose spec matches ``expected`` on ``keys``, before any compute."""
    try:
        payload = read_model_file(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    spec = dict(payload.get("spec", {}))
    for key in keys:
        if spec.get(key) != expected[key]:
            raise InputError(f"{path}: built with {key} = {spec.get(key)} but the current "
                             f"{what} need {expected[key]}; rerun the warmup stage")
    try:
        return model_from_payload(payload, path), spec
    except ValueError as exc:
        raise InputError(str(exc)) from None


def load_trained(path: Path, params: Any, splits: Splits) -> tuple[nn.Module, dict[str, Any]]:
    """A model to train further: it must be the current params' architecture for this data."""
    return _read_model(path, spec_for(params, splits),
                       ("arch", "in_channels", "num_classes", "image_size"), "params/data")


def load_for_data(path: Path, splits: Splits) -> nn.Module:
    """A model to evaluate: any architecture, as long as it fits the data's images and classes
    (so evaluation reads no model params)."""
    c, h, _ = splits.shape
    expected = {"in_channels": c, "num_classes": splits.num_classes, "image_size": h}
    return _read_model(path, expected, tuple(expected), "data")[0]
