"""Cost accounting: forward/backward example-passes and wall-clock, by phase.

Speed-ups are reported two ways: wall-clock (what a user pays, noisy on a shared machine) and
example-passes (deterministic, hardware-independent). Passes are counted by wrapping the model
in :class:`CountingModel`, so every forward and every backward through the network is counted
where it happens, whoever triggers it (attack, training step, selection scoring); no code path
has to remember to count. One example through the whole network forwards counts 1 forward
pass; a gradient through the whole network (for the weights or only for the input) counts 1
backward pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

PHASES = ("attack", "train", "select")


class CostMeter:
    """Counters of example-passes and seconds per phase (``attack``, ``train``, ``select``).

    Evaluation is not training cost: inside :meth:`paused` nothing is counted or timed.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.forward = dict.fromkeys(PHASES, 0)
        self.backward = dict.fromkeys(PHASES, 0)
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.phase = "train"
        self.enabled = True
        self._depth = 0
        self._mark = time.perf_counter()
        # CUDA: phase changes are marked with events on the stream, resolved in one sync when
        # the seconds are read (an epoch's end), so timing never stalls the GPU's queue
        self._events: list[tuple[str | None, torch.cuda.Event]] | None = (
            [] if self.device.type == "cuda" else None)

    def _counting_phase(self) -> str | None:
        return self.phase if self._depth and self.enabled else None

    def _charge(self) -> None:
        """Give the time since the last phase change to the phase that was running (on CUDA:
        record an event tagged with that phase, which ends its interval; :meth:`flush`
        converts them)."""
        if self._events is not None:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            self._events.append((self._counting_phase(), event))
            return
        now = time.perf_counter()
        phase = self._counting_phase()
        if phase is not None:
            self.seconds[phase] += now - self._mark
        self._mark = now

    def flush(self) -> None:
        """CUDA: wait for the recorded events and add the intervals between them to their
        phases (GPU time between phase changes, which includes any time the GPU sat waiting for
        the host, as wall-clock would). A no-op on CPU, where time is read directly."""
        if not self._events or len(self._events) < 2:
            return
        self._events[-1][1].synchronize()
        # each event carries the phase that ran up to it (recorded before the switch)
        for (_, start), (phase, end) in zip(self._events, self._events[1:], strict=False):
            if phase is not None:
                self.seconds[phase] += start.elapsed_time(end) / 1000.0
        self._events = self._events[-1:]

    @contextmanager
    def in_phase(self, phase: str) -> Iterator[None]:
        """Attribute passes and time inside the block to ``phase``.

        Blocks may nest (a selector that runs an attack): the inner block's time goes to the
        inner phase only, so every second is counted once.
        """
        if phase not in PHASES:
            raise ValueError(f"unknown cost phase {phase!r}; allowed: {', '.join(PHASES)}")
        self._charge()
        previous, self.phase = self.phase, phase
        self._depth += 1
        try:
            yield
        finally:
            self._charge()
            self.phase = previous
            self._depth -= 1

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Run evaluation (or anything not part of the method's cost) uncounted and untimed."""
        self._charge()
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self._charge()  # drops the paused time: still disabled here
            self.enabled = previous

    def count_forward(self, n: int, phase: str) -> None:
        if self.enabled:
            self.forward[phase] += n

    def count_backward(self, n: int, phase: str) -> None:
        if self.enabled:
            self.backward[phase] += n

    def add(self, phase: str, forward: int = 0, backward: int = 0, seconds: float = 0.0) -> None:
        """Charge work done elsewhere (e.g. by the selection-scoring stage) to ``phase``."""
        if phase not in PHASES:
            raise ValueError(f"unknown cost phase {phase!r}; allowed: {', '.join(PHASES)}")
        self.forward[phase] += forward
        self.backward[phase] += backward
        self.seconds[phase] += seconds

    @property
    def total_passes(self) -> int:
        return sum(self.forward.values()) + sum(self.backward.values())

    @property
    def total_seconds(self) -> float:
        self.flush()
        return sum(self.seconds.values())

    def summary(self) -> dict[str, float | int]:
        """Flat metrics: totals plus per-phase breakdown (``cost/<phase>/...``)."""
        self.flush()
        out: dict[str, float | int] = {
            "passes": self.total_passes,
            "forward_passes": sum(self.forward.values()),
            "backward_passes": sum(self.backward.values()),
            "seconds": round(self.total_seconds, 3),
        }
        for phase in PHASES:
            out[f"{phase}_forward"] = self.forward[phase]
            out[f"{phase}_backward"] = self.backward[phase]
            out[f"{phase}_seconds"] = round(self.seconds[phase], 3)
        return out

    def state_dict(self) -> dict[str, dict[str, float] | dict[str, int]]:
        self.flush()
        return {"forward": dict(self.forward), "backward": dict(self.backward),
                "seconds": dict(self.seconds)}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        self.forward = {k: int(state["forward"][k]) for k in PHASES}
        self.backward = {k: int(state["backward"][k]) for k in PHASES}
        self.seconds = {k: float(state["seconds"][k]) for k in PHASES}
        if self._events is not None:
            self._events = []

    def merged(self) -> CostMeter:
        """The counters summed over the ranks of a data-parallel run (the identity for one
        process): passes are the run's passes (as one process counts them), seconds its
        device-seconds (each rank's phases, time spent waiting for the other ranks included);
        every rank must call it."""
        from robustprune import distributed

        self.flush()
        out = CostMeter("cpu")
        if not distributed.world().distributed:
            out.load_state_dict(self.state_dict())
            return out
        dev = self.device if self.device.type == "cuda" else torch.device("cpu")
        counts = torch.tensor([self.forward[p] for p in PHASES]
                              + [self.backward[p] for p in PHASES], dtype=torch.float64,
                              device=dev)
        secs = torch.tensor([self.seconds[p] for p in PHASES], dtype=torch.float64, device=dev)
        counts, secs = distributed.all_sum(counts).cpu(), distributed.all_sum(secs).cpu()
        k = len(PHASES)
        out.forward = {p: int(counts[i]) for i, p in enumerate(PHASES)}
        out.backward = {p: int(counts[k + i]) for i, p in enumerate(PHASES)}
        out.seconds = {p: float(secs[i]) for i, p in enumerate(PHASES)}
        return out


class CountingModel(nn.Module):
    """Wraps a model; counts each forward, and each backward that reaches its output.

    The backward is counted by a tensor hook on the output, which fires exactly once per
    backward pass through it (``loss.backward()`` or ``torch.autograd.grad``), and is charged to
    the phase that ran the forward.
    """

    def __init__(self, model: nn.Module, meter: CostMeter) -> None:
        super().__init__()
        self.model = model
        self.meter = meter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        meter, n, phase = self.meter, x.shape[0], self.meter.phase
        meter.count_forward(n, phase)
        if out.requires_grad and meter.enabled:
            out.register_hook(lambda grad: meter.count_backward(n, phase))
        return out
