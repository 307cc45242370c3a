#!/usr/bin/env bash
# Every figure in BENCHMARKS.md, one command after another (never in parallel: 2 cores).
# Outputs: $OUT/*.md (tables) and $OUT/*.json (eval summaries with per-task results).
#   bash bench/run_all.sh                     # embedded default model, 2 torch threads
#   MODEL=path/to/model SMALL=1 bash bench/run_all.sh   # a quick dry run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/bench}
MODEL=${MODEL:-models/dgemma-code-tiny}
T=${THREADS:-2}
if [[ -n "${SMALL:-}" ]]; then N_SINGLE=2 N_OTHER=2 N_TRUE=2 N_PVL=2 N_LAT=2 N_COLD=1 N_KNOB=1; else
  N_SINGLE=80 N_OTHER=30 N_TRUE=40 N_PVL=40 N_LAT=20 N_COLD=3 N_KNOB=6; fi
mkdir -p "$OUT"
common=(--model "$MODEL" --threads "$T")
run() { local name=$1; shift; echo "== $name: $*" >&2; { echo "\$ $*"; echo; "$@"; } > "$OUT/$name.md"; }
run eval-single python -m dgemma_app.eval "${common[@]}" --set single-line --limit $N_SINGLE --no-progress --out "$OUT/eval-single.json"
run eval-other python -m dgemma_app.eval "${common[@]}" --set multi-line --set random-span-light --limit $N_OTHER --heldout $N_OTHER --no-progress --out "$OUT/eval-other.json"
run eval-true-length python -m dgemma_app.eval "${common[@]}" --set single-line --limit $N_TRUE --gap-length true --no-progress --out "$OUT/eval-true-length.json"
run sampler-old-vs-new python -m bench.sampler_sweep "${common[@]}" --tasks $N_SINGLE --grid "entropy_bound=0.5 t_max=0.5 max_passes=48 confidence_threshold=0.005"
run sampler-candidates python -m bench.sampler_sweep "${common[@]}" --tasks $N_SINGLE --grid "candidates=1,4"
run parallel-vs-ltr python -m bench.parallel_vs_ltr "${common[@]}" --tasks $N_PVL
run parallel-vs-ltr-exact python -m bench.parallel_vs_ltr "${common[@]}" --tasks $N_PVL --gap-length true --exact-length
run parallel-vs-ltr-multi-exact python -m bench.parallel_vs_ltr "${common[@]}" --tasks $N_OTHER --set multi-line --gap-length true --exact-length
run latency python -m bench.latency "${common[@]}" --tasks $N_LAT --cold-runs $N_COLD
run streaming python -m bench.streaming "${common[@]}" --tasks $N_LAT
run profile python -m bench.profile "${common[@]}" --repeat 5
run knobs python -m bench.knobs --model "$MODEL" --tasks $N_KNOB
python -m bench.eval_table "$OUT/eval-single.json" "$OUT/eval-true-length.json" "$OUT/eval-other.json" > "$OUT/eval-table.md"
echo "done: $OUT" >&2
