"""Data-parallel training through torchrun, detected from the environment (nanoGPT-style).

``torchrun --nproc_per_node=N stages/train.py …`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` reads them, starts the process group (NCCL on CUDA, gloo on CPU)
and pins each process to its GPU. A plain ``python stages/train.py`` sees no such variables
and runs exactly as a single process always did: every helper here is the identity for a
world of one, so library code calls them unconditionally.

How a run is split, and why it matches the one-process run with the same global batch:

- every rank holds the whole (small) training set on its device, draws the same epoch order
  and the same per-epoch selection, builds the same global batch and trains on its contiguous
  shard of it; the training step's model is wrapped in :class:`DistributedDataParallel`, whose
  gradient all-reduce averages the ranks' gradients, and each rank's loss is scaled so that
  average equals the one-process loss Σ w·ℓ / Σ w over the global batch;
- all ranks share one random stream (the same seed, the same draws): every random draw of the
  training step (attack starts, TRADES/MART's Gaussian start) is made at the size of the
  *global* call inside :func:`draws_for`, and each rank keeps its own rows. The attack starts
  are therefore the very numbers the one-process run draws, whatever the process count;
- what a step learns about its examples (logits for BulletTrain's online r, the forgetting
  counts) is gathered from all ranks, so every rank updates the same state;
- full-set passes (scoring, coreset and GLISTER gradients, validation) are split into chunks
  whose random draws are seeded by the chunk (:func:`chunk_seed`), each rank attacks a
  contiguous block of chunks, and the results are gathered in order: the same numbers as one
  process computes; a solver then runs once, on rank 0, and its choice is broadcast.

What is not bit-identical: the all-reduce adds the ranks' gradients in another order than one
process sums a batch, so weights differ by float rounding (relative 1e-7 per step), which
training can amplify; tests/test_distributed.py states and checks the tolerance. Not covered
by the one-process equivalence: batch-norm networks (each rank normalises with its shard's
batch statistics; rank 0's running statistics are broadcast at each epoch's start), AugMix
(each rank draws its own views) and ``scale.compile`` (compiled random draws differ from
eager ones). SmallCNN has no batch norm.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import torch

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank, world size and local rank (one GPU per local
    rank). The default, a world of one, is the plain single-process run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes every output (model, metrics, dvclive, checkpoints)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process: collectives are real (else every helper is the identity)."""
        return self.size > 1

    def bounds(self, n: int) -> list[tuple[int, int]]:
        """Every rank's contiguous share [lo, hi) of n items (the first n % size get one more,
        as ``torch.tensor_split``): the same on every rank, so nobody needs to ask."""
        q, r = divmod(n, self.size)
        out, lo = [], 0
        for k in range(self.size):
            hi = lo + q + (1 if k < r else 0)
            out.append((lo, hi))
            lo = hi
        return out

    def shard(self, n: int) -> slice:
        """This rank's share of n items."""
        lo, hi = self.bounds(n)[self.rank]
        return slice(lo, hi)


_WORLD = World()


GPU_LOCKS_VAR = "ROBUSTPRUNE_GPU_LOCKS"
_HELD: list[tuple[int, IO[str]]] = []  # the GPU this process claimed and its open lock file


