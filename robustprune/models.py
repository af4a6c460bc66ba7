"""Model zoo and the saved-model contract.

Every model takes images in [0, 1] and normalises inside (the RobustBench convention), so an
attack's epsilon-ball and [0,1] box are in input space and any attack library can evaluate a
saved model without robustprune's code: ``load_model(path)`` returns a plain ``nn.Module`` in
eval mode that maps [0,1] images to logits.

Saved files hold only tensors and plain Python values (no pickled classes), and are read with
``torch.load(weights_only=True)``, so a model file from elsewhere cannot run code on load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robustprune import distributed
from robustprune.atomic import atomic_torch_save
from robustprune.errors import ConfigError
from robustprune.registry import Registry
from robustprune.schema import param as _p

FORMAT = "robustprune-model-v1"


class Normalize(nn.Module):
    """Per-channel standardisation as the first layer, so the model's input space is [0,1]."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Arch(nn.Module):
    """An architecture of the registry: builds itself from the data's shape and the ``model``
    section, and states the constraints it puts on them."""

    name: ClassVar[str] = ""
    min_image_size: ClassVar[int] = 1

    @classmethod
    def from_spec(cls, in_channels: int, num_classes: int, image_size: int, wrn_depth: int,
                  wrn_width: int) -> nn.Module:
        return cls(in_channels, num_classes)  # type: ignore[call-arg]

    @classmethod
    def check_params(cls, cfg: Any) -> None:
        """Constraints on the ``model`` section (raise :class:`ConfigError`)."""
        del cfg


class RowDropout(nn.Module):
    """Dropout whose mask is drawn through :mod:`robustprune.distributed`: a data-parallel
    rank draws the mask rows one process draws for the same examples (``nn.Dropout``'s own
    draw depends on the shard). Same function and no state, so saved models are unchanged."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = distributed.rand_like(x) >= self.p
        return x * keep / (1.0 - self.p)


class SmallCNN(Arch):
    """The TRADES MNIST architecture (4 conv + 3 FC); flatten size follows the input size."""

    name = "smallcnn"
    min_image_size = 14

    @classmethod
    def from_spec(cls, in_channels: int, num_classes: int, image_size: int, wrn_depth: int,
                  wrn_width: int) -> nn.Module:
        return cls(in_channels, num_classes, image_size)

    def __init__(self, in_channels: int, num_classes: int, image_size: int, drop: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"smallcnn needs images of at least 14 pixels, got {image_size}")
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 200), nn.ReLU(), RowDropout(drop),
            nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(Arch):
    name = "preact-resnet18"

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.layers(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class WideResNet(Arch):
    """WRN-depth-width (Zagoruyko & Komodakis), as used by TRADES/MART on CIFAR; its blocks are
    the pre-activation blocks of PreActResNet18."""

    name = "wideresnet"

    @classmethod
    def from_spec(cls, in_channels: int, num_classes: int, image_size: int, wrn_depth: int,
                  wrn_width: int) -> nn.Module:
        return cls(in_channels, num_classes, wrn_depth, wrn_width)

    @classmethod
    def check_params(cls, cfg: Any) -> None:
        if (cfg.wrn_depth - 4) % 6 != 0:
            raise ConfigError(f"model.wrn_depth = {cfg.wrn_depth}: must be 6k+4 (e.g. 16, 28, 34)")

    def __init__(self, in_channels: int, num_classes: int, depth: int, width: int) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"wideresnet depth must be 6k+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * width, 32 * width, 64 * width)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, cin = [], widths[0]
        for cout, stride in zip(widths[1:], (1, 2, 2), strict=True):
            for i in range(n):
                blocks.append(PreActBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


ARCHS: Registry[type[Arch]] = Registry("model.arch", [SmallCNN, PreActResNet18, WideResNet])


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: the architecture every stage that builds a model uses."""

    arch: str = _p("smallcnn", choices=ARCHS.names)
    wrn_depth: int = _p(28, lo=10)
    wrn_width: int = _p(10, lo=1)

    def __post_init__(self) -> None:
        ARCHS[self.arch].check_params(self)


def build_model(arch: str, *, in_channels: int, num_classes: int, image_size: int,
                mean: tuple[float, ...], std: tuple[float, ...],
                wrn_depth: int = 28, wrn_width: int = 10) -> nn.Sequential:
    """A ``Normalize -> network`` model for [0,1] inputs."""
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(f"mean/std need {in_channels} channel values")
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(ARCHS)}")
    net = ARCHS[arch].from_spec(in_channels, num_classes, image_size, wrn_depth, wrn_width)
    return nn.Sequential(Normalize(mean, std), net)


def model_spec(arch: str, **kwargs: Any) -> dict[str, Any]:
    """The constructor arguments saved beside the weights (plain values only)."""
    spec = {"arch": arch, **kwargs}
    spec["mean"] = [float(v) for v in spec["mean"]]
    spec["std"] = [float(v) for v in spec["std"]]
    return spec


def save_model(model: nn.Module, spec: dict[str, Any], path: str | Path,
               extra: dict[str, Any] | None = None) -> None:
    """Write weights + spec atomically (temp file, then rename) so a kill leaves no half file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "spec": spec, "state_dict": state, "extra": extra or {}},
                      path)


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Load a saved model payload safely; ``ValueError`` with a one-line reason otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = type(exc).__name__
        raise ValueError(f"{path}: not a readable robustprune model ({kind})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a robustprune model file (format {FORMAT} expected)")
    return payload


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Public contract: an ``nn.Module`` in eval mode mapping [0,1] images to logits."""
    payload = read_model_file(path)
    return model_from_payload(payload, path).to(device).eval()


def model_from_payload(payload: dict[str, Any], path: str | Path) -> nn.Module:
    """Rebuild the network from a payload's spec and weights; one-line ``ValueError`` if the
    spec is incomplete or the weights do not fit it."""
    try:
        spec = dict(payload["spec"])
        model = build_model(spec.pop("arch"), **spec)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: model spec and weights do not fit ({reason})") from None
    return model
