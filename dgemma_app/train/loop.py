"""The training loop: AdamW with warm-up and cosine decay (by steps or by a wall-clock budget),
gradient clipping, optional bf16 autocast, held-out validation at noise 0.1 vs 0.9, periodic
checkpoints in `runs/<name>/` and `--resume`.
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
from dgemma_app.train.objective import Batch, ObjectiveConfig, forward_logits, make_batch, weighted_loss


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


@dataclass
class State:
    step: int = 0
    seconds: float = 0.0  # training time so far, across resumes
    cpu_seconds: float = 0.0  # CPU time of this process (all threads): fairer than wall time on a shared machine
    tokens: int = 0
    history: list[dict] = field(default_factory=list)  # validation records


def build_model(vocab_size: int, shape: ModelShape, canvas_length: int):
    from transformers import DiffusionGemmaForBlockDiffusion

    config = tiny_config(vocab_size=vocab_size, canvas_length=canvas_length, **asdict(shape))
    return DiffusionGemmaForBlockDiffusion(config)


def progress(cfg: LoopConfig, state: State) -> float:
    return state.seconds / (cfg.minutes * 60) if cfg.minutes > 0 else state.step / cfg.steps


def learning_rate(cfg: LoopConfig, state: State) -> float:
    """Linear warm-up over `warmup` steps, then cosine from `lr` down to `min_lr_ratio * lr`."""
    if state.step < cfg.warmup:
        return cfg.lr * (state.step + 1) / cfg.warmup
    p = min(1.0, progress(cfg, state))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def validation_batches(stream: TokenStream, cfg: ObjectiveConfig, vocab_size: int, n: int, batch_size: int):
    """Fixed held-out infill batches at noise 0.1 and 0.9 (same windows, same seed every time)."""
    return {
        t: [make_batch(stream, batch_size, cfg, vocab_size, np.random.default_rng(1000 + i), fixed_t=t) for i in range(n)]
        for t in (0.1, 0.9)
    }


@torch.no_grad()
def evaluate(model, batches: dict[float, list[Batch]], bf16: bool) -> dict[str, float]:
    """Mean loss on corrupted slots only: n0.1 falling below n0.9 means the model reads the known tokens."""
    model.eval()
    out = {}
    for t, group in batches.items():
        losses = []
        for b in group:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = forward_logits(model, b)
            losses.append(weighted_loss(logits, b.target, b.corrupted.float()).item())
        out[f"n{t}"] = float(np.mean(losses))
    model.train()
    return out


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
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    state = State()
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = State(**ckpt["state"])
    vocab = model.config.get_text_config().vocab_size
    rng = np.random.default_rng(cfg.seed + state.step)
    val = validation_batches(val_stream, obj, vocab, cfg.val_batches, cfg.batch_size)
    log = open(run_dir / "log.jsonl", "a")
    bar = tqdm(total=1000, initial=int(1000 * min(1.0, progress(cfg, state))), unit="‰", dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}‰ [{elapsed}<{remaining}{postfix}]")
    last_ckpt, window = time.time(), []
    model.train()
    while progress(cfg, state) < 1.0:
        started, cpu_started = time.time(), time.process_time()
        batch = make_batch(train_stream, cfg.batch_size, obj, vocab, rng)
        self_cond = torch.rand(cfg.batch_size) < obj.self_cond_prob  # [B]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, state)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = forward_logits(model, batch, self_cond)  # [B, C, V]
        loss = weighted_loss(logits, batch.target, batch.weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        state.step += 1
        state.seconds += time.time() - started
        state.cpu_seconds += time.process_time() - cpu_started
        state.tokens += batch.tokens
        window = (window + [(loss.item(), batch.tokens, time.time() - started)])[-20:]
        bar.n = int(1000 * min(1.0, progress(cfg, state)))
        bar.set_postfix(step=state.step, loss=f"{np.mean([w[0] for w in window]):.3f}",
                        tok_s=f"{sum(w[1] for w in window) / sum(w[2] for w in window):.0f}", refresh=False)
        bar.refresh()
        if state.step % cfg.val_every == 0 or progress(cfg, state) >= 1.0:
            record = {"step": state.step, "seconds": round(state.seconds, 1), "cpu_seconds": round(state.cpu_seconds, 1),
                      "tokens": state.tokens,
                      "train_loss": float(np.mean([w[0] for w in window])), **evaluate(model, val, cfg.bf16)}
            state.history.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.write(f"step {state.step}: val n0.1 {record['n0.1']:.3f}  n0.9 {record['n0.9']:.3f}  "
                      f"train {record['train_loss']:.3f}")
        if time.time() - last_ckpt > cfg.checkpoint_minutes * 60 or progress(cfg, state) >= 1.0:
            save_checkpoint(ckpt_path, model, optimizer, state, meta)
            last_ckpt = time.time()
    bar.close()
    log.close()
    return state
