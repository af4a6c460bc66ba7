"""The side-by-side report: accuracy and cost per method against the full-data baseline, every
difference with its 95 % interval, every target with a verdict (met / not met / inconclusive).

What it compares. All models are evaluated on the same test examples, so differences are
paired example by example (and seed by seed when there are several seeds). Three robust
figures per method, each named for the attack behind it:

- ``PGD-k`` on the whole test set: cheap, so it resolves small differences, but it can
  over-state robustness;
- ``AutoAttack`` (reference, standard version) on a fixed subset: the trusted figure, but on
  few examples, so its intervals are wide;
- ``AutoAttack, calibrated``: the PGD-k figure on the whole test set corrected by the
  AutoAttack-minus-PGD-k gap measured on the subset (a two-phase estimator,
  :func:`robustprune.stats.two_phase`). It estimates what AutoAttack would give on the whole
  test set, and its interval is narrow when the two attacks agree on most examples. Verdicts
  are read from it.

Speed-up = baseline ÷ method, in example-passes (forward + backward, deterministic) and in
wall-clock training seconds; selection work is inside each method's cost, the shared warm-up
in none. Costs and settings are read from what training recorded, not from the current params.

Budget-matched figures (:mod:`robustprune.frontier`): the runs that differ from the baseline
only in their pass budget form the *full-data frontier*; each method gets its effective
speed-up against it, a verdict against random selection *at equal cost* (a random-selection
run within ±10 % of its passes), and the passes and seconds it took to reach a validation
target (the baseline's final validation PGD accuracy − ``report.target_drop``). The per-epoch
curves of every run go to one CSV for ``dvc plots``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustprune.atomic import atomic_write, atomic_write_json, atomic_write_text
from robustprune.corruption_ops import mean_corruption_error
from robustprune.errors import InputError, require_file
from robustprune.frontier import Bound, Resampled, Speedup, effective_speedup, first_reaching
from robustprune.objectives import OBJECTIVES
from robustprune.schema import param as _p
from robustprune.selection.registry import SELECTORS
from robustprune.stats import (
    Interval,
    Verdict,
    mean_std,
    paired_difference,
    paired_share_difference,
    seeds_difference,
    seeds_proportion,
    seeds_two_phase,
    share_mean,
    verdict_at_least,
)

VOIDING = frozenset({"above_chance", "clean_collapse", "curve_decreasing",
                     "catastrophic_overfitting"})
"""Failed checks that void any comparison with the model: it learned nothing (at chance), it
gave up clean accuracy for robustness (collapse), its robust accuracy rises with ε (masked
gradients: the attack, not the model, failed), or its robustness collapsed during training.
No Δ, speed-up, frontier point or verdict is computed from such a model, and the report names
the check that blocked it. Not among them: ``pgd_trusted`` (PGD-k over-states AutoAttack: why
verdicts are read on the stronger tier) and ``curve_reaches_zero`` (accuracy still above
``report.curve_zero`` at the largest ε of ``eval.eps_factors``: a prompt to look, which data
whose classes differ by more than that ε fail legitimately)."""
EQUAL_COST = 0.1
"""A random-selection run counts as "at equal cost" within ±10 % of the method's passes."""


@dataclass(frozen=True)
class ReportConfig:
    """The ``report`` section: how the report judges and presents the runs. Every threshold
    that decides whether a figure passes a check lives here, not in ``eval``, so changing one
    reruns the report (seconds) and no evaluation."""

    baseline: str = _p("full", doc="the method every Δ and speed-up is relative to (an entry "
                                   "of methods)")
    pareto_axis: str = _p("adversarial", choices=("adversarial", "corruption"),
                          doc="the Pareto plot's robustness axis: AutoAttack-calibrated "
                              "accuracy, or mean common-corruption accuracy")
    chance_margin: float = _p(0.1, lo=0.0, hi=1.0, doc="clean accuracy must beat the majority "
                                                       "class rate by this much")
    collapse_ratio: float = _p(0.5, lo=0.0, hi=1.0, doc="flag clean accuracy below this "
                                                        "share of the clean-trained model's")
    trust_gap: float = _p(0.005, lo=0.0, doc="flag PGD-k when AutoAttack is this far below it "
                                             "on the same examples")
    curve_zero: float = _p(0.05, lo=0.0, hi=1.0, doc="accuracy at the largest eps of the curve "
                                                     "must be <= this")
    target_drop: float = _p(0.01, lo=0.0, hi=1.0, doc="time-to-accuracy target: the "
                                                      "baseline's final validation PGD "
                                                      "accuracy minus this")


def eval_failed(ev: dict[str, Any], cfg: ReportConfig) -> list[str]:
    """The checks one evaluation fails: those the evaluate stage decided (no threshold) and
    those judged here against this section's thresholds from the figures it recorded."""
    failed = set(ev.get("checks_failed", []))
    if ev["clean_acc"] < ev.get("majority_rate", 0.0) + cfg.chance_margin:
        failed.add("above_chance")
    if ev.get("trust_gap") is not None and ev["trust_gap"] > cfg.trust_gap:
        failed.add("pgd_trusted")
    curve = ev.get("eps_curve") or {}
    if curve and curve[max(curve, key=float)] > cfg.curve_zero:
        failed.add("curve_reaches_zero")
    return sorted(failed)


CURVE_COLUMNS = ("run", "method", "seed", "objective", "epoch", "passes", "seconds",
                 "val_pgd_acc", "val_clean_acc")


def _load(path: Path, made_by: str) -> dict[str, Any]:
    require_file(path, made_by)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(f"{path}: not valid JSON; rerun the {made_by} stage") from None


