#!/usr/bin/env bash
# Reruns, with the current code, the commands behind the result tables indexed in
# benchmarks/results/README.md (new tables in their place, not the committed figures): the
# default pipeline (PGD-AT), then the same methods with TRADES and with MART (`dvc exp run -S
# objective.name=...`), then two wider PGD-AT rosters: static random and prune; the coresets,
# GLISTER and a random-online stack (about 25 and 60 min more on a 2-core CPU, most of it
# AutoAttack); then the default roster over three seeds
# (about three default runs) and the seed spread of `full`. Each run is recorded by
# benchmarks/record.py as benchmarks/results/<objective>.md (table, targets, stage timers,
# hardware) and .json (the report's summary). This is a benchmark, not a test: it takes about
# an hour per objective on a 2-core CPU (benchmarks/results/ lists the measured times). Run it on
# an otherwise idle machine: the wall-clock speed-ups are only as clean as the machine. The GPU
# tables (gpu-h200.md and the files it links) come from benchmarks/gpu_run.sh on a CUDA machine,
# the long regime from benchmarks/long_regime.py (see their results files for the commands).
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
export PATH="$PWD/.venv/bin:$PATH"

start=$SECONDS
dvc repro
python benchmarks/record.py pgd-at --wall $((SECONDS - start))

for objective in trades mart; do
  start=$SECONDS
  dvc exp run -n "$objective" -S "objective.name=$objective"
  python benchmarks/record.py "$objective" --wall $((SECONDS - start))
done
# the wider PGD-AT rosters: static random and prune at f = 0.3 beside the default methods ...
git checkout -- params.yaml dvc.lock && dvc checkout
start=$SECONDS
dvc exp run -n subsets -S objective.name=pgd-at \
  -S '+methods.random={selector: random, fraction: 0.3}' \
  -S '+methods.prune={selector: prune, fraction: 0.3}'
python benchmarks/record.py subsets --wall $((SECONDS - start))
# ... and the coresets, GLISTER and a random-online stack
git checkout -- params.yaml dvc.lock && dvc checkout
start=$SECONDS
dvc exp run -n coresets -S objective.name=pgd-at \
  -S '+methods.coreset-gradmatch={selector: coreset-gradmatch, fraction: 0.3}' \
  -S '+methods.coreset-craig={selector: coreset-craig, fraction: 0.3}' \
  -S '+methods.glister={selector: glister, fraction: 0.3}' \
  -S '+methods.stack-online={selector: random-online, fraction: 0.3, miner: bullettrain, attack: fgsm-rs, alpha: 0.125}'
python benchmarks/record.py coresets --wall $((SECONDS - start))
# the default roster over three seeds (every Δ gets its interval over seeds too), and the
# seed-to-seed spread of `full` on its own
git checkout -- params.yaml dvc.lock && dvc checkout
start=$SECONDS
dvc exp run -n seeds -S 'seeds=[0,1,2]'
python benchmarks/record.py seeds --wall $((SECONDS - start))
git checkout -- params.yaml dvc.lock && dvc checkout
python benchmarks/seed_spread.py --seeds 1 2 --methods full
# the long regime: where full-data training plateaus, then the frontier and the methods there
# (hours on a 2-core CPU; both resume where they stopped)
python benchmarks/long_regime.py plateau --epochs 4 8 16
python benchmarks/long_regime.py grid --epochs 16 --objectives pgd-at trades --seeds 0 1 2 \
  --methods full full-50 full-25 bullettrain stack random-online prune
python benchmarks/long_regime.py grid --epochs 16 --objectives pgd-at trades --seeds 0 1 2 \
  --methods full full-50 full-25 bullettrain stack random-online prune --autoattack 200 \
  --autoattack-methods full bullettrain stack
python benchmarks/long_regime.py grid --epochs 16 --objectives mart --seeds 0 \
  --methods full bullettrain --autoattack 200
python benchmarks/long_regime.py grid --epochs 16 --objectives pgd-at --seeds 0 \
  --methods gradmatch craig glister
python benchmarks/long_regime.py grid --epochs 16 --objectives trades --seeds 0 --methods craig
# common corruptions: AugMix, BulletTrain for AugMix and standard training (three seeds), and
# what the corruption benchmark costs on the whole test set
python benchmarks/augmix.py --seeds 0 1 2
python benchmarks/corruption_cost.py
dvc exp show --only-changed
