"""The summary as people and tools read it: the markdown tables (accuracy, cost and speed-ups,
targets, common corruptions), the per-epoch curves CSV for ``dvc plots``, and the compact
headline for ``dvc exp show``. Everything here formats values the summary computed; nothing
here decides a figure."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from robustprune.errors import InputError
from robustprune.report.components import stacks_text
from robustprune.report.config import EQUAL_COST, ReportConfig, eval_failed
from robustprune.report.load import Clean, Runs
from robustprune.report.paired import stat, tier
from robustprune.report.summary import MethodSummary, Summary
from robustprune.report.text import checks_text, fmt_delta, pct
from robustprune.report.verdicts import TargetResult

CURVE_COLUMNS = ("run", "method", "seed", "objective", "epoch", "passes", "seconds",
                 "val_pgd_acc", "val_clean_acc")


def _budget(r: MethodSummary) -> str:
    return f"{r.matched.budget:g}×" if r.matched.budget else "epochs"


def _vs_random_text(r: MethodSummary) -> str:
    v = r.matched.vs_random
    if v is None:
        return "–"
    if v.random is None:
        return "no random run at this cost"
    return f"{v.verdict} vs {v.random} ({fmt_delta(v.delta)})"


def _target_text(r: MethodSummary) -> str:
    t = r.matched.to_target
    if not t.reached:
        return "not reached"
    return (f"{t.passes:,} / {t.seconds:.0f} s" +
            (f" ({t.reached} of {t.of} seeds)" if t.reached < t.of else ""))


def _clean_trained_row(clean: Clean, cfg: ReportConfig) -> str:
    evs = [c["eval"] for c in clean.values()]
    s = len(evs)
    failed = sorted({f for e in evs for f in eval_failed(e, cfg)})
    vt, n_vt = tier(evs, "verdict")
    aa, n_aa = tier(evs, "autoattack")
    return (f"| clean-trained (warm-up only) | – | – | – | none | – | "
            f"{pct(stat([e['clean_acc'] for e in evs]), s)} | "
            f"{pct(stat([e['pgd_acc'] for e in evs]), s)} ({evs[0]['n_pgd']}) | "
            f"{pct(vt, s)} ({n_vt}) | {pct(aa, s)} ({n_aa}) | – | – | {checks_text(failed)} |")


def _cost_row(name: str, r: MethodSummary) -> str:
    sp, ss = r.matched.effective_speedup, r.matched.effective_speedup_seconds
    position = ("–" if sp is None else "frontier run" if r.matched.frontier
                else sp.position())
    return (f"| {name} | {r.passes:,} | {r.seconds:.0f} | "
            + ("blocked" if r.blocked_by else
               f"{r.speedup_passes:.2f}× / {r.speedup_seconds:.2f}×")
            + f" | {'–' if sp is None else sp} | {'–' if ss is None else ss.estimate} | "
            f"{position} | {_vs_random_text(r)} | {_target_text(r)} |")


def markdown(summary: Summary, clean: Clean, goal: list[TargetResult], baseline: str = "full",
             cfg: ReportConfig | None = None) -> str:
    """Two tables (accuracy; cost and speed-ups), the notes that define them, the targets,
    the blocked comparisons and the common-corruption table."""
    cfg = cfg or ReportConfig()
    first = next(iter(summary.values()))
    pgd_name = first.pgd_label.split(" ")[0]
    lines = [f"| method | selector | f | miner | attack | budget | clean % | {pgd_name} % (n) | "
             f"APGD-CE+T % (n) | AutoAttack % (n) | Δ {pgd_name} vs {baseline}, pts [95 % CI] "
             "| Δ APGD-CE+T, calibrated, pts [95 % CI] | checks |", "|" + "---|" * 13]
    for name, r in summary.items():
        s, blocked = len(r.seeds), bool(r.blocked_by)
        lines.append(
            f"| {name} | {r.selector} | {r.fraction:g} | {r.miner} | {r.attack} | "
            f"{_budget(r)} | {pct(r.clean_acc, s)} | {pct(r.pgd_acc, s)} ({r.n_pgd}) "
            f"| {pct(r.verdict_acc, s)} ({r.n_verdict}) "
            f"| {pct(r.autoattack_acc, s)} ({r.n_autoattack}) | "
            f"{fmt_delta(r.delta_pgd, blocked)} | {fmt_delta(r.delta_calibrated, blocked)} | "
            f"{checks_text(r.checks_failed)} |")
    if clean:
        lines.append(_clean_trained_row(clean, cfg))
    to_target = first.matched.to_target
    val = "clean" if to_target.metric == "val_clean_acc" else "PGD-10"
    lines += ["", f"| method | passes | train s | speed-up at equal epochs (passes / s) | "
              f"effective speed-up, passes [95 % CI] | effective speed-up, s | vs full-data "
              f"frontier | vs random at equal cost (Δ, pts) | to val {val} "
              f"≥ {100 * to_target.target:.1f} % (passes / s) |", "|" + "---|" * 9]
    lines += [_cost_row(name, r) for name, r in summary.items()]
    seeds = first.seeds
    frontier = [n for n, r in summary.items() if r.matched.frontier]
    scale = (pgd_name if first.matched.scale == "PGD-k" else
             f"APGD-CE+T-calibrated ({pgd_name} on all, corrected by the APGD-CE+T−{pgd_name} "
             "gap on the verdict subset, both phases resampled)")
    lines += ["", f"Seeds: {', '.join(map(str, seeds))} (± is the std over seeds). "
              f"{first.pgd_label} on {first.n_pgd} test examples; "
              f"verdict tier: {first.verdict_label or 'none'} on the first "
              f"{first.n_verdict}; check: {first.autoattack_label or 'no AutoAttack'} on the "
              f"first {first.n_autoattack} (FAB-T and Square on the verdict tier's survivors; "
              "`verdict_complete` fails if they break any). Δ intervals are paired over the "
              "same test examples" + (" and over seeds" if len(seeds) > 1 else "") +
              "; the calibrated Δ corrects the PGD Δ by the APGD-CE+T−PGD gap measured on "
              "the verdict subset. "
              f"Budget: the share of {baseline}'s passes a run was given (its schedule annealed "
              f"to it), or `epochs` for train.epochs epochs. Full-data frontier: "
              f"{', '.join(frontier)} ({baseline} at other budgets); effective speed-up = the "
              f"passes (or seconds) at which the frontier reaches a run's {scale} accuracy "
              "÷ the run's own, interpolated in log-cost, ≤/≥ where it lies outside the "
              "frontier's budgets; interval: the costs at which the paired Δ to the "
              "interpolated frontier is not significant (over test examples"
              + (" and seeds" if len(seeds) > 1 else "; one seed: conditional on it")
              + "). Random at equal cost: a "
              f"random-selection run within ±{100 * EQUAL_COST:g} % of the passes, compared by "
              "the calibrated Δ. Time to target: first epoch whose validation "
              f"{val} accuracy reaches {baseline}'s final one minus `report.target_drop`.", "",
              "| target | method | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {t.target.label} | {t.method or '–'} | {t.measured} | {t.verdict} |"
              for t in goal]
    given_up = {n: r.classes_given_up for n, r in summary.items() if r.classes_given_up}
    if given_up:
        lines += ["", "Classes given up (`class_given_up`: clean accuracy on the class below "
                  f"`report.class_ratio` = {cfg.class_ratio:g} × the clean-trained model's on "
                  "it): " + "; ".join(
                      f"{n}: " + ", ".join(f"class {c} {100 * a:.1f} % vs {100 * b:.1f} %"
                                           for c, (a, b) in cls.items())
                      for n, cls in given_up.items()) + "."]
    lines += stacks_text({n: r.stack for n, r in summary.items() if r.stack is not None},
                         {n: r.matched.effective_speedup for n, r in summary.items()})
    lines += seed_table(summary)
    blocked_runs = {n: r.blocked_by for n, r in summary.items() if r.blocked_by}
    if blocked_runs:
        lines += ["", "Blocked comparisons (no Δ, speed-up, frontier point or verdict is "
                  "computed from a model that failed a voiding check): " + "; ".join(
                      f"{n} ({', '.join(b)})" for n, b in blocked_runs.items()) + "."]
    return "\n".join(lines + corruption_table(summary, clean, baseline)) + "\n"


def seed_table(summary: Summary) -> list[str]:
    """How much each method's result depends on its training seed (empty for one seed): the
    plain std of the per-seed figures, which holds test-sample noise too, and the training SD
    with its interval, which does not (:func:`robustprune.stats.seed_sd`)."""
    rows = {n: r for n, r in summary.items() if r.seed_sd is not None}
    if not rows:
        return []
    pgd = next(iter(rows.values())).pgd_label.split(" ")[0]
    lines = ["", f"| method | seeds | {pgd} % per seed | {pgd} std over seeds, pts | robust "
             "scale | robust % [95 % CI] | training SD of robust %, pts [95 % CI] |",
             "|" + "---|" * 7]
    for name, r in rows.items():
        sd, rob = r.seed_sd.as_dict(), r.robust.as_dict()  # type: ignore[union-attr]
        scale = "calibrated" if r.robust_calibrated is not None else pgd
        lines.append(
            f"| {name} | {len(r.seeds)} | "
            + " / ".join(f"{100 * a:.2f}" for a in r.pgd_by_seed)
            + f" | {100 * r.pgd_acc.std:.2f} | {scale} | {100 * rob['estimate']:.2f} "
            f"[{100 * rob['low']:.2f}, {100 * rob['high']:.2f}] | {100 * sd['estimate']:.2f} "
            f"[{100 * sd['low']:.2f}, {100 * sd['high']:.2f}] |")
    lines += ["", "Seed spread: the std over seeds holds the seeds' training noise and the "
              "example × seed interaction (two models disagree on some test examples); the "
              "training SD takes that interaction out (the crossed example × seed model): what "
              "a new seed would move one run's robust accuracy by on an unlimited test set, "
              "on the row's robust scale. Interval: generalized pivot, wide with few seeds "
              "(2 df for 3 seeds)."]
    return lines


def corruption_table(summary: Summary, clean: Clean, baseline: str) -> list[str]:
    """The common-corruption table (empty when no run was evaluated on corruptions)."""
    rows = {n: r.corruption for n, r in summary.items() if r.corruption is not None}
    if not rows:
        return []
    first = next(iter(rows.values()))
    sev = list(first.by_severity)
    lines = ["", f"| method | clean % | corruption % (mean of {len(first.by_name)} × "
             f"{len(sev)}) [95 % CI] | Δ corruption vs {baseline}, pts [95 % CI] | mCE vs "
             "clean-trained | worst corruption % | " + " | ".join(f"severity {k} %" for k in sev)
             + " |", "|" + "---|" * (6 + len(sev))]
    for name, c in rows.items():
        r, s = summary[name], len(summary[name].seeds)
        worst = min(c.by_name, key=c.by_name.__getitem__)
        iv = c.interval.as_dict()
        lines.append(
            f"| {name} | {pct(r.clean_acc, s)} | {pct(c.acc, s)} "
            f"[{100 * iv['low']:.2f}, {100 * iv['high']:.2f}] | {fmt_delta(c.delta)} | "
            f"{'–' if c.mce is None else format(c.mce, '.3f')} | "
            f"{worst} {100 * c.by_name[worst]:.1f} | "
            + " | ".join(f"{100 * c.by_severity[k]:.1f}" for k in sev) + " |")
    evs = [c["eval"] for c in clean.values() if "corruption_acc" in c["eval"]]
    if evs:
        by_sev = {k: float(np.mean([e["corruption_acc_by_severity"][k] for e in evs]))
                  for k in sev}
        by_name = {k: float(np.mean([e["corruption_acc_by_name"][k] for e in evs]))
                   for k in evs[0]["corruption_acc_by_name"]}
        worst = min(by_name, key=by_name.__getitem__)
        lines.append(f"| clean-trained (warm-up only) | "
                     f"{pct(stat([e['clean_acc'] for e in evs]), len(evs))} | "
                     f"{pct(stat([e['corruption_acc'] for e in evs]), len(evs))} | – | 1.000 "
                     f"| {worst} {100 * by_name[worst]:.1f} | "
                     + " | ".join(f"{100 * by_sev[k]:.1f}" for k in sev) + " |")
    lines += ["", f"Common corruptions: {first.source}, the first {first.n} test examples "
              f"× {len(first.by_name)} corruptions × {len(sev)} severities. Interval and Δ: "
              "per-example share of the corrupted copies classified right, paired over the "
              "same examples (t interval; examples, not copies, are the independent units). "
              "mCE: per corruption the errors summed over severities ÷ the clean-trained "
              "model's, averaged over corruptions (< 1: more robust than it)."]
    return lines


def curves(runs: Runs) -> str:
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


def _pts(value: float | None) -> float | None:
    """A proportion in % (or points), 2 decimals: the table's resolution."""
    return None if value is None else round(100 * value, 2)


