#!/usr/bin/env bash
# One prepared GPU check (issue 14): a real `limo train` step of a random Qwen2.5-1.5B-shaped model at 8k and 16k
# tokens on ONE GPU (padding-free, sdpa, bf16, gradient checkpointing), tokens/s and MFU against the card's measured
# bf16 matmul peak, peak memory against the memory plan. No network; only what the tree carries.
# Writes $OUT/gpu_check.json and $OUT/doctor.json; the random model and run dirs go to $WORK (a temp dir). Budget: under 8 minutes on an H100-class card.
#   OUT=/tmp/gpu scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder}"
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} timeout 60 "$PY" -m limo.cli doctor --json "$OUT/doctor.json"
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} timeout 420 "$PY" bench/train_gpu.py --out "$OUT" --work "${WORK:-$(mktemp -d)}" "$@"