def _examples(path: Path, made_by: str) -> dict[str, np.ndarray]:
    import pandas as pd

    require_file(path, made_by)
    try:
        table = pd.read_parquet(path)
    except Exception:  # pyarrow raises several kinds for a damaged file
        raise InputError(f"{path}: not a readable parquet table; rerun {made_by}") from None
    missing = {"clean", "pgd"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: lacks column {sorted(missing)[0]}; rerun {made_by}")
    return {c: table[c].to_numpy() for c in table.columns}


def collect(params: Any, metrics_dir: Path,
            examples_dir: Path) -> tuple[dict[str, dict[int, dict[str, Any]]],
                                         dict[int, dict[str, Any]]]:
    """Per method and seed: the training and evaluation metrics and the per-example table;
    and per seed, the clean-trained (warm-up) model's evaluation."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for name in params.methods:
        runs[name] = {}
        for seed in params.seeds:
            key = f"{name}-{seed}"
            runs[name][seed] = {
                "train": _load(metrics_dir / "train" / f"{key}.json", f"train@{key}"),
                "eval": _load(metrics_dir / "eval" / f"{key}.json", f"evaluate@{key}"),
                "examples": _examples(examples_dir / f"{key}.parquet", f"evaluate@{key}")}
    clean: dict[int, dict[str, Any]] = {}
    for seed in params.seeds:
        path = metrics_dir / "eval_clean" / f"s{seed}.json"
        if path.exists():
            clean[seed] = {"eval": _load(path, f"evaluate_clean@{seed}"),
                           "examples": _examples(examples_dir / f"clean-s{seed}.parquet",
                                                 f"evaluate_clean@{seed}")}
    return runs, clean


def _prefix(col: np.ndarray) -> np.ndarray:
    """The evaluated prefix of a per-example column (tiers evaluate the first n examples)."""
    n = int((col >= 0).sum())
    return col[:n].astype(bool)


def _common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(a), len(b))
    return a[:n], b[:n]


def _has(ex: list[dict[str, np.ndarray]], column: str) -> bool:
    """Whether every seed's table has ``column``: a tier measured on some seeds only (the
    AutoAttack run later on part of them) is left out rather than averaged over a subset."""
    return all(column in e for e in ex)


def _autoattack(evals: list[dict[str, Any]]) -> tuple[dict[str, float] | None, int]:
    """Mean ± std of AutoAttack accuracy over the seeds and the smallest n, or None when a
    seed was not attacked (a subset's mean would pass for the seeds' mean)."""
    n = min(e.get("n_autoattack", 0) for e in evals)
    return (_stat([e["autoattack_acc"] for e in evals]) if n else None), n


def _robust_interval(ex: list[dict[str, np.ndarray]]) -> Interval | None:
    """AutoAttack-calibrated accuracy of one method over its seeds (None without AutoAttack)."""
    if not _has(ex, "autoattack"):
        return None
    parts = []
    for e in ex:
        pgd, aa = _prefix(e["pgd"]), _prefix(e["autoattack"])
        n = min(len(pgd), len(aa))
        parts.append((pgd.astype(float), aa[:n].astype(float) - pgd[:n].astype(float)))
    return seeds_two_phase(parts)


def _difference(ex_a: list[dict[str, np.ndarray]], ex_b: list[dict[str, np.ndarray]],
                column: str) -> Interval | None:
    """Paired Δ (a − b) on one tier's examples, over the seeds both have."""
    if not (_has(ex_a, column) and _has(ex_b, column)):
        return None
    pairs = [_common(_prefix(a[column]), _prefix(b[column]))
             for a, b in zip(ex_a, ex_b, strict=True)]
    return seeds_difference(pairs) if len(pairs) > 1 else paired_difference(*pairs[0])


def _calibrated_difference(ex_a: list[dict[str, np.ndarray]],
                           ex_b: list[dict[str, np.ndarray]]) -> Interval | None:
    """AutoAttack-calibrated Δ: paired PGD-k Δ on all examples + paired (AA − PGD-k) gap
    difference on the AutoAttack subset."""
    if not (_has(ex_a, "autoattack") and _has(ex_b, "autoattack")):
        return None
    parts = []
    for a, b in zip(ex_a, ex_b, strict=True):
        pa, pb = _common(_prefix(a["pgd"]), _prefix(b["pgd"]))
        aa, ab = _common(_prefix(a["autoattack"]), _prefix(b["autoattack"]))
        n = len(aa)
        gap = (aa.astype(float) - pa[:n]) - (ab.astype(float) - pb[:n])
        parts.append((pa.astype(float) - pb.astype(float), gap))
    return seeds_two_phase(parts)


def _collapsed_epochs(history: list[dict[str, float]]) -> list[int]:
    """Epochs the trainer flagged as catastrophic overfitting (validation PGD accuracy
    ``train.co_drop`` below the best earlier epoch's)."""
    return [int(row.get("epoch", i + 1)) for i, row in enumerate(history)
            if row.get("collapsed")]


def _method_checks(runs: dict[int, dict[str, Any]], clean: dict[int, dict[str, Any]],
                   cfg: ReportConfig) -> list[str]:
    """Names of the failed checks of one method, over all its seeds."""
    failed: set[str] = set()
    for seed, run in runs.items():
        failed.update(eval_failed(run["eval"], cfg))
        if seed in clean and run["eval"]["clean_acc"] < (
                cfg.collapse_ratio * clean[seed]["eval"]["clean_acc"]):
            failed.add("clean_collapse")
        if _collapsed_epochs(run["train"].get("history", [])):
            failed.add("catastrophic_overfitting")
    return sorted(failed)


def _shares(e: dict[str, np.ndarray], copies: int) -> np.ndarray:
    """Per example, the share of its corrupted copies classified right (evaluated prefix)."""
    col = e["corruption"]
    return col[: int((col >= 0).sum())].astype(float) / copies


