"""The training loop shared by warm-up (clean objective) and robust training.

The loop knows four collaborators and nothing about particular methods: an :class:`Objective`
(what to minimise), an :class:`Attack` (how to perturb), a :class:`SubsetSelector` (which
examples each epoch) and a :class:`BatchMiner` (how much attack each example in a batch gets).
:class:`Observer` s see every training step's logits and change nothing (e.g. the forgetting
counts the scoring stage ranks by).

Length: ``optim.epochs`` epochs, or, given ``budget_passes``, as many epochs as it takes to spend
that many example-passes (the last one cut short); the learning-rate schedule then runs on the
share of the budget spent, so every budget ends annealed (budgeted training, Li et al. 2020).

Catastrophic overfitting: an epoch whose validation PGD accuracy falls ``optim.co_drop`` below
the best earlier epoch's is flagged in its history row (``collapsed``); with
``optim.co_rollback`` training stops there and ends with the best epoch's weights.

Resume: after every epoch the full state (model, optimiser, RNG streams, cost counters, history,
selector, miner and observer state) is written atomically to ``checkpoint_dir``. A run killed at
any point restarts from the last finished epoch and follows exactly the trajectory of an
uninterrupted run. The LR schedule is a pure function of training progress, so it needs no
state of its own.
"""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from robustprune.attacks import PGD, Attack
from robustprune.augmentations import AUGMENTS
from robustprune.config import OptimConfig
from robustprune.cost import CostMeter, CountingModel
from robustprune.data import Splits
from robustprune.evaluation import clean_correct, pgd_correct
from robustprune.io import atomic_torch_save
from robustprune.objectives import Objective
from robustprune.schedules import SCHEDULES
from robustprune.selection import BatchMiner, SelectionContext, SubsetSelector

CHECKPOINT_NAME = "last.pt"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else is passed to torch."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


