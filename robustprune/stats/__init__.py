"""Confidence intervals and verdicts for the report: accuracies and paired differences.

Why this module exists. The report compares every method with the ``full`` baseline, and a
difference of a point or less decides a target. Every model is evaluated on the *same* test
examples, so the comparison is paired: two models mostly agree example by example, and the
uncertainty of their difference comes from the examples on which they disagree, not from the
two accuracies separately. Treating the two accuracies as independent would double-count the
shared test-sample noise and give intervals several times too wide to resolve a point.

What is here.

- :func:`wilson`: one proportion (an accuracy) from one run. The Wilson score interval keeps
  close to nominal coverage at the ends of [0, 1], where the Wald interval collapses to zero
  width (0 % or 100 % robust accuracy on a small subset).
- :func:`paired_difference`: Δ = mean(a) − mean(b) over the same examples, by Newcombe's
  (1998) hybrid score method 10 for paired proportions, which behaves well for small counts
  and for Δ near the ends, where the paired Wald interval does not.
- :func:`seeds_difference` / :func:`seeds_proportion`: the same quantities over several
  training seeds, where training noise (seed to seed) adds to test-sample noise.
- :func:`two_phase` / :func:`seeds_two_phase`: a cheap per-example figure on the whole test
  set corrected by the trusted-minus-cheap gap measured on a subset (AutoAttack calibration).
- :func:`seed_sd` / :func:`seeds_two_phase_sd`: the training (seed-to-seed) standard
  deviation of a figure over several seeds, the example × seed interaction taken out, with a
  generalized-pivot interval (how stable a method or an objective is across seeds).
- :func:`verdict_at_least`: met / not met / inconclusive against a target, read from the
  interval, so that a verdict is never claimed that the data cannot support.

All numbers are proportions (0.01 = one percentage point). Inputs are per-example booleans
(robust-correct or not); outputs are plain Python floats.

Layout: the one-run formulas, :class:`Interval` and the verdicts are in
:mod:`robustprune.stats.intervals`; the several-seed model and what is built on it in
:mod:`robustprune.stats.seeds`. Every public name is importable from here.
"""

from robustprune.stats.intervals import (
    Z95,
    Interval,
    Verdict,
    paired_difference,
    verdict_at_least,
    wilson,
)
from robustprune.stats.seeds import (
    PIVOT_DRAWS,
    PIVOT_SEEDS,
    Crossed,
    crossed,
    mean_std,
    paired_share_difference,
    seed_sd,
    seeds_difference,
    seeds_proportion,
    seeds_two_phase,
    seeds_two_phase_sd,
    share_mean,
    two_phase,
)

__all__ = [
    "PIVOT_DRAWS",
    "PIVOT_SEEDS",
    "Z95",
    "Crossed",
    "Interval",
    "Verdict",
    "crossed",
    "mean_std",
    "paired_difference",
    "paired_share_difference",
    "seed_sd",
    "seeds_difference",
    "seeds_proportion",
    "seeds_two_phase",
    "seeds_two_phase_sd",
    "share_mean",
    "two_phase",
    "verdict_at_least",
    "wilson",
]