def _times(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def headline(summary: Summary, goal: list[TargetResult]) -> dict[str, Any]:
    """The few figures ``dvc exp show`` puts side by side across experiments, flat scalars
    with short keys (each leaf is a column there). Per method: clean accuracy (%), robust
    accuracy (APGD-CE+T-calibrated estimate, else PGD-k; %), its Δ vs the baseline (points;
    the Δ verdicts read), the speed-ups at equal epochs in passes and seconds, and the
    effective speed-up in passes against the full-data frontier (a censored estimate gives its
    bound: summary.md marks it ≤/≥). Comparisons a voiding check blocks, or that could not be
    made, are null. Then each target's verdict, by its short key."""
    if "verdicts" in summary:
        raise InputError("methods: a method named 'verdicts' collides with the headline's "
                         "verdicts entry; rename the method")
    out: dict[str, Any] = {}
    for name, r in summary.items():
        delta, sp = r.verdict_delta, r.matched.effective_speedup
        out[name] = {"clean": _pts(r.clean_acc.mean), "robust": _pts(r.robust.estimate),
                     "delta": _pts(None if delta is None else delta.estimate),
                     "passes_x": _times(r.speedup_passes),
                     "seconds_x": _times(r.speedup_seconds),
                     "effective_x": _times(None if sp is None else sp.estimate.value)}
    out["verdicts"] = {t.target.key: t.verdict for t in goal}
    return out
