"""A stack's components: which of the report's runs apply each of its savings alone, and where
each stands against the full-data frontier.

Why: a stack (a selector × a miner × a cheaper attack) multiplies its savings, but it pays off
only when each saving does. A component that sits on or below the frontier — one that all data
for fewer epochs matches — drags the stack with it, and the stack's own reading cannot say
which one. So for every run that differs from the baseline in more than one way, the report
looks up, among the runs it already has, the one that differs in that way alone (same weight
averaging and pass budget), and gives that run's effective speed-up and position. Which runs
are which is read from what they trained, not from entry names, as for the frontier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from robustprune.frontier import Speedup
from robustprune.report.budget import BudgetMatched, attack_key

AXES = ("selection", "mining", "attack")
"""The ways a run can save compute against the baseline, in the order a stack names them."""


def _options(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True)


def _axes(settings: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """What a run did on each axis: its selector, fraction and options; its miner and options;
    its attack."""
    return {"selection": (settings["selector"], settings["fraction"],
                          _options(settings.get("selector_options"))),
            "mining": (settings["miner"], _options(settings.get("miner_options"))),
            "attack": attack_key(settings)}


def savings(settings: dict[str, Any], base: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The axes on which a run's training differs from the baseline's, each with what the run
    did on it."""
    mine, theirs = _axes(settings), _axes(base)
    return {axis: mine[axis] for axis in AXES if mine[axis] != theirs[axis]}


def describe(axis: str, what: tuple[Any, ...]) -> str:
    """A component as the tables name it: ``prune 0.3``, ``bullettrain``, ``fgsm-rs``."""
    if axis == "selection":
        return f"{what[0]} {what[1]:g}"
    if axis == "mining":
        return str(what[0])
    name, steps = what[0], what[1]
    return f"pgd-{steps}" if name == "pgd" else str(name)


@dataclass(frozen=True)
class Component:
    """One saving of a stack: the axis, what the stack does on it, the run that does only
    that (None: the report has none), and that run's effective speed-up (None: none, or a
    blocked comparison)."""

    axis: str
    what: str
    run: str | None
    speedup: Speedup | None

    @property
    def position(self) -> str | None:
        """above / on / below / outside its budgets; None without a reading."""
        return None if self.speedup is None else self.speedup.position()

    def as_dict(self) -> dict[str, Any]:
        return {"axis": self.axis, "what": self.what, "run": self.run,
                "position": self.position,
                "effective_speedup": None if self.speedup is None else str(self.speedup)}

    def text(self) -> str:
        if self.run is None:
            return f"{self.axis} {self.what}: no run of it alone"
        if self.speedup is None:
            return f"{self.axis} {self.run}: no reading"
        return f"{self.axis} {self.run}: {self.position}, {self.speedup}"


@dataclass(frozen=True)
class Stack:
    """A run that saves on several axes, and its components."""

    components: list[Component]

    @property
    def all_above(self) -> bool | None:
        """True: every component is above the frontier; False: one is read and is not;
        None: no component is read as not above, but one lacks a reading."""
        positions = [c.position for c in self.components]
        if any(p is not None and p != "above" for p in positions):
            return False
        return None if None in positions else True

    @property
    def not_above(self) -> list[str]:
        """The components read on, below or outside the frontier (their runs)."""
        return [c.run for c in self.components
                if c.run is not None and c.position not in (None, "above")]

    def as_dict(self) -> dict[str, Any]:
        return {"components": [c.as_dict() for c in self.components],
                "all_above": self.all_above, "not_above": self.not_above}


def stacks(settings: dict[str, dict[str, Any]], baseline: str,
           matched: dict[str, BudgetMatched]) -> dict[str, Stack]:
    """Per run that saves on two or more axes, its components. ``settings``: what each run
    trained (``train`` metrics); ``matched``: each run's budget-matched figures. A component
    run saves on that axis alone, as the stack does, with the stack's weight averaging and
    pass budget; the first such run in ``settings``' order is taken."""
    base = settings[baseline]
    saved = {n: savings(s, base) for n, s in settings.items()}
    out: dict[str, Stack] = {}
    for name, axes in saved.items():
        if len(axes) < 2:
            continue
        parts = []
        for axis, what in axes.items():
            alone = next((n for n, other in saved.items()
                          if n != name and other == {axis: what}
                          and settings[n].get("ema", 0.0) == settings[name].get("ema", 0.0)
                          and settings[n].get("budget", 0.0)
                          == settings[name].get("budget", 0.0)), None)
            parts.append(Component(axis=axis, what=describe(axis, what), run=alone,
                                   speedup=None if alone is None
                                   else matched[alone].effective_speedup))
        out[name] = Stack(parts)
    return out


def stacks_text(found: dict[str, Stack], speedups: dict[str, Speedup | None]) -> list[str]:
    """The report's paragraph on stacks (empty without one): each stack's components with
    their positions, its own, and whether every component is above the frontier."""
    if not found:
        return []
    items = []
    for name, stack in found.items():
        own = speedups.get(name)
        verdict = {True: "every component above the frontier",
                   False: "not above: " + ", ".join(stack.not_above),
                   None: "a component without a reading"}[stack.all_above]
        items.append(f"{name} = " + " + ".join(c.text() for c in stack.components)
                     + f"; the stack: {'no reading' if own is None else own.position()}"
                     + ("" if own is None else f", {own}") + f" ({verdict})")
    return ["", "Stacks and their components (each saving alone, with the stack's weight "
            "averaging and budget, against the same full-data frontier, effective speed-up "
            "in passes): " + "; ".join(items) + "."]
