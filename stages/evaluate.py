"""Stage evaluate: a saved model on the test split, in tiers: clean accuracy, PGD-k on the
whole test set (the paired comparison metric), the reference AutoAttack (standard version) on a
fixed subset (the trusted figure and the check that PGD-k does not over-state), and an
accuracy-vs-eps curve; with --corrupted, accuracy on the common-corruption test set (mean, per
corruption, per severity); with sanity checks (above chance, curve falls to 0, AutoAttack's own
flags). Writes metrics JSON and, with --examples, the per-example table.

Sizes are params `eval.*` (0 = whole test set); the threat model is `attack.norm`/`attack.eps`.
Resumable: finished AutoAttack chunks are kept in .cache/checkpoints/evaluate-<hash>/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustprune import cli
from robustprune.attacks import AttackConfig
from robustprune.distributed import resolve_device
from robustprune.evaluation import EvalConfig
from robustprune.params import load_params
from robustprune.pipeline.evaluate import evaluate

SECTIONS = {"eval": EvalConfig, "attack": AttackConfig}
"""What the stage reads (dvc.yaml: eval, attack.norm, attack.eps)."""


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__, compute=True)
    p.add_argument("--model", type=Path, required=True, help="a saved model (.pt)")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    p.add_argument("--examples", type=Path, default=None,
                   help="per-example results (parquet) to write: which test examples are "
                        "correct clean, under PGD, under AutoAttack (and which attack broke "
                        "them) and along the eps curve")
    p.add_argument("--corrupted", type=Path, default=None,
                   help="the corrupt stage's output: adds common-corruption accuracy")
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params, SECTIONS)
        evaluate(params, cli.seed_of(args.seed, params), args.data, args.model,
                          args.out, args.examples, resolve_device(args.device),
                          corrupted_path=args.corrupted)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
