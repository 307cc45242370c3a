"""GPU speed, one prepared run: the real 26B-A4B architecture with random weights, then the embedded default.

    python -m bench.gpu [--device cuda] [--repeat 3] [--compile] [--skip-embedded] [--scale tiny]

Weights cannot be downloaded, so the 26B model is built from its configuration with random bf16 weights straight
on the device (seconds, not minutes); speed depends on shapes, not values. `--scale tiny` shrinks every width so
the same code runs on a CPU in seconds: that is how the test proves the script before a GPU run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from bench.common import passes_per_task, table
from dgemma_app import eval as ev
from dgemma_app.model import DEFAULT_MODEL_DIR, resolve_dtype

# google/diffusiongemma-26B-A4B-it, text part of its config.json (25.25B parameters, 3.84B active per token as built
# here). Source: a re-upload of that config.json, huggingface.co/Umranz/Vision-Diff/blob/main/config.json (widths,
# head dims, window, positions, canvas 256), and the Gemma 4 26B-A4B text config it is built on (apxml.com/models/
# gemma-4-26b-a4b, vast.ai/model/gemma-4-26b-a4b-it: 16 heads, 8 KV heads, 128 experts, top-8, expert width 704),
# cross-checked against public test fixtures that copy the checkpoint's config. transformers' own
# DiffusionGemmaTextConfig defaults are a small dense model (2304 wide, no experts), not this one.
REAL_TEXT_CONFIG = dict(
    vocab_size=262_144, hidden_size=2816, max_position_embeddings=262_144,
    num_hidden_layers=30,  # 5 sliding-window : 1 full attention, the last one full
    num_attention_heads=16, num_key_value_heads=8, head_dim=256, sliding_window=1024,
    num_global_key_value_heads=2, global_head_dim=512,  # full-attention layers; their keys double as values
    intermediate_size=2112,  # the dense MLP beside the experts in every layer
    num_experts=128, top_k_experts=8, moe_intermediate_size=704,
    hidden_activation="gelu_pytorch_tanh", final_logit_softcapping=30.0, use_bidirectional_attention="vision",
)
CANVAS = 256
# --scale tiny: the same structure, every width shrunk, so a CPU runs all rows in seconds.
TINY_OVERRIDES = dict(
    vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
    num_key_value_heads=1, num_global_key_value_heads=1, head_dim=32, global_head_dim=64,
    num_experts=4, top_k_experts=2, moe_intermediate_size=64,
)
MINIMAL_VISION = dict(model_type="gemma4_vision", num_hidden_layers=1, hidden_size=32, intermediate_size=32,
                      num_attention_heads=1, num_key_value_heads=1, head_dim=32)
ANCHOR_TOKENS_PER_S = 1000.0  # reported for the real checkpoint, one user, one H100
GENERATE_HEADERS = ["run", "passes", "first call s", "median s", "tokens/s", "ms/pass", "peak GiB", "x anchor"]
EMBEDDED_HEADERS = ["model", "fills", "p50 s", "p95 s", "passes/fill", "tokens/s", "ms/pass", "peak GiB"]


class PassCounter(LogitsProcessor):
    """Counts decoder passes: generate calls every logits processor once per pass and returns no pass count."""

    def __init__(self) -> None:
        self.passes = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, cur_step: torch.Tensor) -> torch.Tensor:
        self.passes += 1
        return scores  # [batch, canvas, vocab], untouched


def build_random_model(scale: str, device: str, dtype: torch.dtype):
    """(model, seconds): the 26B-A4B architecture (or its tiny shrink) with random weights, made on `device`."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    text = dict(REAL_TEXT_CONFIG, **(TINY_OVERRIDES if scale == "tiny" else {}))
    layers = text["num_hidden_layers"]
    text["layer_types"] = ["full_attention" if i % 6 == 5 or i == layers - 1 else "sliding_attention"
                           for i in range(layers)]
    config = DiffusionGemmaConfig(text_config=text, vision_config=MINIMAL_VISION, canvas_length=CANVAS)
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):  # no CPU copy: 50 GB of bf16 weights are written where they are used
        model = DiffusionGemmaForBlockDiffusion._from_config(config, dtype=dtype)
    return model.eval(), time.perf_counter() - started


