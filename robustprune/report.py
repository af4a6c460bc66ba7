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
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robustprune.config import EvalConfig, Params
from robustprune.errors import InputError, require_file
from robustprune.io import atomic_write, atomic_write_json, atomic_write_text
from robustprune.stats import (
    Interval,
    Verdict,
    mean_std,
    paired_difference,
    seeds_difference,
    seeds_proportion,
    seeds_two_phase,
    verdict_at_least,
)

RANDOM_BASELINES = ("random", "random-online")


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


def collect(params: Params, metrics_dir: Path,
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


def _robust_interval(ex: list[dict[str, np.ndarray]]) -> Interval | None:
    """AutoAttack-calibrated accuracy of one method over its seeds (None without AutoAttack)."""
    if "autoattack" not in ex[0]:
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
    if column not in ex_a[0] or column not in ex_b[0]:
        return None
    pairs = [_common(_prefix(a[column]), _prefix(b[column]))
             for a, b in zip(ex_a, ex_b, strict=True)]
    return seeds_difference(pairs) if len(pairs) > 1 else paired_difference(*pairs[0])


def _calibrated_difference(ex_a: list[dict[str, np.ndarray]],
                           ex_b: list[dict[str, np.ndarray]]) -> Interval | None:
    """AutoAttack-calibrated Δ: paired PGD-k Δ on all examples + paired (AA − PGD-k) gap
    difference on the AutoAttack subset."""
    if "autoattack" not in ex_a[0] or "autoattack" not in ex_b[0]:
        return None
    parts = []
    for a, b in zip(ex_a, ex_b, strict=True):
        pa, pb = _common(_prefix(a["pgd"]), _prefix(b["pgd"]))
        aa, ab = _common(_prefix(a["autoattack"]), _prefix(b["autoattack"]))
        n = len(aa)
        gap = (aa.astype(float) - pa[:n]) - (ab.astype(float) - pb[:n])
        parts.append((pa.astype(float) - pb.astype(float), gap))
    return seeds_two_phase(parts)


def _overfit(history: list[dict[str, float]], drop: float) -> bool:
    """Catastrophic overfitting: validation PGD accuracy falls ``drop`` below an earlier best
    (fast-attack training collapses within an epoch, while its training accuracy rises)."""
    best = float("-inf")
    for row in history:
        acc = row.get("val_pgd_acc")
        if acc is None:
            continue
        if acc < best - drop:
            return True
        best = max(best, acc)
    return False


def _method_checks(runs: dict[int, dict[str, Any]], clean: dict[int, dict[str, Any]],
                   cfg: EvalConfig) -> list[str]:
    """Names of the failed checks of one method, over all its seeds."""
    failed: set[str] = set()
    for seed, run in runs.items():
        failed.update(run["eval"].get("checks_failed", []))
        if seed in clean and run["eval"]["clean_acc"] < (
                cfg.collapse_ratio * clean[seed]["eval"]["clean_acc"]):
            failed.add("clean_collapse")
        if _overfit(run["train"].get("history", []), cfg.overfit_drop):
            failed.add("catastrophic_overfitting")
    return sorted(failed)


def _stat(values: list[float]) -> dict[str, float]:
    mean, std = mean_std(values)
    return {"mean": round(mean, 6), "std": round(std, 6)}


def _iv(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.as_dict()


def summarise(runs: dict[str, dict[int, dict[str, Any]]], clean: dict[int, dict[str, Any]],
              baseline: str, cfg: EvalConfig) -> dict[str, Any]:
    """Per method: settings, accuracies (mean ± std over seeds), paired Δs with intervals,
    costs and speed-ups, the random-baseline verdict and the failed checks."""
    if baseline not in runs:
        raise InputError(f"report baseline {baseline!r} is not one of {', '.join(runs)}")
    seeds = sorted(runs[baseline])
    ex = {m: [runs[m][s]["examples"] for s in seeds] for m in runs}
    base_passes = float(np.mean([runs[baseline][s]["train"]["cost"]["passes"] for s in seeds]))
    base_secs = float(np.mean([runs[baseline][s]["train"]["cost"]["seconds"] for s in seeds]))
    out: dict[str, Any] = {}
    for name, by_seed in runs.items():
        first = by_seed[seeds[0]]
        settings, ev = first["train"]["settings"], first["eval"]
        atk = settings["attack"]
        passes = float(np.mean([by_seed[s]["train"]["cost"]["passes"] for s in seeds]))
        secs = float(np.mean([by_seed[s]["train"]["cost"]["seconds"] for s in seeds]))
        evals = [by_seed[s]["eval"] for s in seeds]
        row: dict[str, Any] = {
            "selector": settings["selector"], "fraction": settings["fraction"],
            "miner": settings["miner"],
            "attack": atk["name"] if atk["name"] != "pgd" else f"pgd-{atk['steps']}",
            "objective": settings["objective"]["name"], "seeds": seeds,
            "clean_acc": _stat([e["clean_acc"] for e in evals]),
            "pgd_acc": _stat([e["pgd_acc"] for e in evals]), "n_pgd": ev["n_pgd"],
            "pgd_label": ev["pgd_label"],
            "autoattack_acc": (_stat([e["autoattack_acc"] for e in evals])
                               if ev.get("n_autoattack") else None),
            "n_autoattack": ev.get("n_autoattack", 0),
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
            "checks_failed": _method_checks(by_seed, clean, cfg),
        }
        row["checks_passed"] = not row["checks_failed"]
        out[name] = row
    for name, row in out.items():
        peers = [o for o, other in out.items() if o != name
                 and other["selector"] in RANDOM_BASELINES
                 and abs(other["fraction"] - row["fraction"]) < 1e-9]
        row["beats_random"] = None
        if row["selector"] not in (*RANDOM_BASELINES, "full") and peers:
            verdicts = [verdict_at_least(_headline(ex[name], ex[p]), 0.0) for p in peers]
            row["beats_random"] = combine(verdicts)
    return out


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
    """The product's targets, each vs ``full`` in the same run. Speed-ups are deterministic
    pass counts (and wall-clock); accuracy parts are read from the interval of the
    AutoAttack-calibrated Δ: met when the whole interval clears the bound, not met when it
    lies wholly below, else inconclusive. The "best" method of a kind is the one with the
    highest point estimate."""
    out: list[dict[str, Any]] = []

    def add(label: str, candidates: list[str], rule: Callable[[dict[str, Any]],
                                                              list[Verdict]]) -> None:
        if not candidates:
            out.append({"target": label, "method": None, "verdict": "not assessed",
                        "measured": "no such method in this run"})
            return
        best = max(candidates, key=lambda n: _delta(summary[n])["estimate"])
        r, d = summary[best], _delta(summary[best])
        out.append({"target": label, "method": best, "verdict": combine(rule(r)),
                    "measured": f"{r['speedup_passes']:.2f}× passes, "
                                f"{r['speedup_seconds']:.2f}× s, Δ {_fmt_delta(d)}"})

    add("bullettrain: ≥2× passes, robust Δ ≥ −1 pt",
        [n for n, r in summary.items() if n == "bullettrain"],
        lambda r: ["met" if r["speedup_passes"] >= 2 else "not met",
                   _accuracy_verdict(r, -0.01)])
    add("best subset selector at f≈0.3: ≥2.5× passes, robust Δ ≥ −1.5 pts, above random",
        [n for n, r in summary.items() if r["selector"] not in ("full", *RANDOM_BASELINES)
         and abs(r["fraction"] - 0.3) < 0.05 and r["miner"] == "none"
         and r["attack"].startswith("pgd")],
        lambda r: ["met" if r["speedup_passes"] >= 2.5 else "not met",
                   _accuracy_verdict(r, -0.015), r["beats_random"] or "inconclusive"])
    add("best stack: ≥5× passes, ≥4× wall-clock, robust Δ ≥ −2 pts",
        [n for n, r in summary.items() if r["miner"] == "bullettrain"
         and r["fraction"] < 1 and not r["attack"].startswith("pgd")],
        lambda r: ["met" if r["speedup_passes"] >= 5 else "not met",
                   "met" if r["speedup_seconds"] >= 4 else "not met",
                   _accuracy_verdict(r, -0.02)])
    return out


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


def _fmt_delta(d: dict[str, Any] | None) -> str:
    if d is None:
        return "–"
    return (f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]")


def markdown(summary: dict[str, Any], clean: dict[int, dict[str, Any]],
             goal: list[dict[str, Any]]) -> str:
    first = next(iter(summary.values()))
    pgd_name = first["pgd_label"].split(" ")[0]
    lines = [f"| method | selector | f | miner | attack | clean % | {pgd_name} % (n) | "
             f"AutoAttack % (n) | Δ {pgd_name} vs full, pts [95 % CI] | Δ AutoAttack, "
             "calibrated, pts [95 % CI] | passes | train s | speed-up (passes) | "
             "speed-up (s) | beats random (same f) | checks |", "|" + "---|" * 16]
    for name, r in summary.items():
        s = len(r["seeds"])
        lines.append(
            f"| {name} | {r['selector']} | {r['fraction']:g} | {r['miner']} | {r['attack']} | "
            f"{_pct(r['clean_acc'], s)} | {_pct(r['pgd_acc'], s)} ({r['n_pgd']}) | "
            f"{_pct(r['autoattack_acc'], s)} ({r['n_autoattack']}) | "
            f"{_fmt_delta(r['delta_pgd'])} | {_fmt_delta(r['delta_calibrated'])} | "
            f"{r['passes']:,} | {r['seconds']:.0f} | {r['speedup_passes']:.2f}× | "
            f"{r['speedup_seconds']:.2f}× | {r['beats_random'] or '–'} | "
            f"{', '.join(r['checks_failed']) or 'ok'} |")
    if clean:
        evs = [c["eval"] for c in clean.values()]
        s = len(evs)
        failed = sorted({f for e in evs for f in e.get("checks_failed", [])})
        aa = (_stat([e["autoattack_acc"] for e in evs]) if evs[0].get("n_autoattack")
              else None)
        lines.append(f"| clean-trained (warm-up only) | – | – | – | none | "
                     f"{_pct(_stat([e['clean_acc'] for e in evs]), s)} | "
                     f"{_pct(_stat([e['pgd_acc'] for e in evs]), s)} ({evs[0]['n_pgd']}) | "
                     f"{_pct(aa, s)} ({evs[0].get('n_autoattack', 0)}) | – | – | – | – | – | "
                     f"– | – | {', '.join(failed) or 'ok'} |")
    seeds = first["seeds"]
    lines += ["", f"Seeds: {', '.join(map(str, seeds))} (± is the std over seeds). "
              f"{first['pgd_label']} on {first['n_pgd']} test examples; "
              f"{first['autoattack_label'] or 'no AutoAttack'} on the first "
              f"{first['n_autoattack']}. Δ intervals are paired over the same test examples"
              + (" and over seeds" if len(seeds) > 1 else "") + "; the calibrated Δ corrects "
              "the PGD Δ by the AutoAttack−PGD gap measured on the AutoAttack subset.", "",
              "| target | method | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['method'] or '–'} | {t['measured']} | {t['verdict']} |"
              for t in goal]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    """Robust accuracy (AutoAttack-calibrated, 95 % interval as error bars) vs relative cost
    (passes ÷ full), with the Pareto front of the point estimates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def iv(r: dict[str, Any]) -> dict[str, Any]:
        return r["robust_calibrated"] or r["pgd_interval"]

    points = {n: (r["relative_cost"], 100 * iv(r)["estimate"]) for n, r in summary.items()}
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, (x, y) in points.items():
        on = name in front
        i = iv(summary[name])
        ax.errorbar([x], [y], yerr=[[y - 100 * i["low"]], [100 * i["high"] - y]],
                    fmt="o", ms=7 if on else 5, c="tab:red" if on else "tab:blue", capsize=3,
                    zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    fx, fy = zip(*(points[n] for n in front), strict=True)
    ax.step(fx, fy, where="post", c="tab:red", lw=1, alpha=0.7, label="Pareto front")
    ax.set_xlabel("relative training cost (example-passes ÷ full)")
    calibrated = next(iter(summary.values()))["robust_calibrated"] is not None
    ax.set_ylabel("AutoAttack accuracy, calibrated (%)" if calibrated else
                  f"{next(iter(summary.values()))['pgd_label'].split(' ')[0]} accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def report(params: Params, metrics_dir: Path, examples_dir: Path, baseline: str,
           summary_out: Path, table_out: Path, plot_out: Path | None) -> dict[str, Any]:
    """Write the summary JSON, the markdown table and the Pareto plot (inputs checked first)."""
    if not params.methods:
        raise InputError("methods: no methods defined in params; nothing to report")
    runs, clean = collect(params, metrics_dir, examples_dir)
    summary = summarise(runs, clean, baseline, params.eval)
    goal = targets(summary)
    result = {"baseline": baseline, "seeds": list(params.seeds), "methods": summary,
              "targets": goal,
              "pareto_front": pareto_front({
                  n: (r["relative_cost"], (r["robust_calibrated"] or r["pgd_interval"])
                      ["estimate"]) for n, r in summary.items()}),
              "clean_trained": {str(s): {k: c["eval"].get(k) for k in (
                  "clean_acc", "pgd_acc", "autoattack_acc", "n_autoattack", "checks_failed")}
                  for s, c in clean.items()}}
    atomic_write_json(summary_out, result)
    atomic_write_text(table_out, markdown(summary, clean, goal))
    if plot_out is not None:
        plot(summary, plot_out)
    return result
