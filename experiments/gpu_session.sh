#!/usr/bin/env bash
# The GPU checks of the network issue, as one script for a lent GPU machine (run from the repo root).
#   OUT=results_dir bash experiments/gpu_session.sh [STORE]
# 1. throughput of PoseKernelLifter (experiments.bench_network) on the GPU, bf16 autocast;
# 2. a training run of the paper's configuration (70 x 70 x 50 voxels of 5 cm, 6 stages) on STORE
#    through the real command line (network.train), bounded by TRAIN_SECONDS, then network.evaluate on
#    the store's test split.
# Needs torch with CUDA, numpy, scipy, tqdm, tensorboard, matplotlib, and zarr (wheels in .whl/ are
# installed to /tmp/site when present: the device machines have no registry).
set -u
export PYTHONUNBUFFERED=1
STORE=${1:-data/gpu.zarr}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=$PWD:/tmp/site
else
  export PYTHONPATH=$PWD
fi
nvidia-smi -L
python3 -c "import torch, zarr; print('torch', torch.__version__, 'zarr', zarr.__version__, torch.cuda.get_device_name())"

echo "== throughput, 16 pairs (a 4 x 4 rig), batch 8"
timeout 120 python3 -m experiments.bench_network --device cuda --pairs 16 --repeats 3 --json "$OUT/bench_cuda.json"
echo "== throughput, full grid, 4 pairs (the PoseKernel dataset's rig), batch 32"
timeout 60 python3 -m experiments.bench_network --device cuda --pairs 4 --batch 32 --only-full --repeats 3 \
  --json "$OUT/bench_cuda_full_b32.json"

echo "== training, config paper, on $STORE for at most $TRAIN_SECONDS s"
rm -rf /tmp/gpu_run
timeout "$TRAIN_SECONDS" python3 -m network.train --pretrain synth --synth "$STORE" --config paper --epochs 200 \
  --batch-size 8 --workers 12 --device cuda --out /tmp/gpu_run --no-progress
echo "training exit code $? (124: stopped by the time bound; the checkpoints of finished epochs stay)"
cp /tmp/gpu_run/pretrain/log.csv "$OUT/train_log.csv"
cp /tmp/gpu_run/pretrain/best.pt "$OUT/paper_best.pt"
echo "== evaluation of best.pt on the test split"
timeout 90 python3 -m network.evaluate --checkpoint /tmp/gpu_run/pretrain/best.pt --data "$STORE" --split test \
  --out /tmp/gpu_eval --methods ours vision_avg_height vision_half_pairs colocated_only --device cuda --no-progress
cp /tmp/gpu_eval/tables.md "$OUT/eval_tables.md"; cp /tmp/gpu_eval/metrics.json "$OUT/eval_metrics.json"
cp /tmp/gpu_eval/skeletons.png "$OUT/eval_skeletons.png" 2>/dev/null
ls -la "$OUT"
