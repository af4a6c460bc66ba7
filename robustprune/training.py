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

Data parallel (torchrun; :mod:`robustprune.distributed` says how the work is split): every rank
builds the same global batch and trains on its shard through DistributedDataParallel; the
step's logits are gathered so miners and observers see the whole batch; passes and seconds are
summed over ranks; rank 0 alone logs and writes checkpoints (holding every rank's RNG streams
and counters, so a restart after a kill of any rank resumes exactly).

GPU path (``scale`` params, CUDA only): the training set lives on the device, each batch is
indexed there, phase timing uses CUDA events instead of synchronising, and the model used for
training and its attacks can run under bf16 autocast, in channels-last layout and compiled.
Validation and evaluation always use the plain fp32 model.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from robustprune import distributed
from robustprune.atomic import atomic_torch_save
from robustprune.attacks import PGD, Attack
from robustprune.attacks.correctness import clean_correct, pgd_correct
from robustprune.augmentations import AUGMENTS
from robustprune.averaging import WeightAverage
from robustprune.cost import CostMeter, CountingModel
from robustprune.data import Splits
from robustprune.objectives import Objective
from robustprune.optim import SCHEDULES, OptimConfig
from robustprune.scale import ScaleConfig, training_module
from robustprune.selection.base import (
    BatchMiner,
    Selection,
    SelectionContext,
    SubsetSelector,
    broadcast_selection,
)
from robustprune.training_records import EpochLogger, TrainResult

CHECKPOINT_NAME = "last.pt"
VAL_CHUNK = 500  # validation examples per chunk (each chunk's attack draws are its own)