class Observer(Protocol):
    """Sees each training step's logits on the inputs it trained on, their labels and their
    positions in the training set; keeps resumable state of its own."""

    def observe(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EpochLogger:
    """dvclive per-epoch metrics; replays resumed epochs so the plots are whole after a resume."""

    def __init__(self, directory: Path | None) -> None:
        self.live = None
        if directory is not None:
            from dvclive import Live

            self.live = Live(str(directory), dvcyaml=False, save_dvc_exp=False, report=None)

    def log(self, row: dict[str, float]) -> None:
        if self.live is None:
            return
        for key, value in row.items():
            if key != "epoch":
                self.live.log_metric(key, value)
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    cost: dict[str, float | int]
    final: dict[str, float] = field(default_factory=dict)
    rolled_back_to: int | None = None


@dataclass
class Trainer:
    """One training phase. ``model`` is the bare model; it is trained in place."""

    model: nn.Module
    data: Splits
    optim: OptimConfig
    objective: Objective
    attack: Attack
    selector: SubsetSelector
    miner: BatchMiner
    seed: int
    device: torch.device
    checkpoint_dir: Path | None = None
    live_dir: Path | None = None
    observers: Sequence[Observer] = ()
    budget_passes: int | None = None
    full_epoch_passes: int | None = None  # one full-data epoch's passes (the budget's unit)
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))

    def __post_init__(self) -> None:
        self.model.to(self.device)
        self.meter = CostMeter(self.device)
        self.counted = CountingModel(self.model, self.meter)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.optim.lr,
                                         momentum=self.optim.momentum,
                                         weight_decay=self.optim.weight_decay)
        self.data_gen = torch.Generator()
        self.x_train = self.data.x_train.to(self.device)
        self.y_train = self.data.y_train.to(self.device)
        n_val = self.optim.val_n or len(self.data.y_val)
        # on the device once: the per-epoch validation and GLISTER's selection both read it
        self.x_val = self.data.x_val[:n_val].to(self.device)
        self.y_val = self.data.y_val[:n_val].to(self.device)
        self.val_attack = PGD(eps=self.attack.eps, alpha=self.attack.eps / 4, steps=10,
                              norm=self.attack.norm)
        if self.budget_passes is not None and self.budget_passes <= 0:
            raise ValueError(f"budget_passes = {self.budget_passes}: must be > 0 (or None)")
        self.best: dict[str, Any] | None = None  # the best validation epoch: its weights

    # ---- resume state -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME

    def _state(self, epoch: int, history: list[dict[str, float]]) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "data": self.data_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": rng,
                "cost": self.meter.state_dict(), "history": history,
                "selector": self.selector.state_dict(), "miner": self.miner.state_dict(),
                "observers": [o.state_dict() for o in self.observers], "best": self.best}

    def _restore(self) -> tuple[int, list[dict[str, float]]]:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            torch.manual_seed(self.seed)
            self.data_gen.manual_seed(self.seed)
            return 0, []
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        self.data_gen.set_state(state["rng"]["data"].cpu())
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.meter.load_state_dict(state["cost"])
        self.selector.load_state_dict(state["selector"])
        self.miner.load_state_dict(state["miner"])
        for observer, saved in zip(self.observers, state["observers"], strict=True):
            observer.load_state_dict(saved)
        self.best = state["best"]
        return int(state["epoch"]), list(state["history"])

    def discard_checkpoint(self) -> None:
        """Called once the final outputs are safely written."""
        if self.checkpoint_dir is not None:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)

    # ---- the loop -----------------------------------------------------------------------
    def _context(self, epoch: int) -> SelectionContext:
        return SelectionContext(
            epoch=epoch, epochs=self.planned_epochs, model=self.counted, x_train=self.x_train,
            y_train=self.y_train, num_classes=self.data.num_classes, objective=self.objective,
            attack=self.attack, meter=self.meter, seed=self.seed,
            batch_size=self.optim.batch_size, x_val=self.x_val, y_val=self.y_val,
            lr=self.optim.lr)

    @property
    def planned_epochs(self) -> int:
        """The length epoch-based selector options (a warm start, a reselection period) plan
        over: ``optim.epochs``, or with a budget the epochs full-data training takes to spend
        it (so a coreset's warm start is a share of the budget, not of train.epochs)."""
        if self.budget_passes is None or self.full_epoch_passes is None:
            return self.optim.epochs
        return max(1, math.ceil(self.budget_passes / self.full_epoch_passes - 1e-9))

    def _progress(self, epoch: int, b: int, n_batches: int) -> float:
        """Share of the run done before this step: of the pass budget, or of the epochs."""
        if self.budget_passes is not None:
            return min(self.meter.total_passes / self.budget_passes, 1.0)
        return (epoch + b / n_batches) / self.optim.epochs

    def _spent(self) -> bool:
        return self.budget_passes is not None and self.meter.total_passes >= self.budget_passes

    def _epoch(self, epoch: int) -> dict[str, float]:
        self.model.eval()  # selectors score the inference-mode network, at every epoch
        with self.meter.in_phase("select"):
            selection = self.selector.select(self._context(epoch))
        indices = selection.indices.to(self.device)
        weights = None if selection.weights is None else selection.weights.to(self.device)
        order = torch.randperm(len(indices), generator=self.data_gen).to(self.device)
        schedule, augment = SCHEDULES[self.optim.schedule], AUGMENTS[self.optim.augment]
        bs, n_batches = self.optim.batch_size, max(1, -(-len(indices) // self.optim.batch_size))
        loss_sum = torch.zeros((), device=self.device)
        seen, lr = 0, self.optim.lr
        for b in range(n_batches):
            pos = order[b * bs:(b + 1) * bs]
            if pos.numel() == 0 or self._spent():
                break
            lr = self.optim.lr * schedule(self._progress(epoch, b, n_batches))
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with self.meter.in_phase("train"):
                idx = indices[pos]
                x = augment(self.x_train[idx].float().div_(255.0), self.data_gen)
                y = self.y_train[idx]
                w = None if weights is None else weights[pos]
            self.model.eval()  # attacks see the inference-mode network (TRADES convention)
            x_adv = self.miner.adversarial(self.counted, x, y, self.objective, self.attack,
                                           self.meter)
            self.model.train()
            with self.meter.in_phase("train"):
                loss, logits_adv = self.objective.loss_and_logits(self.counted, x, x_adv, y, w)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.miner.observe(logits_adv.detach(), y, idx)
                for observer in self.observers:
                    observer.observe(logits_adv.detach(), y, idx)
                loss_sum += loss.detach() * len(y)
                seen += len(y)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": (loss_sum / max(seen, 1)).item(),
               "examples": float(seen)}
        row.update(self.miner.epoch_metrics())
        return row

    def _validate(self) -> dict[str, float]:
        """Clean and PGD-10 accuracy on the validation split: not part of the cost, and run on
        a forked RNG so that changing its size cannot change the training trajectory."""
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        with self.meter.paused(), torch.random.fork_rng(devices=devices):
            bs = 500
            clean = clean_correct(self.model, self.x_val, self.y_val, bs, self.device)
            robust = pgd_correct(self.model, self.x_val, self.y_val, self.val_attack, 1, bs,
                                 self.device)
        return {"val_clean_acc": clean.float().mean().item() if clean.numel() else 0.0,
                "val_pgd_acc": robust.float().mean().item() if robust.numel() else 0.0}

    def _more(self, epoch: int) -> bool:
        if self.budget_passes is not None:
            return not self._spent()
        return epoch < self.optim.epochs

    def _check_collapse(self, epoch: int, row: dict[str, float]) -> bool:
        """Flag the epoch (``collapsed``) when its validation PGD accuracy fell ``co_drop``
        below the best earlier epoch's; remember the best epoch's weights for a rollback."""
        acc = row["val_pgd_acc"]
        best = None if self.best is None else float(self.best["val_pgd_acc"])
        collapsed = best is not None and acc < best - self.optim.co_drop
        row["collapsed"] = float(collapsed)
        if best is None or acc > best:
            self.best = {"epoch": epoch + 1, "val_pgd_acc": acc,
                         "model": ({k: v.detach().clone() for k, v in
                                    self.model.state_dict().items()}
                                   if self.optim.co_rollback else None)}
        return collapsed

    def run(self) -> TrainResult:
        start_epoch, history = self._restore()
        if start_epoch:
            self.log(f"resuming from {self.checkpoint_path} after epoch {start_epoch}")
        logger = EpochLogger(self.live_dir)
        for row in history:
            logger.log(row)
        stop = bool(history) and self.optim.co_rollback and bool(history[-1]["collapsed"])
        try:
            epoch = start_epoch
            while not stop and self._more(epoch):
                before, spent = self.meter.total_seconds, self.meter.total_passes
                row = self._epoch(epoch)
                if self.meter.total_passes == spent:  # cannot happen with a non-empty selection
                    raise RuntimeError(f"epoch {epoch + 1} spent no passes: the selector chose "
                                       "no examples, so the budget would never be reached")
                row["epoch_seconds"] = round(self.meter.total_seconds - before, 3)
                row.update(self._validate())
                row["cum_seconds"] = round(self.meter.total_seconds, 3)
                row["cum_passes"] = float(self.meter.total_passes)
                stop = self._check_collapse(epoch, row) and self.optim.co_rollback
                history.append(row)
                logger.log(row)
                self.log(" ".join(f"{k}={v:.4g}" for k, v in row.items()))
                epoch += 1
                if self.checkpoint_path is not None:
                    atomic_torch_save(self._state(epoch, history), self.checkpoint_path)
        finally:
            logger.close()
        rolled_back_to = None
        if stop and self.best is not None:
            self.model.load_state_dict(self.best["model"])
            rolled_back_to = int(self.best["epoch"])
            self.log(f"catastrophic overfitting at epoch {epoch}: rolled back to epoch "
                     f"{rolled_back_to}")
        self.model.eval()
        final = (history[rolled_back_to - 1] if rolled_back_to else
                 history[-1] if history else self._validate())
        return TrainResult(history=history, cost=self.meter.summary(), final=final,
                           rolled_back_to=rolled_back_to)


def passes_per_example(model: nn.Module, objective: Objective, attack: Attack,
                       x: torch.Tensor, y: torch.Tensor) -> float:
    """Example-passes one full-data training step spends per example with this objective and
    attack (no miner, no selection), counted by running it once on a copy of ``model`` with its
    own meter: the unit of a pass budget, exact for any objective and attack by construction.
    The copy, its gradients and the RNG draws are thrown away."""
    twin = copy.deepcopy(model)
    meter = CostMeter(x.device)
    counted = CountingModel(twin, meter)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        twin.eval()
        x_adv = BatchMiner().adversarial(counted, x, y, objective, attack, meter)
        twin.train()
        loss, _ = objective.loss_and_logits(counted, x, x_adv, y, None)
        loss.backward()
    return meter.total_passes / len(y)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file: keys checkpoints to the exact inputs they were trained from."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
