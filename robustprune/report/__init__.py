"""The side-by-side report: accuracy and cost per method against the full-data baseline, every
difference with its 95 % interval, every target with a verdict (met / not met / inconclusive).

What it compares. All models are evaluated on the same test examples, so differences are
paired example by example (and seed by seed when there are several seeds). Three robust
figures per method, each named for the attack behind it:

- ``PGD-k`` on the whole test set: cheap, so it resolves small differences, but it can
  over-state robustness;
- ``APGD-CE+T`` (the reference AutoAttack's APGD-CE and APGD-T at standard settings) on a
  fixed subset: the verdict tier; the first examples of that subset also get FAB-T and
  Square, which makes them the whole standard AutoAttack, as the check that the verdict tier
  misses nothing (``verdict_complete``);
- ``APGD-CE+T, calibrated``: the PGD-k figure on the whole test set corrected by the
  APGD-CE+T-minus-PGD-k gap measured on the verdict subset (a two-phase estimator,
  :func:`robustprune.stats.two_phase`). It estimates what the verdict tier would give on the
  whole test set, and its interval is narrow when the two attacks agree on most examples.
  Verdicts are read from it.

Speed-up = baseline ÷ method, in example-passes (forward + backward, deterministic) and in
wall-clock training seconds; selection work is inside each method's cost, the shared warm-up
in none. Costs and settings are read from what training recorded, not from the current params.

Budget-matched figures (:mod:`robustprune.frontier`): the runs that differ from the baseline
only in their pass budget form the *full-data frontier*; each method gets its effective
speed-up against it, a verdict against random selection *at equal cost* (a random-selection
run within ±10 % of its passes), and the passes and seconds it took to reach a validation
target (the baseline's final validation PGD accuracy − ``report.target_drop``). The per-epoch
curves of every run go to one CSV for ``dvc plots``.

The package, one job per module: :mod:`~robustprune.report.config` (the ``report`` section and
the checks judged against it), :mod:`~robustprune.report.load` (reading and pairing the
inputs), :mod:`~robustprune.report.paired` (paired intervals and corruption figures),
:mod:`~robustprune.report.budget` (budget-matched figures), :mod:`~robustprune.report.summary`
(the typed per-method summary), :mod:`~robustprune.report.verdicts` (the targets as data and
their verdicts), :mod:`~robustprune.report.text`, :mod:`~robustprune.report.render` and
:mod:`~robustprune.report.pareto` (tables, curves, headline, plot), and
:mod:`~robustprune.report.write` (the stage: read, summarise, write). Values stay typed
(:class:`~robustprune.stats.Interval`, :class:`~robustprune.frontier.Speedup`, …) until the
JSON writer and the renderers turn them into text.
"""

from __future__ import annotations

from robustprune.report.config import EQUAL_COST, VOIDING, ReportConfig, eval_failed
from robustprune.report.load import collect
from robustprune.report.pareto import pareto_front, plot
from robustprune.report.render import CURVE_COLUMNS, corruption_table, curves, headline, markdown
from robustprune.report.summary import MethodSummary, Summary, summarise
from robustprune.report.verdicts import TARGETS, Target, TargetResult, combine, targets
from robustprune.report.write import report

__all__ = ["CURVE_COLUMNS", "EQUAL_COST", "TARGETS", "VOIDING", "MethodSummary", "ReportConfig",
           "Summary", "Target", "TargetResult", "collect", "combine", "corruption_table",
           "curves", "eval_failed", "headline", "markdown", "pareto_front", "plot", "report",
           "summarise", "targets"]
