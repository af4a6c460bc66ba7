#!/usr/bin/env bash
# The GPU benchmarks in one go (docs/scaling.md): training throughput of SmallCNN and
# PreActResNet-18, clean vs PGD-10 AT, per GPU-path setting; then the default side-by-side run
# (params.yaml's methods at train.epochs, AutoAttack on 200, corruptions on 2 000) in fp32,
# and again with `scale.precision: bf16` + `scale.channels_last: true` (no AutoAttack: a speed
# comparison). Each step has its own time limit and writes as it goes, so a cut-short session
# keeps what finished.
#
#   bash benchmarks/gpu_run.sh RESULTS_DIR [DATASET_NPZ]
#
# DATASET_NPZ: the prepared dataset (pipeline.prepare of params.yaml), for a machine that cannot
# read Fashion-MNIST itself.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?results directory}
mkdir -p "$out" /tmp/gpu-work/fp32 /tmp/gpu-work/bf16
if [ -n "${2:-}" ]; then cp "$2" /tmp/gpu-work/fp32/dataset.npz; cp "$2" /tmp/gpu-work/bf16/dataset.npz; fi
export PYTHONUNBUFFERED=1 ROBUSTPRUNE_THREADS=${ROBUSTPRUNE_THREADS:-8}
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >> "$out/gpu.txt"
step() { local limit=$1; shift; echo "### $(date -u +%T) $*"; s=$SECONDS
  timeout "$limit" "$@"; echo "### rc=$? after $((SECONDS - s)) s"; }
step 150 $PY benchmarks/throughput.py --device cuda --batches 30 --warmup 5 --runs 3 \
  --variants fp32 bf16 bf16-cl --out "$out/throughput-cuda"
step 220 $PY benchmarks/long_regime.py grid --epochs 4 \
  --methods full full-50 full-25 random-online bullettrain stack --autoattack 200 \
  --corruptions 2000 --work /tmp/gpu-work/fp32 --out "$out/side-by-side-fp32"
$PY - <<'EOF'
import yaml
p = yaml.safe_load(open("params.yaml"))
p["scale"] = {**p.get("scale", {}), "precision": "bf16", "channels_last": True}
yaml.safe_dump(p, open("/tmp/gpu-work/params-bf16.yaml", "w"))
EOF
step 90 $PY benchmarks/long_regime.py grid --epochs 4 \
  --methods full full-50 full-25 random-online bullettrain stack --autoattack 0 \
  --params /tmp/gpu-work/params-bf16.yaml --work /tmp/gpu-work/bf16 --out "$out/side-by-side-bf16"
step 80 $PY benchmarks/throughput.py --device cuda --batches 30 --warmup 5 --runs 3 \
  --variants bf16-cl-compile --out "$out/throughput-cuda-compile"
