"""The training loop: AdamW with warm-up and cosine decay (by steps or by a wall-clock budget),
gradient clipping, optional bf16 autocast, periodic checkpoints in `runs/<name>/` and `--resume`, on the CPU
or a GPU (`device`: batches are drawn on the CPU with its seeded generators, then moved; with `workers` > 0 they
are drawn ahead by background processes, see `prefetch`; with `device_batches` they are built on the device
itself, see `device_batches`). Each validation record says which share of the step
time went to drawing batches (`data_share`).

An optional autoregressive start (`ar_share`): the first part of the schedule trains the shared
weights as a causal LM on the encoder alone, as Dream and DiffuCoder start from AR checkpoints; the
rest trains the diffusion objective. Held-out validation reports the causal-LM loss, the diffusion
loss at noise 0.1 vs 0.9, and how much the text before a gap is worth where every fill starts (t = 1).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dgemma_app.model import tiny_config
from dgemma_app.train.data import TokenStream
from dgemma_app.train.objective import (
    Batch, ObjectiveConfig, ar_logits, ar_window, forward_logits, make_batch, next_token_loss, weighted_loss,
)
from dgemma_app.train.prefetch import batch_source
from dgemma_app.train.probe import PrefixProbe, prefix_probe, probe_losses


@dataclass
class ModelShape:
    """Arguments of `dgemma_app.model.tiny_config` except the vocabulary and canvas."""

    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 3
    num_kv_heads: int = 1
    num_experts: int = 4
    top_k_experts: int = 2
    expert_size: int = 256
    intermediate_size: int = 512
    max_positions: int = 1024


@dataclass
class LoopConfig:
    name: str = "default"
    batch_size: int = 16
    steps: int = 1000  # schedule length, unless `minutes` is set
    minutes: float = 0.0  # > 0: the schedule and the run span this much training time instead
    lr: float = 2e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    clip: float = 1.0
    bf16: bool = False
    threads: int = 2
    val_every: int = 100
    val_batches: int = 8
    checkpoint_minutes: float = 5.0
    seed: int = 0
    ar_share: float = 0.0  # share of the schedule spent on the causal-LM start (encoder only)
    ar_length: int = 256  # tokens per causal-LM row
    init_from: str = ""  # a model folder (e.g. the shipped one) whose weights start a new run
    device: str = "cpu"  # "cuda" on a GPU machine (with --bf16 and a large batch there)
    workers: int = 0  # > 0: training batches drawn ahead by this many background processes (0: in the loop)
    device_batches: bool = False  # build training batches on `device` from the corpus held there (no Python per row)


@dataclass
class State:
    step: int = 0
    seconds: float = 0.0  # training time so far, across resumes
    cpu_seconds: float = 0.0  # CPU time of this process (all threads; not batch workers): fairer than wall time on a shared machine
    data_seconds: float = 0.0  # of `seconds`, the part spent getting batches (drawn or taken from workers, then moved)
    tokens: int = 0
    history: list[dict] = field(default_factory=list)  # validation records


def build_model(vocab_size: int, shape: ModelShape, canvas_length: int):
    from transformers import DiffusionGemmaForBlockDiffusion

    config = tiny_config(vocab_size=vocab_size, canvas_length=canvas_length, **asdict(shape))
    return DiffusionGemmaForBlockDiffusion(config)


def shape_of(config) -> ModelShape:
    """The `ModelShape` of a built model's config (inverse of `build_model`), for runs started from a folder."""
    text = config.get_text_config()
    return ModelShape(
        hidden_size=text.hidden_size, num_layers=text.num_hidden_layers, num_heads=text.num_attention_heads,
        num_kv_heads=text.num_key_value_heads, num_experts=text.num_experts, top_k_experts=text.top_k_experts,
        expert_size=text.moe_intermediate_size, intermediate_size=text.intermediate_size,
        max_positions=text.max_position_embeddings,
    )


def progress(cfg: LoopConfig, state: State) -> float:
    return state.seconds / (cfg.minutes * 60) if cfg.minutes > 0 else state.step / cfg.steps


def learning_rate(cfg: LoopConfig, state: State) -> float:
    """Linear warm-up over `warmup` steps, then cosine from `lr` down to `min_lr_ratio * lr`."""
    if state.step < cfg.warmup:
        return cfg.lr * (state.step + 1) / cfg.warmup
    p = min(1.0, progress(cfg, state))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


