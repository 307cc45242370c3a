"""Export a training checkpoint as a model folder `dgemma_app.model.load_model` reads:
weights + config (`save_pretrained`), tokenizer, `generation_config.json` and a model card.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings, store_defaults
from dgemma_app.settings import generation_defaults
from dgemma_app.train.data import TOKENIZER_FILES
from dgemma_app.train.loop import ModelShape, build_model
from dgemma_app.train.tokenizer import load_tokenizer

LEDGER = "LEDGER.md"  # every training run and what it scored: kept in the model folder, appended to the card


# The decoding knobs written to `generation_config.json`, named as it names them (library defaults unless tuned);
# derived from the DiffusionGemma settings, so a new generation knob there is a new export flag here.
SamplerSettings = generation_defaults(DiffusionGemmaSettings)
SPECIAL_IDS = dict(pad_token_id=0, eos_token_id=1, bos_token_id=2)  # the project's tokenizers (model.SPECIAL_TOKENS)


def _f(record: dict, key: str) -> str:
    return f"{record[key]:.3f}" if key in record else "–"


def model_card(meta: dict, state: dict, n_params: int, corpus_stats: dict | None, sampler: SamplerSettings,
               ledger: str = "") -> str:
    """The model folder's README.md: what it was trained on, how long, and how it scored."""
    shape, obj, loop = meta["shape"], meta["objective"], meta.get("loop", {})
    last = state["history"][-1] if state["history"] else None
    latest = (f"Latest (step {last['step']}): n0.1 {last['n0.1']:.3f}, n0.9 {last['n0.9']:.3f}." if last
              else "No validation yet at this checkpoint.")
    corpus = (f"{corpus_stats['files']:,} files, {corpus_stats['chars']:,} characters "
              f"({corpus_stats['val_files']} files held out for validation, {corpus_stats['prose_files']} prose files)"
              if corpus_stats else "see `runs/corpus/stats.json`")
    history = "\n".join(
        f"| {r['step']} | {r['tokens']:,} | {r['seconds'] / 3600:.2f} | {r['n0.1']:.3f} | {r['n0.9']:.3f} | "
        f"{_f(r, 'ar')} | {_f(r, 't1_true')} / {_f(r, 't1_other')} | {_f(r, 'slot0')} |"
        for r in state["history"][-8:]
    )
    ar_start = (f"The first {loop['ar_share']:.0%} of the schedule trained the shared weights as a causal LM on the encoder "
                f"alone ({loop.get('ar_length', '?')}-token rows), as Dream and DiffuCoder start from AR checkpoints; then "
                if loop.get("ar_share") else "")
    extras = ", ".join(x for x in (
        f"next-token loss on the encoder's outputs beside it (weight {obj['ar_weight']})" if obj.get("ar_weight") else "",
        f"{obj['tail_noise_prob']:.0%} of infill rows noised from a random gap slot on" if obj.get("tail_noise_prob") else "",
    ) if x)
    return f"""---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [diffusion, code, infilling, diffusion_gemma]
---
# dgemma-code-tiny

A {n_params / 1e6:.1f}M-parameter `DiffusionGemmaForBlockDiffusion` (uniform-state text diffusion, the
DiffusionGemma architecture) trained from scratch by `python -m dgemma_app.train` to fill gaps in Python
code on a laptop CPU. It is the default model of dgemma_app. It is a small demo model: expect plausible
short fills, not a capable code model.

- Shape: {shape['num_layers']} layers, width {shape['hidden_size']}, {shape['num_heads']} heads ({shape['num_kv_heads']} KV),
  {shape['num_experts']} experts (top {shape['top_k_experts']}, width {shape['expert_size']}), dense MLP {shape['intermediate_size']},
  canvas {obj['canvas_length']} tokens, positions up to {shape['max_positions']}; encoder and decoder share weights.
- Tokenizer: byte-level BPE, {meta.get('vocab_size', '?')} tokens; ids 0-4 are `<pad> <eos> <bos> <unk> <null>`.
  `<null>` fills unused gap slots, so a generous slot budget shrinks to the right length.
- Data: {corpus}: the Python standard library (no tests) and the Python sources of the packages pinned in
  `requirements.txt` (capped per package), plus bundled documentation prose; de-duplicated by content.
  No benchmark data (HumanEval) was used.
- Context: trained with at most {obj['max_context']} prefix tokens before the canvas; longer prefixes fit the
  positions but were never seen in training, so cutting the prefix to its last {obj['max_context']} tokens is safest.
- Objective: {ar_start}the encoder reads up to {obj['max_context']} tokens before the canvas; in the canvas, 1-{obj['max_gaps']} gaps
  (true tokens then `<null>` up to a slot budget), known tokens clean; gap slots corrupted with uniform random
  tokens at rate t ~ U({obj['t_min']}, 1); cross-entropy on corrupted slots (weight {obj['clean_weight']} on clean gap slots);
  self-conditioning with probability {obj['self_cond_prob']}; also plain continuation and lightly-noised edits{"; " + extras if extras else ""}.
- Training: {state['step']:,} steps of batch {loop.get('batch_size', '?')}, {state['tokens']:,} tokens (context + canvas),
  {state['seconds'] / 3600:.2f} hours ({state.get('cpu_seconds', 0) / 3600:.2f} CPU-hours), AdamW lr {loop.get('lr', '?')} with warm-up and cosine decay.

## Evaluation (held-out files)

Loss on corrupted gap slots when 10% (n0.1) or 90% (n0.9) of the gap slots are noise (n0.1 below n0.9:
the model uses the surrounding tokens); ar: the shared weights' causal-LM loss; t = 1: mean loss over an
8-slot gap that is all noise, with the true prefix / another file's prefix (the gap between them is what
the text before a gap is worth where every fill starts); slot 0: its first slot (`dgemma_app/train/probe.py`).

| step | tokens | hours | n0.1 | n0.9 | ar | t = 1 true / other | slot 0 |
|---|---|---|---|---|---|---|---|
{history}

{latest}
HumanEval-Infilling figures: run `python -m dgemma_app.eval` (see the project README).

## Decoding defaults (`generation_config.json`)

{json.dumps(asdict(sampler))}

Exported {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Licence: Apache-2.0.
{ledger}"""


def export(checkpoint: Path, out: Path, dtype: str = "fp32", sampler: SamplerSettings | None = None,
           max_shard_size: str | None = None) -> Path:
    """Write the model folder `out` from a `runs/<name>/checkpoint.pt`; returns `out`. `max_shard_size` ("15MB")
    splits the weights into files of at most that size (a device machine returns files under 16 MiB)."""
    sampler = sampler or SamplerSettings()
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    meta, state = ckpt["meta"], ckpt["state"]
    tokenizer_dir = Path(meta["tokenizer"])
    vocab = load_tokenizer(tokenizer_dir).get_vocab_size()
    meta["vocab_size"] = vocab
    model = build_model(vocab, ModelShape(**meta["shape"]), meta["objective"]["canvas_length"])
    model.load_state_dict(ckpt["model"])
    store_defaults(model, asdict(sampler), **SPECIAL_IDS)
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, out / name)
    stats_path = Path(meta["corpus"]) / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
    n_params = sum(p.numel() for p in model.parameters())
    ledger = (out / LEDGER).read_text(encoding="utf-8") if (out / LEDGER).is_file() else ""
    (out / "README.md").write_text(model_card(meta, state, n_params, stats, sampler, "\n" + ledger if ledger else ""))
    return out