def _corruption(name: str, runs: dict[str, dict[int, dict[str, Any]]],
                clean: dict[int, dict[str, Any]], ex: dict[str, list[dict[str, np.ndarray]]],
                baseline: str, seeds: list[int]) -> dict[str, Any] | None:
    """Common-corruption figures of one method (None when it was not evaluated on them):
    accuracy (mean ± std, interval over examples), paired Δ vs the baseline, mCE relative to
    the clean-trained model of each seed, accuracy per severity."""
    evals = [runs[name][s]["eval"] for s in seeds]
    if not (all("corruption_acc" in e for e in evals) and _has(ex[name], "corruption")):
        return None
    copies = int(evals[0]["n_corrupted_copies"])
    mine = [_shares(e, copies) for e in ex[name]]
    out: dict[str, Any] = {
        "acc": _stat([e["corruption_acc"] for e in evals]), "n": evals[0]["n_corruption"],
        "source": evals[0].get("corruption_source"),
        "interval": share_mean(mine).as_dict(),
        "by_severity": {k: round(float(np.mean([e["corruption_acc_by_severity"][k]
                                                for e in evals])), 6)
                        for k in evals[0]["corruption_acc_by_severity"]},
        "by_name": {k: round(float(np.mean([e["corruption_acc_by_name"][k] for e in evals])), 6)
                    for k in evals[0]["corruption_acc_by_name"]},
        "delta": None, "mce": None}
    if _has(ex[baseline], "corruption"):
        base = [_shares(e, copies) for e in ex[baseline]]
        out["delta"] = paired_share_difference(
            [_common(a, b) for a, b in zip(mine, base, strict=True)]).as_dict()
    if all(s in clean and "corruption_grid" in clean[s]["eval"] for s in seeds):
        out["mce"] = round(float(np.mean([
            mean_corruption_error(e["corruption_grid"],
                                  clean[s]["eval"]["corruption_grid"])["mce"]
            for s, e in zip(seeds, evals, strict=True)])), 6)
    return out


def _stat(values: list[float]) -> dict[str, float]:
    mean, std = mean_std(values)
    return {"mean": round(mean, 6), "std": round(std, 6)}