class Observer(Protocol):
    """Sees each training step's logits on the inputs it trained on, their labels and their
    positions in the training set; keeps resumable state of its own."""

    def observe(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


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
    scale: ScaleConfig | None = None  # the GPU path's settings (None: plain fp32)
    ema: float = 0.0  # weight averaging: the EMA's decay per step (0: off; robustprune.averaging)
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))

    def __post_init__(self) -> None:
        self.model.to(self.device)
        self.world = distributed.world()
        self.meter = CostMeter(self.device)
        net, self.runtime = training_module(self.model, self.scale, self.device)
        self.counted = CountingModel(net, self.meter)  # attacks, selection, miners
        self.counted_step = self.counted  # the training step's forward (DDP under torchrun)
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.device.type == "cuda" else None
            # buffers (batch-norm statistics) are synchronised once per epoch, not in every
            # forward: a per-forward broadcast is a collective that AugMix's lazy views (a
            # second forward on some ranks only) would leave unmatched
            import inspect

            no_forward_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                               inspect.signature(DistributedDataParallel).parameters
                               else {"broadcast_buffers": False})  # (its name before 2.14)
            self.ddp = DistributedDataParallel(net, device_ids=ids, **no_forward_sync)
            self.counted_step = CountingModel(self.ddp, self.meter)
        self.runtime["processes"] = self.world.size
        if not self.world.main:
            self.log = lambda line: None
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
        self.average = WeightAverage(self.model, self.ema) if self.ema else None

    @property
    def evaluated(self) -> nn.Module:
        """The model validated, kept at a rollback and saved: the weight average when on."""
        return self.model if self.average is None else self.average.module

    # ---- resume state -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME

    def _rng_state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "data": self.data_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _state(self, epoch: int, history: list[dict[str, float]]) -> dict[str, Any]:
        """The resume state; every rank must call it (each rank's RNG streams and counters are
        gathered to rank 0: they differ where a rank drew for its own rows only)."""
        rng, cost = self._rng_state(), self.meter.state_dict()
        if self.world.distributed:
            per_rank = [None] * self.world.size
            import torch.distributed as dist

            dist.all_gather_object(per_rank, {"rng": rng, "cost": cost})
            rng = {"ranks": [r["rng"] for r in per_rank]}  # type: ignore[index]
            cost = {"ranks": [r["cost"] for r in per_rank]}  # type: ignore[index]
        return {"epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": rng,
                "cost": cost, "history": history, "processes": self.world.size,
                "selector": self.selector.state_dict(), "miner": self.miner.state_dict(),
                "observers": [o.state_dict() for o in self.observers], "best": self.best,
                "average": None if self.average is None else self.average.state_dict()}

    def _restore(self) -> tuple[int, list[dict[str, float]]]:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            torch.manual_seed(self.seed)
            self.data_gen.manual_seed(self.seed)
            return 0, []
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved = int(state.get("processes", 1))
        if saved != self.world.size:
            raise RuntimeError(f"{path}: written by a run of {saved} process(es), resumed with "
                               f"{self.world.size}; delete it or resume with {saved}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        rng, cost = state["rng"], state["cost"]
        if self.world.distributed:
            rng, cost = rng["ranks"][self.world.rank], cost["ranks"][self.world.rank]
        torch.set_rng_state(rng["torch"].cpu())
        self.data_gen.set_state(rng["data"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        self.meter.load_state_dict(cost)
        self.selector.load_state_dict(state["selector"])
        self.miner.load_state_dict(state["miner"])
        for observer, saved in zip(self.observers, state["observers"], strict=True):
            observer.load_state_dict(saved)
        self.best = state["best"]
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        return int(state["epoch"]), list(state["history"])

    def discard_checkpoint(self) -> None:
        """Called once the final outputs are safely written (by rank 0, after every rank is
        done with it)."""
        distributed.barrier()
        if self.checkpoint_dir is not None and self.world.main:
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

    def _passes(self) -> int:
        """The run's passes so far, summed over ranks (a collective under torchrun)."""
        if not self.world.distributed:
            return self.meter.total_passes
        return int(distributed.all_sum(torch.tensor([float(self.meter.total_passes)],
                                                    dtype=torch.float64,
                                                    device=self._comm_device))[0])

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def _progress(self, epoch: int, b: int, n_batches: int, passes: int | None = None) -> float:
        """Share of the run done before this step: of the pass budget, or of the epochs."""
        if self.budget_passes is not None:
            done = self._passes() if passes is None else passes
            return min(done / self.budget_passes, 1.0)
        return (epoch + b / n_batches) / self.optim.epochs

    def _spent(self, passes: int | None = None) -> bool:
        if self.budget_passes is None:
            return False
        return (self._passes() if passes is None else passes) >= self.budget_passes

    def _select(self, epoch: int) -> Selection:
        """This epoch's examples; under torchrun rank 0's choice, broadcast, so every rank
        trains on the same selection whatever a selector does internally."""
        with self.meter.in_phase("select"):
            selection = self.selector.select(self._context(epoch))
            if self.world.distributed:
                selection = broadcast_selection(selection)
        return selection

    def _step_loss(self, x: torch.Tensor, x_adv: Any, y: torch.Tensor,
                   w: torch.Tensor | None, w_all: torch.Tensor | None,
                   n_all: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's loss and the logits it trained on. One process: the objective's
        Σ w·ℓ / Σ w. A rank of a data-parallel run: its shard's Σ w·ℓ over the global batch's
        Σ w, times the world size, so DDP's average of the ranks' gradients is the gradient of
        the one-process loss."""
        if not self.world.distributed:
            return self.objective.loss_and_logits(self.counted_step, x, x_adv, y, w)
        per_example, logits = self.objective.losses(self.counted_step, x, x_adv, y)
        if w is None or w_all is None:
            total, denom = per_example.sum(), float(n_all)
            return total / denom * self.world.size, logits
        total = (per_example * w).sum()
        return total / w_all.sum().clamp_min(1e-12) * self.world.size, logits

    def _sync_buffers(self) -> None:
        """Rank 0's buffers (batch-norm running statistics) on every rank."""
        if self.world.distributed:
            import torch.distributed as dist

            for buf in self.model.buffers():
                dist.broadcast(buf, src=0)

    def _epoch(self, epoch: int) -> dict[str, float]:
        self._sync_buffers()
        self.model.eval()  # selectors score the inference-mode network, at every epoch
        selection = self._select(epoch)
        indices = selection.indices.to(self.device)
        weights = None if selection.weights is None else selection.weights.to(self.device)
        order = torch.randperm(len(indices), generator=self.data_gen).to(self.device)
        schedule, augment = SCHEDULES[self.optim.schedule], AUGMENTS[self.optim.augment]
        bs, n_batches = self.optim.batch_size, max(1, -(-len(indices) // self.optim.batch_size))
        loss_sum = torch.zeros((), device=self.device)
        seen, lr = 0, self.optim.lr
        world = self.world
        for b in range(n_batches):
            pos = order[b * bs:(b + 1) * bs]
            passes = self._passes() if self.budget_passes is not None else None
            if pos.numel() == 0 or self._spent(passes):
                break
            lr = self.optim.lr * schedule(self._progress(epoch, b, n_batches, passes))
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with self.meter.in_phase("train"):
                # the global batch (identical on every rank), then this rank's shard of it
                idx_all = indices[pos]
                x_all = augment(self.x_train[idx_all].float().div_(255.0), self.data_gen)
                y_all = self.y_train[idx_all]
                w_all = None if weights is None else weights[pos]
                mine = world.shard(len(pos))
                x, y = x_all[mine], y_all[mine]
                w = None if w_all is None else w_all[mine]
            self.model.eval()  # attacks see the inference-mode network (TRADES convention)
            with distributed.draws_for(len(pos), mine):
                x_adv = self.miner.adversarial(self.counted, x, y, self.objective,
                                               self.attack, self.meter)
            self.model.train()
            # dropout masks too are the global batch's rows (AugMix's forwards carry views of
            # varying counts, so its ranks draw their own)
            rows = (contextlib.nullcontext() if self.objective.views_based
                    else distributed.draws_for(len(pos), mine))
            with self.meter.in_phase("train"), rows:
                loss, logits_adv = self._step_loss(x, x_adv, y, w, w_all, len(pos))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                if self.average is not None:
                    self.average.update(self.model)
                logits_all = distributed.gather_cat(logits_adv.detach())
                self.selector.observe(logits_all, y_all, idx_all)
                self.miner.observe(logits_all, y_all, idx_all)
                for observer in self.observers:
                    observer.observe(logits_all, y_all, idx_all)
                loss_sum += loss.detach() * (len(pos) / world.size)
                seen += len(pos)
        loss_sum = distributed.all_sum(loss_sum)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": (loss_sum / max(seen, 1)).item(),
               "examples": float(seen)}
        row.update(self.miner.epoch_metrics())
        return row

    def _validate(self, epoch: int = -1) -> dict[str, float]:
        """Clean and PGD-10 accuracy on the validation split, with the plain fp32 model: not
        part of the cost. Each chunk's attack draws come from its own seed (run, epoch, chunk),
        so validation changes no training draw, and under torchrun the ranks split the chunks
        and still produce the one-process figures."""
        model = self.evaluated
        model.eval()
        n = len(self.y_val)
        first, end = distributed.my_chunks(n, VAL_CHUNK)
        counts = torch.zeros(2, dtype=torch.float64)
        with self.meter.paused():
            for c in range(first, end):
                xs = self.x_val[c * VAL_CHUNK:(c + 1) * VAL_CHUNK]
                ys = self.y_val[c * VAL_CHUNK:(c + 1) * VAL_CHUNK]
                with distributed.seeded(distributed.chunk_seed(self.seed, 0x7A1, epoch, c),
                                        self.device):
                    clean = clean_correct(model, xs, ys, VAL_CHUNK, self.device)
                    robust = pgd_correct(model, xs, ys, self.val_attack, 1, VAL_CHUNK,
                                         self.device)
                counts += torch.tensor([clean.sum().item(), robust.sum().item()],
                                       dtype=torch.float64)
        counts = distributed.all_sum(counts.to(self._comm_device)).cpu()
        return {"val_clean_acc": float(counts[0]) / n if n else 0.0,
                "val_pgd_acc": float(counts[1]) / n if n else 0.0}

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
                                    self.evaluated.state_dict().items()}
                                   if self.optim.co_rollback else None)}
        return collapsed

    def run(self) -> TrainResult:
        start_epoch, history = self._restore()
        if start_epoch:
            self.log(f"resuming from {self.checkpoint_path} after epoch {start_epoch}")
        logger = EpochLogger(self.live_dir if self.world.main else None)
        for row in history:
            logger.log(row)
        stop = bool(history) and self.optim.co_rollback and bool(history[-1]["collapsed"])
        try:
            epoch = start_epoch
            while not stop and self._more(epoch):
                before = self.meter.merged()
                row = self._epoch(epoch)
                after = self.meter.merged()
                if after.total_passes == before.total_passes:  # needs an empty selection
                    raise RuntimeError(f"epoch {epoch + 1} spent no passes: the selector chose "
                                       "no examples, so the budget would never be reached")
                row["epoch_seconds"] = round(after.total_seconds - before.total_seconds, 3)
                row.update(self._validate(epoch))
                row["cum_seconds"] = round(after.total_seconds, 3)
                row["cum_passes"] = float(after.total_passes)
                stop = self._check_collapse(epoch, row) and self.optim.co_rollback
                history.append(row)
                logger.log(row)
                self.log(" ".join(f"{k}={v:.4g}" for k, v in row.items()))
                epoch += 1
                if self.checkpoint_path is not None:
                    state = self._state(epoch, history)
                    if self.world.main:
                        atomic_torch_save(state, self.checkpoint_path)
                    distributed.barrier()
        finally:
            logger.close()
        rolled_back_to = None
        if stop and self.best is not None:
            self.evaluated.load_state_dict(self.best["model"])
            rolled_back_to = int(self.best["epoch"])
            self.log(f"catastrophic overfitting at epoch {epoch}: rolled back to epoch "
                     f"{rolled_back_to}")
        self.evaluated.eval()
        final = (history[rolled_back_to - 1] if rolled_back_to else
                 history[-1] if history else self._validate())
        cost = self.meter.merged().summary()
        if self.world.distributed:
            cost["processes"] = self.world.size
        return TrainResult(history=history, cost=cost, final=final,
                           rolled_back_to=rolled_back_to)