def claim_gpu(count: int, lock_dir: str | os.PathLike[str], wait: float = 5.0) -> int:
    """The index of a GPU no other robustprune process on this machine holds, claimed with an
    exclusive lock on ``lock_dir/gpu-<i>.lock`` until this process exits (waiting while all
    are taken). This is how parallel sweep workers (``dvc queue start -j N``) get one GPU each
    without any per-worker setting: each stage run claims the first free one."""
    import fcntl
    import sys
    import time
    from pathlib import Path

    if _HELD:  # one claim per process: a second call gets the same GPU
        return _HELD[0][0]
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        for i in range(count):
            f = open(Path(lock_dir) / f"gpu-{i}.lock", "a+")  # noqa: SIM115 (held open)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            _HELD.append((i, f))
            return i
        if not told:
            print(f"waiting for a free GPU: all {count} are claimed (locks in {lock_dir})",
                  file=sys.stderr, flush=True)
            told = True
        time.sleep(wait)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else is passed to torch.

    With several visible GPUs, a process that torchrun did not start claims a free one
    (:func:`claim_gpu`; lock files in ``$ROBUSTPRUNE_GPU_LOCKS``, default a folder in the
    temp dir), so concurrent runs spread over the GPUs; torchrun's processes take the GPU of
    their local rank instead (:func:`setup`)."""
    if name == "auto":
        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            if n > 1 and not env_world().distributed:
                import tempfile

                locks = os.environ.get(GPU_LOCKS_VAR) or os.path.join(
                    tempfile.gettempdir(), "robustprune-gpus")
                try:
                    index = claim_gpu(n, locks)
                except OSError as exc:  # e.g. another user's lock folder
                    raise ValueError(f"cannot claim a GPU in {locks} ({exc}); set "
                                     f"{GPU_LOCKS_VAR} to a folder you can write") from None
                torch.cuda.set_device(index)  # streams, events and allocations go there
                return torch.device("cuda", index)
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def world() -> World:
    """The current process's world (a world of one unless :func:`setup` started a group)."""
    return _WORLD


def env_world() -> World:
    """The world torchrun describes in the environment (a world of one without it)."""
    if not all(v in os.environ for v in ENV_VARS):
        return World()
    try:
        w = World(rank=int(os.environ["RANK"]), size=int(os.environ["WORLD_SIZE"]),
                  local_rank=int(os.environ["LOCAL_RANK"]))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by "
                         "torchrun)") from None
    if not 0 <= w.rank < w.size:
        raise ValueError(f"RANK = {w.rank} is outside WORLD_SIZE = {w.size}")
    return w


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes (if any) and return (world, device).

    On CUDA each process takes the GPU of its local rank (``cuda:LOCAL_RANK``, unless the
    user named a specific index) and NCCL; elsewhere gloo. A world of one starts no group.
    """
    global _WORLD
    w = env_world()
    if not w.distributed:
        _WORLD = w
        return w, device
    import torch.distributed as dist

    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", w.local_rank)
        if device.index >= torch.cuda.device_count():
            raise ValueError(f"process {w.local_rank} of this machine needs {device}, but "
                             f"{torch.cuda.device_count()} GPU(s) are visible: scale.nproc "
                             "must not exceed the GPUs of a machine")
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"--device {device}: distributed runs need cuda or cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=w.rank, world_size=w.size,
                                **({"device_id": device} if backend == "nccl" else {}))
        _OWNED.append(True)
    _WORLD = w
    return w, device


_OWNED: list[bool] = []  # whether setup() started the process group (and teardown ends it)


def teardown() -> None:
    """Leave the process group (the end of a distributed stage) if :func:`setup` started it;
    a group the caller started (several stages in one process) stays."""
    global _WORLD
    if _OWNED:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _OWNED.clear()
    _WORLD = World()


@contextmanager
def use_world(w: World) -> Iterator[None]:
    """Run a block as a given world (tests that start their own process group)."""
    global _WORLD
    previous, _WORLD = _WORLD, w
    try:
        yield
    finally:
        _WORLD = previous


# ---- collectives (the identity for a world of one) -------------------------------------------

def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (a new tensor; ``t`` is unchanged)."""
    out = t.clone()
    if _WORLD.distributed:
        import torch.distributed as dist

        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def gather_cat(t: torch.Tensor, main_only: bool = False) -> torch.Tensor:
    """Every rank's ``t`` concatenated along dim 0 in rank order, on every rank. The ranks'
    row counts may differ (they are exchanged first).

    ``main_only``: only rank 0 gets the rows (the others get zero rows of the same width), for
    a matrix that only rank 0's solver reads: N×D rows gathered on every rank would cost every
    rank the whole matrix's memory."""
    if not _WORLD.distributed:
        return t
    import torch.distributed as dist

    n = torch.tensor([t.shape[0]], device=t.device)
    counts = [torch.zeros_like(n) for _ in range(_WORLD.size)]
    dist.all_gather(counts, n)
    sizes = [int(c.item()) for c in counts]
    width = max(sizes)
    padded = t.new_zeros((width, *t.shape[1:]))
    padded[:t.shape[0]] = t
    if main_only and not _WORLD.main:
        dist.gather(padded.contiguous(), None, dst=0)
        return t.new_zeros((0, *t.shape[1:]))
    parts = [torch.empty_like(padded) for _ in range(_WORLD.size)]
    if main_only:
        dist.gather(padded.contiguous(), parts, dst=0)
    else:
        dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (tensors inside come back on the CPU)."""
    if not _WORLD.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if _WORLD.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written what the others will read)."""
    if _WORLD.distributed:
        import torch.distributed as dist

        dist.barrier()