@dataclass
class Validation:
    """Fixed held-out data, drawn once per run with fixed seeds so every record compares like with like."""

    infill: dict[float, list[Batch]]  # noise level → batches
    ar: list[torch.Tensor]  # [B, ar_length + 1] token windows
    probe: PrefixProbe


def validation_data(stream: TokenStream, obj: ObjectiveConfig, cfg: LoopConfig, vocab_size: int) -> Validation:
    n, b, device = cfg.val_batches, cfg.batch_size, cfg.device
    infill = {
        t: [make_batch(stream, b, obj, vocab_size, np.random.default_rng(1000 + i), fixed_t=t).to(device) for i in range(n)]
        for t in (0.1, 0.9)
    }
    ar = [ar_window(stream, b, cfg.ar_length, np.random.default_rng(2000 + i)).to(device) for i in range(n)]
    probe = prefix_probe(stream, obj, vocab_size, n, b)
    return Validation(infill, ar, PrefixProbe([batch.to(device) for batch in probe.batches]))


def autocast(cfg: LoopConfig) -> torch.autocast:
    """bf16 autocast on the run's device when `bf16` is set (on this CPU kind bf16 is emulated: slower)."""
    return torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=cfg.bf16)


@torch.no_grad()
def evaluate(model, val: Validation, cfg: LoopConfig) -> dict[str, float]:
    """n0.1 / n0.9: mean loss on corrupted slots at noise 0.1 / 0.9 (n0.1 below n0.9: the model reads the
    known tokens); ar: causal-LM loss; t1_true / t1_other / slot0: see `probe_losses`."""
    model.eval()
    out = {}
    with autocast(cfg):
        for t, group in val.infill.items():
            out[f"n{t}"] = float(np.mean([
                weighted_loss(forward_logits(model, b), b.target, b.corrupted.float()).item() for b in group
            ]))
        out["ar"] = float(np.mean([next_token_loss(ar_logits(model, w), w).item() for w in val.ar]))
        out.update(probe_losses(model, val.probe))
    model.train()
    return out


def ar_phase(cfg: LoopConfig, state: State) -> bool:
    return progress(cfg, state) < cfg.ar_share


def batch_loss(model, batch: Batch | torch.Tensor, obj: ObjectiveConfig, cfg: LoopConfig) -> tuple[torch.Tensor, int]:
    """One step's loss and its processed tokens from a batch on the run's device: causal-LM windows [B, L + 1] train
    the causal LM alone, a diffusion `Batch` trains diffusion (+ `ar_weight` × causal LM)."""
    with autocast(cfg):
        if isinstance(batch, torch.Tensor):  # [B, L + 1]
            return next_token_loss(ar_logits(model, batch), batch), batch.numel()
        self_cond = (torch.rand(cfg.batch_size) < obj.self_cond_prob).to(cfg.device)  # [B]
        if obj.ar_weight <= 0 or batch.context.shape[1] < 2:  # a 1-token context has no next token to predict
            return weighted_loss(forward_logits(model, batch, self_cond), batch.target, batch.weight), batch.tokens
        logits, enc_logits = forward_logits(model, batch, self_cond, with_encoder=True)  # [B, C, V], [B, L, V]
        loss = weighted_loss(logits, batch.target, batch.weight)
        return loss + obj.ar_weight * next_token_loss(enc_logits, batch.context), batch.tokens


def save_checkpoint(path: Path, model, optimizer, state: State, meta: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": asdict(state),
                "meta": meta}, tmp)
    tmp.replace(path)