def sync(device: str) -> None:
    """Wait for the GPU: its calls return before the work is done, and wall time must include the work."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str, reset: bool = False) -> float | None:
    """Peak GPU memory since the last reset (None on a CPU); `reset` starts a new window."""
    if not device.startswith("cuda"):
        return None
    peak = torch.cuda.max_memory_allocated() / 2**30
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak


def failed(label: str, err: BaseException, width: int) -> list:
    """A table row saying why `label` did not run, in one line; frees what the failure left on the GPU."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    reason = (str(err).strip().splitlines() or [""])[0][:160]
    return [label, f"failed: {type(err).__name__}: {reason}"] + ["-"] * (width - 2)


def generate_row(model, prompt: torch.Tensor, device: str, repeat: int, label: str, **knobs) -> list:
    """One `generate` setting: a first call (warm-up, compile), then the median of `repeat` timed calls."""
    counter = PassCounter()

    def once() -> float:
        counter.passes = 0
        sync(device)
        started = time.perf_counter()
        model.generate(prompt, max_new_tokens=CANVAS, logits_processor=LogitsProcessorList([counter]), **knobs)
        sync(device)
        return time.perf_counter() - started

    peak_gib(device, reset=True)
    first = once()
    seconds = statistics.median(once() for _ in range(repeat))
    passes = counter.passes
    return [label, passes, first, seconds, CANVAS / seconds, 1000 * seconds / passes, peak_gib(device),
            CANVAS / seconds / ANCHOR_TOKENS_PER_S]


def print_row(headers: list[str], row: list) -> None:
    """One table row, printed as soon as it is measured: a run cut short by its time limit keeps what it printed."""
    print(table(headers, [row]).splitlines()[-1], flush=True)


def random_model_rows(args: argparse.Namespace, dtype: torch.dtype) -> list[list]:
    """Print the random-weight model's table (default sampler, a fixed 16-pass budget, optionally compiled)."""
    never_stop = dict(max_denoising_steps=16, confidence_threshold=1e-9)  # mean entropy is never under 1e-9
    runs: list[tuple[str, dict]] = [("default sampler, 48-pass budget", {}), ("fixed 16 passes", never_stop)]
    if args.compile:
        runs.append(("fixed 16 passes, static cache + torch.compile", dict(never_stop, cache_implementation="static")))
    peak_gib(args.device, reset=True)
    try:
        model, build_s = build_random_model(args.scale, args.device, dtype)
    except Exception as err:  # OOM or an unsupported config: every row says so
        rows = [failed(label, err, len(GENERATE_HEADERS)) for label, _ in runs]
        print(f"## 26B-A4B could not be built\n\n{table(GENERATE_HEADERS, rows)}\n")
        return rows
    params = sum(p.numel() for p in model.parameters())
    size = f"{params / 1e9:.2f}B" if params >= 1e9 else f"{params / 1e6:.2f}M"
    text = model.config.text_config
    high = min(text.vocab_size, model.config.boi_token_id)  # no special (0..3) or image token ids
    prompt = torch.randint(4, high, (1, args.prompt), device=args.device)  # [1, P]
    weights = peak_gib(args.device)
    print(
        f"## {'26B-A4B' if args.scale == 'real' else 'tiny shrink of 26B-A4B'}, random weights: {size} parameters, "
        f"{str(dtype).removeprefix('torch.')}, built in {build_s:.1f} s{f', {weights:.1f} GiB' if weights else ''}; "
        f"batch 1, prompt {args.prompt} tokens, canvas {CANVAS}; experts={text._experts_implementation} "
        f"attention={text._attn_implementation}; median of {args.repeat} after one first call\n",
        flush=True,
    )
    print(table(GENERATE_HEADERS, []))
    rows = []
    for label, knobs in runs:
        try:
            rows.append(generate_row(model, prompt, args.device, args.repeat, label, **knobs))
        except Exception as err:  # one failed row (OOM, compile error) must not cost the others
            rows.append(failed(label, err, len(GENERATE_HEADERS)))
        print_row(GENERATE_HEADERS, rows[-1])
    print()
    del model
    return rows


