#!/usr/bin/env bash
# The GPU recipe: one device call trains a larger embedded model, sends it back as bf16 shards under 16 MiB and
# prints its evaluation. docs/deploy.md ("Training on a GPU") has the device call, the carry list and the arithmetic.
#
#   Here, once:  bash deploy/gpu_train.sh prepare
#                  the corpus packed as large as the 64 MiB a device run carries allows (with the repo and the
#                  wheels), the held-out files and HumanEval single-line for the evaluation → runs/carry; wheels → .whl
#   There:       bash deploy/gpu_train.sh [MINUTES] [train flags...]       (a device run carrying .whl and runs/carry)
#   Back here:   bash deploy/gpu_train.sh install RETURNED_FOLDER [MODEL_FOLDER]   (default models/dgemma-code-tiny)
#
# Flags after MINUTES override the defaults below (`--init-from`, `--hidden-size`, `--batch-size` ...).
# Environment: CARRY (runs/carry), WHL (.whl: wheels, installed when the folder is there), DEVICE (cuda),
#   OUT (runs/gpu-out), RUN (runs/gpu), PYTHON (python3), BATCH (768), SHARD (15MB: largest weights file),
#   EVAL_LIMIT (200 tasks per set), EVAL_TIMEOUT (180 s per set); prepare only: CORPUS (runs/corpus-all, built if
#   missing), HELDOUT (runs/corpus, built if missing), HUMANEVAL (../shared/benchmarks/human-eval-infilling),
#   WHEELS (download; "skip": use $WHL as it is), MARGIN_MIB (1.5).
set -euo pipefail
CARRY=${CARRY:-runs/carry} PYTHON=${PYTHON:-python3} WHL=${WHL:-.whl}
LIMIT_BYTES=$((64 * 1024 * 1024))  # what a device run carries: the repo's files, the wheels and runs/carry

travelling_bytes() {  # bytes a device run started here sends when it carries $WHL and $CARRY
    { git ls-files -z --cached --others --exclude-standard; find "$WHL" "$CARRY" -type f -print0 2>/dev/null || true; } \
        | "$PYTHON" -c 'import os, sys; print(sum(os.path.getsize(p) for p in set(sys.stdin.read().split("\0")) if os.path.isfile(p)))'
}

prepare() {
    local corpus=${CORPUS:-runs/corpus-all} heldout=${HELDOUT:-runs/corpus}
    local humaneval=${HUMANEVAL:-../shared/benchmarks/human-eval-infilling}
    [ -f "$corpus/train.jsonl" ] || "$PYTHON" -m dgemma_app.train corpus --out "$corpus" \
        --package-cap-chars 200000000 --stdlib-cap-chars 200000000  # every file the sources have
    [ -f "$heldout/val.jsonl" ] || "$PYTHON" -m dgemma_app.train corpus --out "$heldout"  # the eval's held-out files
    if [ "${WHEELS:-download}" != skip ]; then  # the device image has transformers 5.17 and no tree-sitter
        grep -qx '/.whl/' "$(git rev-parse --git-common-dir)/info/exclude" 2>/dev/null \
            || echo /.whl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$WHL" --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux1_x86_64 transformers==5.23.0 huggingface_hub==2.4.0 tokenizers==0.23.3 httpx2==2.16.2 \
            httpcore2==2.16.2 truststore==0.10.5 tree-sitter==0.26.1 tree-sitter-python==0.25.0
        "$PYTHON" deploy/trim_wheel.py "$WHL"/transformers-*.whl  # 13.3 MB → 2.3 MB: room for 11 MB more corpus
    fi
    rm -rf "$CARRY" && mkdir -p "$CARRY/heldout" "$CARRY/human-eval-infilling"
    cp "$heldout/val.jsonl" "$CARRY/heldout/"
    cp "$humaneval/HumanEval-SingleLineInfilling.jsonl.gz" "$CARRY/human-eval-infilling/"
    # What travels besides the pack: tracked and untracked-not-ignored files, the wheels, the files just copied.
    local others mib
    others=$(travelling_bytes)
    mib=$("$PYTHON" -c "print(round(($LIMIT_BYTES - $others) / 2**20 - ${MARGIN_MIB:-1.5}, 2))")
    echo "travels besides the pack: $others bytes; the pack may take $mib MiB (${MARGIN_MIB:-1.5} MiB kept for the repo to grow)"
    "$PYTHON" -c "import sys; sys.exit(float('$mib') <= 0)" \
        || { echo "no room for a corpus: the repo and the wheels take $others of $LIMIT_BYTES bytes" >&2; exit 1; }
    "$PYTHON" -m dgemma_app.train pack --corpus "$corpus" --tokenizer models/dgemma-code-tiny --out "$CARRY/pack.npz" \
        --max-mib "$mib"
    local total
    total=$(travelling_bytes)
    echo "a device run carrying $WHL and $CARRY sends $total bytes ($((total * 100 / LIMIT_BYTES)) % of 64 MiB)"
}

