#!/usr/bin/env bash
# Train a larger embedded model on one GPU (the device machine) in minutes, and send it back through $OUT.
#
# Here, once:  python -m dgemma_app.train pack --tokenizer models/dgemma-code-tiny --out runs/pack.npz
#              (and the transformers wheels the GPU image lacks: docs/deploy.md, "Training on a GPU")
# There:       a device run carrying runs/pack.npz and .whl:  bash deploy/gpu_train.sh 8
# Back here:   cat <files>/model.tar.part-* | tar -x -C runs   (the model folder runs/model, then evaluate it)
#
# Usage: gpu_train.sh MINUTES [train flags...]   Flags after MINUTES override the defaults below.
# Environment: PACK (default runs/pack.npz), DEVICE (cuda), OUT (runs/gpu-out), RUN (runs/gpu), PYTHON (python3).
# The model leaves as a tar split into 15 MiB parts: a device machine returns at most 8 files of 16 MiB.
set -euo pipefail
MINUTES=${1:?minutes of training}
shift
PACK=${PACK:-runs/pack.npz} DEVICE=${DEVICE:-cuda} OUT=${OUT:-runs/gpu-out} RUN=${RUN:-runs/gpu} PYTHON=${PYTHON:-python3}
if [ -d .whl ]; then  # packages the image lacks, carried as wheels
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"
# 14.5M parameters (27.8 MiB in bf16, under the repo's 40 MB): 6 layers of width 320, BPE 2,048 from the pack.
# Training batches come from 6 worker processes (the machine has 16 cores); data_share in the log: the share of step
# time spent getting batches (waiting for a worker, then the copy to the GPU).
"$PYTHON" -m dgemma_app.train train --pack "$PACK" --run-dir "$RUN" --device "$DEVICE" --bf16 \
    --minutes "$MINUTES" --steps 1000000 --batch-size 256 --lr 1e-3 --warmup 100 --threads 8 --workers 6 \
    --val-every 200 --val-batches 4 --checkpoint-minutes 2 --ar-share 0.3 --ar-weight 0.5 --tail-noise-prob 0.3 \
    --hidden-size 320 --num-layers 6 --num-heads 5 --num-kv-heads 1 --num-experts 4 --top-k-experts 2 \
    --expert-size 320 --intermediate-size 640 "$@" 2>&1 | tr '\r' '\n' | { grep -v '‰ \[' || true; } | tee "$OUT/train.log"
"$PYTHON" -m dgemma_app.train export --checkpoint "$RUN/checkpoint.pt" --out "$RUN/model" --dtype bf16 \
    --max-denoising-steps 16 --entropy-bound 16 --t-max 0.3 --t-min 0.1 --confidence-threshold 0.05
cp "$RUN/log.jsonl" "$OUT/log.jsonl"
tar -c -C "$RUN" model | split -b 15m - "$OUT/model.tar.part-"
ls -l "$OUT"