def embedded_row(args: argparse.Namespace) -> list:
    """The embedded default through the app's own Engine: HumanEval single-line fills, wall time per fill."""
    from dgemma_app.engine import Engine
    from dgemma_app.model import load_model

    engine = Engine(load_model(DEFAULT_MODEL_DIR, device_map=args.device, dtype="auto"))
    settings = engine.settings()
    tasks = ev.spread(ev.load_set("single-line", args.data), args.fills)
    ev.warm_up(engine, tasks[0], settings)
    peak_gib(args.device, reset=True)
    sync(args.device)  # a fill ends with its canvases copied to the host, so its wall time includes the GPU work
    results = [ev.evaluate_task(engine, task, settings, run_tests=False) for task in tasks]
    s = ev.summarize("embedded", results)
    ms_per_pass = 1000 * sum(r.seconds for r in results) / sum(r.passes for r in results)
    return [DEFAULT_MODEL_DIR.name, s.tasks, s.seconds_p50, s.seconds_p95, passes_per_task(results), s.tokens_per_second,
            ms_per_pass, peak_gib(args.device)]


def header(args: argparse.Namespace) -> str:
    """One line naming the run: date, GPU, CPU, torch / CUDA / transformers versions, threads, load."""
    import transformers

    info = ev.machine_info()
    gpu = "no GPU"
    if args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(args.device)
        gpu = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; device {args.device}: {gpu}; {info['cpu']}, "
        f"{info['cores']} cores; torch {info['torch']} threads={info['torch_threads']}; transformers "
        f"{transformers.__version__}; load average {os.getloadavg()[0]:.1f}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["real", "tiny"], default="real", help="tiny: a shrink for a CPU check")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per row, after one first call")
    parser.add_argument("--prompt", type=int, default=512, help="random prompt tokens before the canvas")
    parser.add_argument("--compile", action="store_true", help="add a static-cache + torch.compile row (minutes)")
    parser.add_argument("--skip-embedded", action="store_true", help="leave out the embedded default model")
    parser.add_argument("--fills", type=int, default=5, help="HumanEval single-line fills for the embedded model")
    parser.add_argument("--data", type=Path, default=ev.DATA_DIR, help="human-eval-infilling folder")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the tables; exit 0 when at least one row ran."""
    from transformers.utils import logging as hf_logging

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()  # the tables are the output
    print(f"# GPU speed — {header(args)}\n", flush=True)
    rows = random_model_rows(args, resolve_dtype("auto", args.device))
    print(
        "Random weights never become confident, so the default sampler also runs its whole 48-pass budget; trained "
        "weights stop early. Anchor (x anchor = tokens/s / 1,000): ~1,000 tokens/s on one H100 for one user, reported "
        "for the real checkpoint; ms/pass is the comparable figure. A pass's time includes its share of the prompt "
        "encoding.\n",
        flush=True,
    )
    if not args.skip_embedded:
        try:
            embedded = embedded_row(args)
        except Exception as err:
            embedded = failed(DEFAULT_MODEL_DIR.name, err, len(EMBEDDED_HEADERS))
        rows.append(embedded)
        print("## embedded default through Engine.fill (its own sampler settings)\n")
        print(table(EMBEDDED_HEADERS, [embedded]))
    return 0 if any(not str(row[1]).startswith("failed") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