def train(
    model, train_stream: TokenStream, val_stream: TokenStream, obj: ObjectiveConfig, cfg: LoopConfig,
    run_dir: Path, meta: dict, resume: bool = False,
) -> State:
    """Train until the schedule ends; `meta` (shapes, tokenizer path) is stored in every checkpoint."""
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # denormal floats in tiny weights/grads are slow on CPU
    torch.manual_seed(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    model.to(cfg.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    state = State()
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=cfg.device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = State(**ckpt["state"])
    vocab = model.config.get_text_config().vocab_size
    source = batch_source(train_stream, obj, cfg.batch_size, cfg.ar_length, vocab, cfg.seed, state.step, cfg.workers,
                          ar_phase(cfg, state), cfg.device if cfg.device_batches else None)
    with source, open(run_dir / "log.jsonl", "a") as log:  # leaving it, on any exception too, stops the workers
        val = validation_data(val_stream, obj, cfg, vocab)  # meanwhile the workers (if any) start
        source.wait()
        if cfg.init_from and state.step == 0:  # the model it continues, on the run's own validation rows: its baseline
            log_validation(model, val, cfg, state, log, None, 0.0, tqdm.write)
        train_steps(model, optimizer, source, val, obj, cfg, state, ckpt_path, log, meta)
    return state


def log_validation(model, val: Validation, cfg: LoopConfig, state: State, log, train_loss: float | None, share: float,
                   write) -> None:
    """Score the model on the validation data and append the record (train_loss None: before any step) to the
    run's history, its log file and the console."""
    record = {"step": state.step, "seconds": round(state.seconds, 1), "cpu_seconds": round(state.cpu_seconds, 1),
              "data_seconds": round(state.data_seconds, 1), "data_share": round(share, 4), "tokens": state.tokens,
              "train_loss": train_loss, **evaluate(model, val, cfg)}
    if cfg.device.startswith("cuda"):  # the peak so far: how much larger a batch the next run can take
        record["gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    state.history.append(record)
    log.write(json.dumps(record) + "\n")
    log.flush()
    trained = f"train {train_loss:.3f}  data {share:.1%}" if train_loss is not None else "(the model it starts from)"
    write(f"step {state.step}: val n0.1 {record['n0.1']:.3f}  n0.9 {record['n0.9']:.3f}  ar {record['ar']:.3f}  "
          f"t=1 true/other prefix {record['t1_true']:.3f}/{record['t1_other']:.3f}  slot0 {record['slot0']:.3f}  {trained}"
          + (f"  GPU peak {record['gpu_gib']} GiB" if "gpu_gib" in record else ""))


def train_steps(model, optimizer, source, val: Validation, obj: ObjectiveConfig, cfg: LoopConfig, state: State,
                ckpt_path: Path, log, meta: dict) -> None:
    bar = tqdm(total=1000, initial=int(1000 * min(1.0, progress(cfg, state))), unit="‰", dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}‰ [{elapsed}<{remaining}{postfix}]")
    last_ckpt, window = time.time(), []
    mark = (state.seconds, state.data_seconds)  # at the last record: data_share is the data time over the step
    # time since then (the last validation interval), so a change (the end of the AR start) shows where it happens
    model.train()
    while progress(cfg, state) < 1.0:
        # The previous step ended with loss.item(), which waits for the device: the time to the batch's arrival on
        # the device is data time alone (the copy from pageable memory is synchronous), the rest is the step's compute.
        started, cpu_started = time.time(), time.process_time()
        batch = source.next(ar_phase(cfg, state)).to(cfg.device)
        data_seconds = time.time() - started
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, state)
        loss, tokens = batch_loss(model, batch, obj, cfg)
        if not torch.isfinite(loss):  # one bad batch must not turn every weight into NaN: skip it, loudly
            bar.write(f"step {state.step + 1}: loss {loss.item()}; batch skipped")
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        state.step += 1
        state.seconds += time.time() - started
        state.cpu_seconds += time.process_time() - cpu_started
        state.data_seconds += data_seconds
        state.tokens += tokens
        window = (window + [(loss.item(), tokens, time.time() - started)])[-20:]
        bar.n = int(1000 * min(1.0, progress(cfg, state)))
        bar.set_postfix(step=state.step, loss=f"{np.mean([w[0] for w in window]):.3f}",
                        tok_s=f"{sum(w[1] for w in window) / sum(w[2] for w in window):.0f}", refresh=False)
        bar.refresh()
        if state.step % cfg.val_every == 0 or progress(cfg, state) >= 1.0:
            share = (state.data_seconds - mark[1]) / max(state.seconds - mark[0], 1e-9)
            mark = (state.seconds, state.data_seconds)
            log_validation(model, val, cfg, state, log, float(np.mean([w[0] for w in window])), share, bar.write)
        if time.time() - last_ckpt > cfg.checkpoint_minutes * 60 or progress(cfg, state) >= 1.0:
            save_checkpoint(ckpt_path, model, optimizer, state, meta)
            last_ckpt = time.time()
    bar.close()
