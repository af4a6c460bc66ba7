#!/usr/bin/env bash
# The GPU benchmarks in one go (docs/scaling.md): training throughput of SmallCNN and
# PreActResNet-18, clean vs PGD-10 AT, per GPU-path setting; then the default pipeline on the
# GPU (fp32) and the `gpu-bf16` regime (bf16 autocast + channels-last), both as DVC pipelines
# (`dvc repro`), so their stages are cached, resumable and recorded in their dvc.lock. Each
# step has its own time limit and a cut-short step resumes where it stopped when run again.
#
#   bash benchmarks/gpu_run.sh RESULTS_DIR [DATASET_NPZ]
#
# Needs the project's environment (make setup: dvc included) in a git checkout. DATASET_NPZ:
# the prepared dataset (data/prepared/dataset.npz of a CPU machine), for a machine that cannot
# read Fashion-MNIST itself; it is copied to both pipelines' prepare outputs and committed to
# DVC as if prepared there (same params, same bytes).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?results directory}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 ROBUSTPRUNE_THREADS=${ROBUSTPRUNE_THREADS:-8}
PY=${PYTHON:-python3}
command -v dvc > /dev/null || { echo "dvc not found: run make setup (or activate .venv)"; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >> "$out/gpu.txt"
step() { local limit=$1; shift; echo "### $(date -u +%T) $*"; s=$SECONDS
  timeout "$limit" "$@"; echo "### rc=$? after $((SECONDS - s)) s"; }
if [ -n "${2:-}" ]; then
  for d in data/prepared benchmarks/regimes/gpu-bf16/data/prepared; do
    mkdir -p "$d"; cp "$2" "$d/dataset.npz"; done
  dvc commit -f prepare benchmarks/regimes/gpu-bf16/dvc.yaml:prepare
fi
step 150 $PY benchmarks/throughput.py --device cuda --batches 30 --warmup 5 --runs 3 \
  --variants fp32 bf16 bf16-cl --out "$out/throughput-cuda"
step 600 dvc repro dvc.yaml
step 600 dvc repro benchmarks/regimes/gpu-bf16/dvc.yaml
cp metrics/summary.md "$out/side-by-side-fp32.md"
cp benchmarks/regimes/gpu-bf16/metrics/summary.md "$out/side-by-side-bf16.md"
step 80 $PY benchmarks/throughput.py --device cuda --batches 30 --warmup 5 --runs 3 \
  --variants bf16-cl-compile --out "$out/throughput-cuda-compile"