# ---- random draws at the size of the global call ----------------------------------------------

@dataclass(frozen=True)
class _Rows:
    total: int  # rows of the global call
    rows: torch.Tensor  # this rank's positions among them, in order


_ROWS: _Rows | None = None


@contextmanager
def draws_for(total: int, rows: torch.Tensor | slice) -> Iterator[None]:
    """Inside the block, :func:`rand_like` and friends draw for ``total`` rows (the global
    call, identically on every rank) and return this rank's ``rows`` of it. Every rank must
    make the same draws, even a rank whose share is empty. No-op for a world of one."""
    global _ROWS
    if not _WORLD.distributed:
        yield
        return
    if isinstance(rows, slice):
        rows = torch.arange(total)[rows]
    previous, _ROWS = _ROWS, _Rows(total, rows.cpu())
    try:
        yield
    finally:
        _ROWS = previous


def drawing_globally() -> bool:
    """True inside :func:`draws_for`: code must then draw even for an empty share."""
    return _ROWS is not None


def _global(fn: Any, like: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    rows = _ROWS
    shape = tuple(like.shape) if shape is None else shape
    if rows is None:
        return fn(shape, dtype=like.dtype, device=like.device)
    if shape[0] != len(rows.rows):
        raise RuntimeError(f"a draw for {shape[0]} rows inside draws_for({rows.total}) "
                           f"that gives this rank {len(rows.rows)}")
    full = fn((rows.total, *shape[1:]), dtype=like.dtype, device=like.device)
    return full[rows.rows.to(like.device)]


def rand_like(like: torch.Tensor) -> torch.Tensor:
    """``torch.rand_like``, drawn for the global call inside :func:`draws_for`."""
    return _global(torch.rand, like)


def randn_like(like: torch.Tensor) -> torch.Tensor:
    """``torch.randn_like``, drawn for the global call inside :func:`draws_for`."""
    return _global(torch.randn, like)


def rand_rows(like: torch.Tensor, *trailing: int) -> torch.Tensor:
    """Uniform [rows of ``like``, *trailing]: one draw per row (e.g. an ℓ2 start's radius)."""
    return _global(torch.rand, like, (like.shape[0], *trailing))


def chunk_seed(seed: int, *parts: int) -> int:
    """A seed for one chunk of a full-set pass, from the run's seed and the chunk's identity
    (e.g. epoch and chunk index): the chunk draws the same numbers on whichever rank runs it."""
    s = 0x9E3779B97F4A7C15 ^ int(seed)
    for p in parts:
        s = (s * 1_000_003 + int(p) + 0x632BE5AB) % (2**63 - 1)
    return s


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block on a private random stream seeded with ``seed``; the global streams are
    restored afterwards, so the block changes no other draw of the run."""
    accel = device.type if device.type in ("cuda", "mps") else "cuda"
    devices = [device] if device.type == accel else []
    with torch.random.fork_rng(devices=devices, device_type=accel):
        torch.manual_seed(seed)
        yield


def my_chunks(n: int, chunk: int) -> tuple[int, int]:
    """This rank's contiguous block of chunks of a pass over n items in chunks of ``chunk``:
    (first chunk, end chunk). Gathering the blocks in rank order gives the chunks in order."""
    lo, hi = _WORLD.bounds(-(-n // chunk) if n else 0)[_WORLD.rank]
    return lo, hi
