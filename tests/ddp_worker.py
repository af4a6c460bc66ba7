"""Runs the warm-up, scoring and train stages for several methods in one process, as one
rank of ``torchrun`` (or as a plain process), recording every epoch's selection.

tests/test_distributed.py runs it once as two gloo processes and compares with the same
stages run as one process. One launch for all stages keeps the test fast: the process group is
started here once, and each stage's ``main`` joins it (and leaves it standing).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py \
        WORKDIR METHOD [METHOD …] [--kill-rank R --kill-epoch E] [--skip-prep]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robustprune import distributed, training  # noqa: E402
from stages import scoring as scoring_stage  # noqa: E402
from stages import train as train_stage  # noqa: E402
from stages import warmup as warmup_stage  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("workdir", type=Path)
    p.add_argument("methods", nargs="*")
    p.add_argument("--kill-rank", type=int, default=-1)
    p.add_argument("--kill-epoch", type=int, default=-1)
    p.add_argument("--skip-prep", action="store_true")
    args = p.parse_args()
    os.chdir(args.workdir)
    world = distributed.env_world()
    if world.distributed:
        import torch.distributed as dist

        dist.init_process_group("gloo", rank=world.rank, world_size=world.size)
    selections: list[dict] = []
    select = training.Trainer._select
    run_epoch = training.Trainer._epoch

    def recording(self: training.Trainer, epoch: int):  # type: ignore[no-untyped-def]
        chosen = select(self, epoch)
        selections.append({"epoch": epoch, "indices": chosen.indices.clone(),
                           "weights": None if chosen.weights is None
                           else chosen.weights.clone()})
        return chosen

    def killable(self: training.Trainer, epoch: int):  # type: ignore[no-untyped-def]
        if world.rank == args.kill_rank and epoch == args.kill_epoch:
            os._exit(3)  # a killed rank: no cleanup, no outputs
        return run_epoch(self, epoch)

    training.Trainer._select = recording  # type: ignore[method-assign]
    training.Trainer._epoch = killable  # type: ignore[method-assign]
    common = ["--params", "params.yaml", "--data", "dataset.npz", "--device", "cpu"]
    if not args.skip_prep:
        assert warmup_stage.main([*common, "--out", "warmup.pt", "--metrics", "warmup.json",
                                  "--live", "live/warmup", "--forgetting", "forget.pt"]) == 0
        assert scoring_stage.main([*common, "--init", "warmup.pt", "--forgetting", "forget.pt",
                                   "--out", "scores.parquet", "--metrics", "scoring.json"]) == 0
    for method in args.methods:
        selections.clear()
        assert train_stage.main([*common, "--init", "warmup.pt", "--scores", "scores.parquet",
                                 "--scores-metrics", "scoring.json", "--method", method,
                                 "--out", f"{method}.pt", "--metrics", f"{method}.json",
                                 "--live", f"live/{method}"]) == 0
        torch.save(selections, f"selections-{method}-r{world.rank}.pt")
    if world.distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
