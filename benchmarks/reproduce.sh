#!/usr/bin/env bash
# Reproduces the README's result tables: the default pipeline (PGD-AT), then the same methods
# with TRADES and with MART (`dvc exp run -S objective.name=...`). Each table, with the
# wall-clock of its run, is written to benchmarks/results/<objective>.md. This is a benchmark,
# not a test: it takes hours on a 2-core CPU (README "Results" lists the measured times).
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p benchmarks/results

record() {  # record <objective> <seconds>
  {
    echo "# objective: $1"
    echo
    echo "wall-clock of the run: $2 s; $(nproc) CPU cores; $(python -c 'import torch; print("torch", torch.__version__)')"
    echo
    cat metrics/summary.md
  } > "benchmarks/results/$1.md"
}

start=$SECONDS
dvc repro
record pgd-at $((SECONDS - start))

for objective in trades mart; do
  start=$SECONDS
  dvc exp run -S "objective.name=$objective"
  record "$objective" $((SECONDS - start))
done
dvc exp show --only-changed