install() {  # the returned files → a model folder that load_model reads (its LEDGER.md stays)
    local back=${1:?the folder the device run returned} dest=${2:-models/dgemma-code-tiny}
    # Check before the old weights go: the index must name exactly the shards that came back.
    tar -x -O -f "$back/model-meta.tar" ./model.safetensors.index.json | "$PYTHON" -c '
import json, pathlib, sys
named = set(json.load(sys.stdin)["weight_map"].values())
there = {p.name for p in pathlib.Path(sys.argv[1]).glob("model-*-of-*.safetensors")}
sys.exit(0 if named == there else f"{sys.argv[1]}: the index names {sorted(named)}, the folder holds {sorted(there)}")
' "$back"
    mkdir -p "$dest"
    rm -f "$dest"/model.safetensors "$dest"/model-*.safetensors "$dest"/model.safetensors.index.json
    tar -x -f "$back/model-meta.tar" -C "$dest"
    cp "$back"/model-*-of-*.safetensors "$dest/"
    ls -l "$dest"
}

train() {
    local minutes=${1:-5}
    [ $# -gt 0 ] && shift
    local device=${DEVICE:-cuda} out=${OUT:-runs/gpu-out} run=${RUN:-runs/gpu} started=$SECONDS
    [ -f "$CARRY/pack.npz" ] || { echo "no $CARRY/pack.npz: run 'bash deploy/gpu_train.sh prepare' first, and carry $CARRY" >&2; exit 1; }
    if [ -d "$WHL" ]; then  # packages the image lacks, carried as wheels
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
    mkdir -p "$out" "$run"
    # 21.7M parameters (43 MB in bf16: three shards): 8 layers of width 384, 4 experts (top 2) of width 256, BPE 2,048.
    # Batches are built on the GPU from the whole corpus held there (--device-batches): no Python per example.
    # Batch 768 canvases (about 75 GiB by a CPU measurement of 100 MiB a canvas); out of memory at the first steps,
    # the run starts again at half the batch (seconds lost, not the call).
    local batch=${BATCH:-768}
    : > "$out/train.log"
    until "$PYTHON" -m dgemma_app.train train --pack "$CARRY/pack.npz" --run-dir "$run" --device "$device" --bf16 \
        --device-batches --minutes "$minutes" --steps 1000000 --batch-size "$batch" --lr 1e-3 --warmup 200 --threads 4 \
        --val-every 400 --val-batches 2 --checkpoint-minutes 3 --ar-share 0.2 --ar-weight 0.5 --tail-noise-prob 0.3 \
        --line-end-prob 0.5 --hidden-size 384 --num-layers 8 --num-heads 6 --num-kv-heads 1 --num-experts 4 \
        --top-k-experts 2 --expert-size 256 --intermediate-size 768 "$@" 2>&1 \
        | tr '\r' '\n' | { grep -v '‰ \[' || true; } | tee -a "$out/train.log"; do
        grep -q "OutOfMemoryError" "$out/train.log" && [ "$batch" -gt 96 ] || exit 1
        batch=$((batch / 2))
        rm -f "$run/checkpoint.pt" "$run/log.jsonl"
        echo "out of GPU memory: again at batch $batch" | tee -a "$out/train.log"
    done
    rm -rf "$run/model" && mkdir -p "$run/model"
    cp models/dgemma-code-tiny/LEDGER.md "$run/model/"  # the card the export writes ends with the ledger
    "$PYTHON" -m dgemma_app.train export --checkpoint "$run/checkpoint.pt" --out "$run/model" --dtype bf16 \
        --max-shard-size "${SHARD:-15MB}" | tee -a "$out/train.log"
    cp models/dgemma-code-tiny/generation_config.json "$run/model/"  # the shipped model's decoding defaults
    # Back through OUT (at most 8 files of 16 MiB): each weights shard, the small files in one tar, two logs, run.tar.
    cp "$run"/model/model-*-of-*.safetensors "$out/"
    tar -c -f "$out/model-meta.tar" -C "$run/model" --exclude 'model-*-of-*.safetensors' --exclude LEDGER.md .
    echo "training and export: $((SECONDS - started)) s" | tee -a "$out/train.log"
    evaluate "$run/model" "$out" "$device" "$run/eval"
    tar -c -f "$out/run.tar" -C "$run" log.jsonl summary.json eval
    echo "in all: $((SECONDS - started)) s" | tee -a "$out/eval.log"
    ls -l "$out"
    "$PYTHON" - "$out" <<'EOF'
import pathlib, sys
files = [p for p in pathlib.Path(sys.argv[1]).iterdir() if p.is_file()]
big = [p.name for p in files if p.stat().st_size > 16 * 2**20]
total = sum(p.stat().st_size for p in files)
ok = len(files) <= 8 and not big and total <= 64 * 2**20
print(f"OUT: {len(files)} files, {total / 2**20:.1f} MiB" + ("" if ok else f"; over the device limits (8 files, 16 MiB each, 64 MiB): {big}"))
EOF
}

evaluate() {  # the three sets side by side (the GPU is shared; each process fills one task at a time)
    local model=$1 out=$2 device=$3 evals=$4 limit=${EVAL_LIMIT:-200} seconds=${EVAL_TIMEOUT:-180}
    local map=cpu && [ "$device" != cpu ] && map=auto
    mkdir -p "$evals"
    local common=(--model "$model" --device-map "$map" --threads 2 --no-progress --data "$CARRY/human-eval-infilling"
                  --corpus "$CARRY/heldout")
    timeout "$seconds" "$PYTHON" -m dgemma_app.eval "${common[@]}" --set obvious --limit "$limit" \
        --out "$evals/obvious.json" > "$evals/obvious.log" 2>&1 &
    timeout "$seconds" "$PYTHON" -m dgemma_app.eval "${common[@]}" --heldout-lines "$limit" --heldout-seed 0 \
        --out "$evals/heldout-lines.json" > "$evals/heldout-lines.log" 2>&1 &
    timeout "$seconds" "$PYTHON" -m dgemma_app.eval "${common[@]}" --set single-line --limit "$limit" \
        --out "$evals/single-line.json" > "$evals/single-line.log" 2>&1 &
    wait || true
    "$PYTHON" - "$evals" <<'EOF' | tee "$out/eval.log"
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
for name in ("obvious", "heldout-lines", "single-line"):
    report = folder / f"{name}.json"
    if not report.is_file():
        print(f"{name}: no result (timed out or failed); its log ends:")
        print("".join((folder / f"{name}.log").read_text(errors="replace").splitlines(keepends=True)[-5:]))
        continue
    for set_name, s in json.loads(report.read_text())["sets"].items():
        passed = "-" if s["pass_at_1"] is None else f"{s['pass_at_1']:.1%}"
        print(f"{set_name}: {s['tasks']} tasks, exact {s['exact_match']:.1%}, compiles {s['compile_rate']:.1%}, "
              f"pass@1 {passed}, length {s['length_ratio']:.2f}x, {s['seconds_per_task']:.2f} s a task")
EOF
}

case "${1:-}" in
    prepare) prepare ;;
    install) shift; install "$@" ;;
    *) train "$@" ;;
esac