def _iv(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.as_dict()


def summarise(runs: dict[str, dict[int, dict[str, Any]]], clean: dict[int, dict[str, Any]],
              baseline: str, cfg: ReportConfig) -> dict[str, Any]:
    """Per method: settings, accuracies (mean ± std over seeds), paired Δs with intervals,
    costs and speed-ups, the random-baseline verdict and the failed checks."""
    if baseline not in runs:
        raise InputError(f"report baseline {baseline!r} is not one of {', '.join(runs)}")
    seeds = sorted(runs[baseline])
    ex = {m: [runs[m][s]["examples"] for s in seeds] for m in runs}
    _check_pairing(runs, clean, baseline, seeds)
    base_passes = float(np.mean([runs[baseline][s]["train"]["cost"]["passes"] for s in seeds]))
    base_secs = float(np.mean([runs[baseline][s]["train"]["cost"]["seconds"] for s in seeds]))
    checks = {name: _method_checks(by_seed, clean, cfg) for name, by_seed in runs.items()}
    voided = {name: sorted(set(c) & VOIDING) for name, c in checks.items()}
    out: dict[str, Any] = {}
    for name, by_seed in runs.items():
        first = by_seed[seeds[0]]
        settings, ev = first["train"]["settings"], first["eval"]
        atk = settings["attack"]
        passes = float(np.mean([by_seed[s]["train"]["cost"]["passes"] for s in seeds]))
        secs = float(np.mean([by_seed[s]["train"]["cost"]["seconds"] for s in seeds]))
        evals = [by_seed[s]["eval"] for s in seeds]
        aa, n_aa = _autoattack(evals)
        row: dict[str, Any] = {
            "selector": settings["selector"], "fraction": settings["fraction"],
            "miner": settings["miner"],
            "attack": ("none" if not OBJECTIVES[settings["objective"]["name"]].uses_attack
                       else atk["name"] if atk["name"] != "pgd" else f"pgd-{atk['steps']}"),
            "objective": settings["objective"]["name"], "seeds": seeds,
            "clean_acc": _stat([e["clean_acc"] for e in evals]),
            "pgd_acc": _stat([e["pgd_acc"] for e in evals]), "n_pgd": ev["n_pgd"],
            "pgd_label": ev["pgd_label"],
            "autoattack_acc": aa, "n_autoattack": n_aa,
            "autoattack_label": ev.get("autoattack_label"),
            "pgd_interval": _iv(seeds_proportion([_prefix(e["pgd"]) for e in ex[name]])),
            "robust_calibrated": _iv(_robust_interval(ex[name])),
            "delta_clean": _iv(_difference(ex[name], ex[baseline], "clean")),
            "delta_pgd": _iv(_difference(ex[name], ex[baseline], "pgd")),
            "delta_autoattack": _iv(_difference(ex[name], ex[baseline], "autoattack")),
            "delta_calibrated": _iv(_calibrated_difference(ex[name], ex[baseline])),
            "passes": round(passes), "seconds": round(secs, 2),
            "relative_cost": round(passes / max(base_passes, 1), 4),
            "speedup_passes": round(base_passes / max(passes, 1), 3),
            "speedup_seconds": round(base_secs / max(secs, 1e-9), 3),
            "checks_failed": checks[name],
            "voided_by": voided[name],
            "blocked_by": _blocked_by(name, baseline, voided),
        }
        row["checks_passed"] = not row["checks_failed"]
        row["corruption"] = _corruption(name, runs, clean, ex, baseline, seeds)
        if row["blocked_by"]:
            for key in ("delta_clean", "delta_pgd", "delta_autoattack", "delta_calibrated",
                        "speedup_passes", "speedup_seconds"):
                row[key] = None
            if row["corruption"] is not None:
                row["corruption"]["delta"] = None
        out[name] = row
    budget_matched(runs, ex, out, baseline, seeds, cfg)
    return out


def _blocked_by(name: str, baseline: str, voided: dict[str, list[str]]) -> list[str]:
    """Why ``name`` cannot be compared with the baseline: each voiding check that it or the
    baseline failed, as "model: check" (empty when nothing blocks it)."""
    return [f"{n}: {c}" for n in dict.fromkeys((name, baseline)) for c in voided[n]]


def _check_pairing(runs: dict[str, dict[int, dict[str, Any]]],
                   clean: dict[int, dict[str, Any]], baseline: str, seeds: list[int]) -> None:
    """Paired comparisons zip per-example tables row by row: every table of a seed must hold
    the same test examples in the same order as the baseline's (same labels on the rows both
    have), else a Δ would pair different examples and look precise."""
    for seed in seeds:
        ref = runs[baseline][seed]["examples"]
        others = [(f"{n}-{seed}", runs[n][seed]["examples"]) for n in runs if n != baseline]
        if seed in clean:
            others.append((f"clean-s{seed}", clean[seed]["examples"]))
        for key, table in others:
            for col in ("label", "index"):
                if col not in ref or col not in table:
                    continue
                n = min(len(ref[col]), len(table[col]))
                bad = np.flatnonzero(np.asarray(ref[col][:n]) != np.asarray(table[col][:n]))
                if len(bad):
                    raise InputError(
                        f"per-example table {key}: its {col} differs from {baseline}-{seed}'s "
                        f"at row {int(bad[0])} ({table[col][bad[0]]} vs {ref[col][bad[0]]}): "
                        f"the two were evaluated on different test examples; rerun "
                        f"evaluate for both on the same data")


def _attack_key(settings: dict[str, Any]) -> tuple[Any, ...]:
    atk = settings["attack"]
    return atk["name"], atk.get("steps"), atk.get("alpha"), settings["objective"]["name"]


def _same_but_budget(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two runs that differ at most in their pass budget (so the frontier and the baseline
    are defined by what was trained, not by entry names)."""
    return (a["selector"] == b["selector"] and a["miner"] == b["miner"]
            and a["fraction"] == b["fraction"] and _attack_key(a) == _attack_key(b)
            and a.get("selector_options") == b.get("selector_options")
            and a.get("miner_options") == b.get("miner_options"))


def budget_matched(runs: dict[str, dict[int, dict[str, Any]]],
                   ex: dict[str, list[dict[str, np.ndarray]]], out: dict[str, Any],
                   baseline: str, seeds: list[int], cfg: ReportConfig) -> None:
    """Add the budget-matched figures to each row of ``out``: frontier membership, effective
    speed-up (passes and seconds), random selection at equal cost, time to the target."""
    settings = {n: runs[n][seeds[0]]["train"]["settings"] for n in runs}
    usable = [n for n in runs if not out[n]["voided_by"]]
    frontier = [n for n in usable if _same_but_budget(settings[n], settings[baseline])]
    passes = {n: float(out[n]["passes"]) for n in runs}
    secs = {n: float(out[n]["seconds"]) for n in runs}
    acc = Resampled({n: np.stack(_common_prefix([_prefix(e["pgd"]) for e in ex[n]]))
                     for n in runs})
    random_runs = [n for n in usable if SELECTORS[settings[n]["selector"]].random
                   and settings[n]["miner"] == settings[baseline]["miner"]
                   and _attack_key(settings[n]) == _attack_key(settings[baseline])]
    # time to accuracy on what the objective trains for: validation PGD accuracy, or clean
    # accuracy for objectives without an attack (AugMix, clean)
    metric = ("val_pgd_acc" if OBJECTIVES[settings[baseline]["objective"]["name"]].uses_attack
              else "val_clean_acc")
    base_final = float(np.mean([_final_val(runs[baseline][s]["train"], metric)
                                for s in seeds]))
    target = base_final - cfg.target_drop
    for name, row in out.items():
        row["budget"] = settings[name].get("budget", 0.0)
        row["same_attack"] = _attack_key(settings[name]) == _attack_key(settings[baseline])
        row["frontier"] = name in frontier
        blocked = bool(row["blocked_by"])
        sp = None if blocked else _effective(frontier, passes, name, acc)
        ss = None if blocked else _effective(frontier, secs, name, acc)
        row["effective_speedup"] = None if sp is None else {
            **sp.as_dict(), "text": str(sp), "position": sp.position()}
        row["effective_speedup_seconds"] = None if ss is None else {**ss.as_dict(),
                                                                    "text": str(ss)}
        row["vs_random"] = (None if blocked
                            else _vs_random(name, row, random_runs, out, ex, frontier))
        reached = [first_reaching(runs[name][s]["train"].get("history", []), target, metric)
                   for s in seeds]
        hit = [r for r in reached if r is not None]
        row["to_target"] = {
            "metric": metric, "target": round(target, 6), "reached": len(hit),
            "of": len(reached),
            "passes": round(float(np.mean([r["passes"] for r in hit]))) if hit else None,
            "seconds": round(float(np.mean([r["seconds"] for r in hit])), 2) if hit else None}


def _effective(frontier: list[str], cost: dict[str, float], name: str,
               acc: Resampled) -> Speedup | None:
    """Effective speed-up on one cost axis; None without two distinct positive frontier costs
    (wall-clock can tie or invert between close budgets) or a positive cost of its own."""
    points: list[tuple[str, float]] = []
    for n in sorted(frontier, key=lambda n: cost[n]):
        if cost[n] > 0 and (not points or cost[n] > points[-1][1]):
            points.append((n, cost[n]))
    if len(points) < 2 or cost[name] <= 0:
        return None
    return effective_speedup(points, name, cost[name], acc)


def _common_prefix(cols: list[np.ndarray]) -> list[np.ndarray]:
    n = min(len(c) for c in cols)
    return [c[:n] for c in cols]


def _final_val(train: dict[str, Any], metric: str = "val_pgd_acc") -> float:
    """A validation accuracy of the model training kept (after a rollback: the kept
    epoch's)."""
    final = train.get("final") or {}
    if metric in final:
        return float(final[metric])
    return float(train["history"][-1][metric])


def _vs_random(name: str, row: dict[str, Any], random_runs: list[str], out: dict[str, Any],
               ex: dict[str, list[dict[str, np.ndarray]]],
               frontier: list[str]) -> dict[str, Any] | None:
    """The verdict of ``name`` against the random-selection run closest to its cost, if one
    is within ±EQUAL_COST (None for random runs and frontier runs themselves)."""
    if name in random_runs or name in frontier:
        return None
    near = [(abs(out[r]["passes"] / max(row["passes"], 1) - 1), r) for r in random_runs]
    near = [(d, r) for d, r in near if d <= EQUAL_COST]
    if not near:
        return {"random": None, "verdict": None,
                "note": "no random-selection run within ±10 % of its passes"}
    _, peer = min(near)
    iv = _headline(ex[name], ex[peer])
    return {"random": peer, "cost_ratio": round(out[peer]["passes"] / max(row["passes"], 1), 4),
            "delta": iv.as_dict(), "verdict": verdict_at_least(iv, 0.0)}


def _headline(ex_a: list[dict[str, np.ndarray]], ex_b: list[dict[str, np.ndarray]]) -> Interval:
    """The verdict metric: AutoAttack-calibrated Δ, or the PGD-k Δ without AutoAttack."""
    iv = _calibrated_difference(ex_a, ex_b)
    if iv is None:
        iv = _difference(ex_a, ex_b, "pgd")
    assert iv is not None
    return iv


def combine(verdicts: list[Verdict]) -> Verdict:
    """All parts met → met; any part not met → not met; otherwise inconclusive."""
    if any(v == "not met" for v in verdicts):
        return "not met"
    return "met" if all(v == "met" for v in verdicts) else "inconclusive"


def _delta(row: dict[str, Any]) -> dict[str, Any]:
    return row["delta_calibrated"] or row["delta_pgd"]


def _from_dict(d: dict[str, Any]) -> Interval:
    return Interval(**{k: d[k] for k in ("estimate", "low", "high", "n", "seeds", "method")})


def _accuracy_verdict(row: dict[str, Any], target: float) -> Verdict:
    return verdict_at_least(_from_dict(_delta(row)), target)


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The product's targets, each vs the baseline in the same run. Pass speed-ups are
    deterministic counts (and wall-clock); accuracy parts are read from the interval of the
    AutoAttack-calibrated Δ, effective speed-ups from their bootstrap interval: met when the
    whole interval clears the bound, not met when it lies wholly below, else inconclusive.
    Which runs compete is read from what they trained (selector kind, miner, attack). Every
    candidate is judged: the target is met when any candidate meets it, not met only when
    every candidate misses it, else inconclusive; the entry names the deciding candidate (the
    best-scored one with that verdict) and lists each candidate's verdict. A candidate that a
    voiding check blocks is left out and named; with none left the verdict is "blocked"."""
    out: list[dict[str, Any]] = []

    def add(label: str, candidates: list[str], score: Callable[[dict[str, Any]], float],
            rule: Callable[[dict[str, Any]], list[Verdict]],
            measured: Callable[[dict[str, Any]], str]) -> None:
        if not candidates:
            out.append({"target": label, "method": None, "verdict": "not assessed",
                        "measured": "no such method in this run", "candidates": {}})
            return
        blocked = {n: summary[n]["blocked_by"] for n in candidates if summary[n]["blocked_by"]}
        open_ = sorted((n for n in candidates if n not in blocked),
                       key=lambda n: score(summary[n]), reverse=True)
        if not open_:
            why = sorted({b for bs in blocked.values() for b in bs})
            out.append({"target": label, "method": None, "verdict": "blocked",
                        "measured": f"blocked by failed checks ({'; '.join(why)})",
                        "candidates": {n: "blocked" for n in candidates}})
            return
        verdicts: dict[str, str] = {n: combine(rule(summary[n])) for n in open_}
        decided = next((v for v in ("met", "inconclusive") if v in verdicts.values()),
                       "not met")
        best = next(n for n in open_ if verdicts[n] == decided)
        note = measured(summary[best])
        if blocked:
            note += f" ({', '.join(blocked)}: blocked by failed checks)"
        out.append({"target": label, "method": best, "verdict": decided, "measured": note,
                    "candidates": {**verdicts, **{n: "blocked" for n in blocked}}})

    def cost_and_delta(r: dict[str, Any]) -> str:
        return (f"{r['speedup_passes']:.2f}× passes, {r['speedup_seconds']:.2f}× s, "
                f"Δ {_fmt_delta(_delta(r))}")

    def effective(r: dict[str, Any]) -> Any:
        sp = r.get("effective_speedup")
        return None if sp is None else _speedup_from(sp)

    def subset(r: dict[str, Any]) -> bool:
        sel = SELECTORS[r["selector"]]
        return sel.uses_fraction and not sel.random and r["fraction"] < 1

    if not OBJECTIVES[next(iter(summary.values()))["objective"]].uses_attack:
        def corruption_delta(r: dict[str, Any]) -> Interval | None:
            c = r.get("corruption")
            return None if c is None or c["delta"] is None else _from_dict(c["delta"])

        add("BulletTrain for AugMix: ≥1.7× passes, corruption Δ ≥ −1 pt",
            [n for n, r in summary.items() if r["miner"] != "none"
             and not SELECTORS[r["selector"]].uses_fraction],
            lambda r: (corruption_delta(r).estimate if corruption_delta(r) else float("-inf")),
            lambda r: ["met" if r["speedup_passes"] >= 1.7 else "not met",
                       verdict_at_least(corruption_delta(r), -0.01) if corruption_delta(r)
                       else "inconclusive"],
            lambda r: (f"{r['speedup_passes']:.2f}× passes, {r['speedup_seconds']:.2f}× s, "
                       f"corruption Δ {_fmt_delta(r['corruption'] and r['corruption']['delta'])}"))
        return out
    add("BulletTrain: ≥2× passes, robust Δ ≥ −1 pt",
        [n for n, r in summary.items() if r["miner"] != "none" and not
         SELECTORS[r["selector"]].uses_fraction and r["same_attack"]],
        lambda r: _delta(r)["estimate"],
        lambda r: ["met" if r["speedup_passes"] >= 2 else "not met",
                   _accuracy_verdict(r, -0.01)], cost_and_delta)
    add("best subset selector: ≥2.5× effective speed-up",
        [n for n, r in summary.items() if subset(r) and r["miner"] == "none"
         and r["same_attack"]],
        lambda r: (effective(r).estimate.value if effective(r) else float("-inf")),
        lambda r: [effective(r).verdict_at_least(2.5) if effective(r) else "inconclusive"],
        lambda r: (f"effective {r['effective_speedup']['text']}, {r['speedup_passes']:.2f}× "
                   f"passes at equal epochs" if r["effective_speedup"] else
                   "no full-data frontier (train the baseline at ≥ 2 budgets)"))
    add("best stack: ≥5× passes, ≥4× wall-clock, robust Δ ≥ −1 pt",
        [n for n, r in summary.items() if subset(r) and r["miner"] != "none"
         and not r["same_attack"]],
        lambda r: _delta(r)["estimate"],
        lambda r: ["met" if r["speedup_passes"] >= 5 else "not met",
                   "met" if r["speedup_seconds"] >= 4 else "not met",
                   _accuracy_verdict(r, -0.01)], cost_and_delta)
    return out


def _speedup_from(d: dict[str, Any]) -> Speedup:
    return Speedup(*(Bound(d[k]["value"], d[k]["side"]) for k in ("estimate", "low", "high")),
                   conf=d["conf"])


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (lower cost, higher accuracy), ordered by cost."""
    front, best = [], float("-inf")
    for name, (_cost, acc) in sorted(points.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        if acc > best:
            front.append(name)
            best = acc
    return front


def _pct(stat: dict[str, float] | None, seeds: int) -> str:
    if stat is None:
        return "–"
    return f"{100 * stat['mean']:.2f}" + (f" ± {100 * stat['std']:.2f}" if seeds > 1 else "")


def _fmt_delta(d: dict[str, Any] | None, row: dict[str, Any] | None = None) -> str:
    if row is not None and row.get("blocked_by"):
        return "blocked"
    if d is None:
        return "–"
    return (f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]")


def _checks_text(failed: list[str]) -> str:
    """The checks a model failed, said as failures; those that void comparisons marked."""
    if not failed:
        return "all passed"
    return "failed: " + ", ".join(f"{c} (voids comparisons)" if c in VOIDING else c
                                  for c in failed)


def _budget(r: dict[str, Any]) -> str:
    return f"{r['budget']:g}×" if r.get("budget") else "epochs"


def _vs_random_text(r: dict[str, Any]) -> str:
    v = r.get("vs_random")
    if v is None:
        return "–"
    if v["random"] is None:
        return "no random run at this cost"
    return f"{v['verdict']} vs {v['random']} ({_fmt_delta(v['delta'])})"


def _target_text(r: dict[str, Any]) -> str:
    t = r["to_target"]
    if not t["reached"]:
        return "not reached"
    return (f"{t['passes']:,} / {t['seconds']:.0f} s" +
            (f" ({t['reached']} of {t['of']} seeds)" if t["reached"] < t["of"] else ""))


def markdown(summary: dict[str, Any], clean: dict[int, dict[str, Any]],
             goal: list[dict[str, Any]], baseline: str = "full",
             cfg: ReportConfig | None = None) -> str:
    """Two tables (accuracy; cost and speed-ups), the notes that define them, the targets."""
    cfg = cfg or ReportConfig()
    first = next(iter(summary.values()))
    pgd_name = first["pgd_label"].split(" ")[0]
    lines = [f"| method | selector | f | miner | attack | budget | clean % | {pgd_name} % (n) | "
             f"AutoAttack % (n) | Δ {pgd_name} vs {baseline}, pts [95 % CI] | Δ AutoAttack, "
             "calibrated, pts [95 % CI] | checks |", "|" + "---|" * 12]
    for name, r in summary.items():
        s = len(r["seeds"])
        lines.append(
            f"| {name} | {r['selector']} | {r['fraction']:g} | {r['miner']} | {r['attack']} | "
            f"{_budget(r)} | {_pct(r['clean_acc'], s)} | {_pct(r['pgd_acc'], s)} ({r['n_pgd']}) "
            f"| {_pct(r['autoattack_acc'], s)} ({r['n_autoattack']}) | "
            f"{_fmt_delta(r['delta_pgd'], r)} | {_fmt_delta(r['delta_calibrated'], r)} | "
            f"{_checks_text(r['checks_failed'])} |")
    if clean:
        evs = [c["eval"] for c in clean.values()]
        s = len(evs)
        failed = sorted({f for e in evs for f in eval_failed(e, cfg)})
        aa, n_aa = _autoattack(evs)
        lines.append(f"| clean-trained (warm-up only) | – | – | – | none | – | "
                     f"{_pct(_stat([e['clean_acc'] for e in evs]), s)} | "
                     f"{_pct(_stat([e['pgd_acc'] for e in evs]), s)} ({evs[0]['n_pgd']}) | "
                     f"{_pct(aa, s)} ({n_aa}) | – | – | "
                     f"{_checks_text(failed)} |")
    target = first["to_target"]["target"]
    lines += ["", f"| method | passes | train s | speed-up at equal epochs (passes / s) | "
              f"effective speed-up, passes [95 % CI] | effective speed-up, s | vs full-data "
              f"frontier | vs random at equal cost (Δ, pts) | to val "
              f"{'clean' if first['to_target'].get('metric') == 'val_clean_acc' else 'PGD-10'} "
              f"≥ {100 * target:.1f} % (passes / s) |", "|" + "---|" * 9]
    for name, r in summary.items():
        sp, ss = r["effective_speedup"], r["effective_speedup_seconds"]
        lines.append(
            f"| {name} | {r['passes']:,} | {r['seconds']:.0f} | "
            + ("blocked" if r["blocked_by"] else
               f"{r['speedup_passes']:.2f}× / {r['speedup_seconds']:.2f}×")
            + f" | {sp['text'] if sp else '–'} | "
            f"{ss['text'].split(' [')[0] if ss else '–'} | "
            f"{('frontier run' if r['frontier'] else sp['position']) if sp else '–'} | "
            f"{_vs_random_text(r)} | {_target_text(r)} |")
    seeds = first["seeds"]
    frontier = [n for n, r in summary.items() if r["frontier"]]
    lines += ["", f"Seeds: {', '.join(map(str, seeds))} (± is the std over seeds). "
              f"{first['pgd_label']} on {first['n_pgd']} test examples; "
              f"{first['autoattack_label'] or 'no AutoAttack'} on the first "
              f"{first['n_autoattack']}. Δ intervals are paired over the same test examples"
              + (" and over seeds" if len(seeds) > 1 else "") + "; the calibrated Δ corrects "
              "the PGD Δ by the AutoAttack−PGD gap measured on the AutoAttack subset. "
              f"Budget: the share of {baseline}'s passes a run was given (its schedule annealed "
              f"to it), or `epochs` for train.epochs epochs. Full-data frontier: "
              f"{', '.join(frontier)} ({baseline} at other budgets); effective speed-up = the "
              f"passes (or seconds) at which the frontier reaches a run's {pgd_name} accuracy "
              "÷ the run's own, interpolated in log-cost, ≤/≥ where it lies outside the "
              "frontier's budgets; interval: bootstrap over test examples"
              + (" and seeds" if len(seeds) > 1 else "") + ". Random at equal cost: a "
              "random-selection run within ±10 % of the passes, compared by the calibrated Δ. "
              "Time to target: first epoch whose validation "
              f"{'clean' if first['to_target'].get('metric') == 'val_clean_acc' else 'PGD-10'}"
              f" accuracy reaches {baseline}'s final one minus `report.target_drop`.", "",
              "| target | method | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['method'] or '–'} | {t['measured']} | {t['verdict']} |"
              for t in goal]
    blocked = {n: r["blocked_by"] for n, r in summary.items() if r["blocked_by"]}
    if blocked:
        lines += ["", "Blocked comparisons (no Δ, speed-up, frontier point or verdict is "
                  "computed from a model that failed a voiding check): " + "; ".join(
                      f"{n} ({', '.join(b)})" for n, b in blocked.items()) + "."]
    return "\n".join(lines + corruption_table(summary, clean, baseline)) + "\n"


def corruption_table(summary: dict[str, Any], clean: dict[int, dict[str, Any]],
                     baseline: str) -> list[str]:
    """The common-corruption table (empty when no run was evaluated on corruptions)."""
    rows = {n: r["corruption"] for n, r in summary.items() if r.get("corruption")}
    if not rows:
        return []
    first = next(iter(rows.values()))
    sev = list(first["by_severity"])
    lines = ["", f"| method | clean % | corruption % (mean of {len(first['by_name'])} × "
             f"{len(sev)}) [95 % CI] | Δ corruption vs {baseline}, pts [95 % CI] | mCE vs "
             "clean-trained | worst corruption % | " + " | ".join(f"severity {k} %" for k in sev)
             + " |", "|" + "---|" * (6 + len(sev))]
    for name, c in rows.items():
        r, s = summary[name], len(summary[name]["seeds"])
        worst = min(c["by_name"], key=c["by_name"].get)
        iv = c["interval"]
        lines.append(
            f"| {name} | {_pct(r['clean_acc'], s)} | {_pct(c['acc'], s)} "
            f"[{100 * iv['low']:.2f}, {100 * iv['high']:.2f}] | {_fmt_delta(c['delta'])} | "
            f"{'–' if c['mce'] is None else format(c['mce'], '.3f')} | "
            f"{worst} {100 * c['by_name'][worst]:.1f} | "
            + " | ".join(f"{100 * c['by_severity'][k]:.1f}" for k in sev) + " |")
    evs = [c["eval"] for c in clean.values() if "corruption_acc" in c["eval"]]
    if evs:
        by_sev = {k: float(np.mean([e["corruption_acc_by_severity"][k] for e in evs]))
                  for k in sev}
        by_name = {k: float(np.mean([e["corruption_acc_by_name"][k] for e in evs]))
                   for k in evs[0]["corruption_acc_by_name"]}
        worst = min(by_name, key=by_name.get)
        lines.append(f"| clean-trained (warm-up only) | "
                     f"{_pct(_stat([e['clean_acc'] for e in evs]), len(evs))} | "
                     f"{_pct(_stat([e['corruption_acc'] for e in evs]), len(evs))} | – | 1.000 "
                     f"| {worst} {100 * by_name[worst]:.1f} | "
                     + " | ".join(f"{100 * by_sev[k]:.1f}" for k in sev) + " |")
    lines += ["", f"Common corruptions: {first['source']}, the first {first['n']} test examples "
              f"× {len(first['by_name'])} corruptions × {len(sev)} severities. Interval and Δ: "
              "per-example share of the corrupted copies classified right, paired over the "
              "same examples (t interval; examples, not copies, are the independent units). "
              "mCE: per corruption the errors summed over severities ÷ the clean-trained "
              "model's, averaged over corruptions (< 1: more robust than it)."]
    return lines


def _axis_interval(r: dict[str, Any], axis: str) -> dict[str, Any]:
    """A run's robustness on the Pareto axis: AutoAttack-calibrated (else PGD-k) accuracy, or
    mean common-corruption accuracy."""
    if axis == "corruption":
        if not r.get("corruption"):
            raise InputError("report.pareto_axis = corruption: a run has no corruption "
                             "accuracy (evaluate it with --corrupted)")
        return r["corruption"]["interval"]
    return r["robust_calibrated"] or r["pgd_interval"]


def _front(summary: dict[str, Any], axis: str) -> list[str]:
    """The Pareto front (relative cost vs the axis's estimate) of the runs no voiding check
    blocks: the summary's and the plot's."""
    return pareto_front({n: (r["relative_cost"], _axis_interval(r, axis)["estimate"])
                         for n, r in summary.items() if not r["voided_by"]})


def plot(summary: dict[str, Any], path: Path, axis: str = "adversarial") -> None:
    """Robustness vs relative cost (passes ÷ full), 95 % intervals as error bars, with the
    Pareto front of the point estimates. ``axis``: adversarial (AutoAttack-calibrated, else
    PGD-k accuracy) or corruption (mean common-corruption accuracy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def iv(r: dict[str, Any]) -> dict[str, Any]:
        return _axis_interval(r, axis)

    points = {n: (r["relative_cost"], 100 * iv(r)["estimate"]) for n, r in summary.items()}
    front = _front(summary, axis)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, (x, y) in points.items():
        on = name in front
        i = iv(summary[name])
        ax.errorbar([x], [y], yerr=[[y - 100 * i["low"]], [100 * i["high"] - y]],
                    fmt="o", ms=7 if on else 5, c="tab:red" if on else "tab:blue", capsize=3,
                    zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if front:  # empty when every model failed a voiding check
        fx, fy = zip(*(points[n] for n in front), strict=True)
        ax.step(fx, fy, where="post", c="tab:red", lw=1, alpha=0.7, label="Pareto front")
    frontier = sorted((points[n] for n, r in summary.items() if r.get("frontier")))
    if len(frontier) >= 2:
        gx, gy = zip(*frontier, strict=True)
        ax.plot(gx, gy, c="tab:gray", lw=1.5, ls="--", zorder=2,
                label="full-data frontier (budgets)")
        ax.set_xscale("log")
    ax.set_xlabel("relative training cost (example-passes ÷ full)")
    calibrated = next(iter(summary.values()))["robust_calibrated"] is not None
    ax.set_ylabel("mean common-corruption accuracy (%)" if axis == "corruption" else
                  "AutoAttack accuracy, calibrated (%)" if calibrated else
                  f"{next(iter(summary.values()))['pgd_label'].split(' ')[0]} accuracy (%)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to name when every run is voided
        ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def curves(runs: dict[str, dict[int, dict[str, Any]]]) -> str:
    """Per-epoch validation accuracy of every run against cumulative passes and seconds, one
    CSV (long format, a ``run`` column) for ``dvc plots``: one overlay per axis."""
    out = io.StringIO()
    out.write(",".join(CURVE_COLUMNS) + "\n")
    for name, by_seed in runs.items():
        for seed, run in sorted(by_seed.items()):
            objective = run["train"]["settings"]["objective"]["name"]
            for i, row in enumerate(run["train"].get("history", [])):
                values = [f"{name}-{seed}", name, seed, objective, row.get("epoch", i + 1),
                          row.get("cum_passes", ""), row.get("cum_seconds", ""),
                          row.get("val_pgd_acc", ""), row.get("val_clean_acc", "")]
                out.write(",".join(str(v) for v in values) + "\n")
    return out.getvalue()


def report(params: Any, metrics_dir: Path, examples_dir: Path, summary_out: Path,
           table_out: Path, plot_out: Path | None,
           curves_out: Path | None = None) -> dict[str, Any]:
    """Write the summary JSON, the markdown tables, the Pareto plot with the full-data frontier
    and the curves CSV (inputs checked first). ``params`` holds ``seeds``, ``methods`` and
    ``report``."""
    cfg: ReportConfig = params.report
    baseline = cfg.baseline
    if not params.methods:
        raise InputError("methods: no methods defined in params; nothing to report")
    runs, clean = collect(params, metrics_dir, examples_dir)
    summary = summarise(runs, clean, baseline, cfg)
    goal = targets(summary)
    result = {"baseline": baseline, "seeds": list(params.seeds), "methods": summary,
              "targets": goal,
              "pareto_axis": cfg.pareto_axis,
              "pareto_front": _front(summary, cfg.pareto_axis),
              "clean_trained": {str(s): {**{k: c["eval"].get(k) for k in (
                  "clean_acc", "pgd_acc", "autoattack_acc", "n_autoattack", "corruption_acc")},
                  "checks_failed": eval_failed(c["eval"], cfg)}
                  for s, c in clean.items()}}
    atomic_write_json(summary_out, result)
    atomic_write_text(table_out, markdown(summary, clean, goal, baseline, cfg))
    if plot_out is not None:
        plot(summary, plot_out, cfg.pareto_axis)
    if curves_out is not None:
        atomic_write_text(curves_out, curves(runs))
    return result
