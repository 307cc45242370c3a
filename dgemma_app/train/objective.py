"""The training objective, shaped like the engine's use of the model.

Each example is (context → encoder, canvas → decoder). In the canvas, gap slots hold the true tokens
followed by `<null>` filler up to a sampled slot budget; the remaining positions are known tokens,
kept clean (the engine clamps them). Gap slots are corrupted with uniform random tokens at a rate
t ~ U(t_min, 1); the loss is cross-entropy on corrupted slots, plus a small weight on uncorrupted gap
slots (the model cannot tell which slots are noise, so it must also learn to keep good tokens).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F

from dgemma_app.train.data import NULL_ID, TokenStream


@dataclass
class ObjectiveConfig:
    canvas_length: int = 64
    max_context: int = 128
    short_context_prob: float = 0.1  # batches with a short prefix, as near the start of a file
    continuation_prob: float = 0.15  # whole canvas is one gap: plain left-to-right continuation
    edit_prob: float = 0.15  # one gap whose budget equals its length, lightly noised like an edit's seed
    max_gaps: int = 3
    gap_at_start_prob: float = 0.8  # the engine puts the first gap at canvas position 0
    min_gap_share: float = 0.1  # gap slots as a share of the canvas (infill and edit)
    max_gap_share: float = 0.75
    exact_budget_prob: float = 0.3  # gaps whose slot budget equals the true length (no filler)
    max_extra_slots: int = 24  # `<null>` filler beyond the true tokens
    t_min: float = 0.02
    edit_t_max: float = 0.5
    clean_weight: float = 0.1  # loss weight of gap slots that were not corrupted
    self_cond_prob: float = 0.5
    tail_noise_prob: float = 0.0  # infill rows whose gap slots are noise from a random slot on, clean before
    # it: the state a decoder meets when it commits a gap from its left end, as confidence ordering tends to
    ar_weight: float = 0.0  # next-token loss on the encoder's outputs beside the diffusion loss
    line_end_prob: float = 0.0  # infill gaps whose true tokens end just before a newline, as the app's line and
    # block gaps do, so "a whole line, then filler" is there to learn (else a gap's end falls anywhere)
    newline_ids: list[int] = field(default_factory=list)  # tokens that start with a newline: set from the tokenizer
    canvases_per_context: int = 1  # training canvases drawn on each context (own gaps and noise, same text): they
    # share its encoder pass, two thirds of a row's tokens, so more gap slots are supervised per CPU-second


@dataclass
class Batch:
    context: torch.Tensor  # [B / K, L] encoder input; canvas rows k*K .. k*K + K - 1 continue context k
    canvas: torch.Tensor  # [B, C] decoder input: known tokens clean, gap slots partly noise
    target: torch.Tensor  # [B, C] the clean canvas (gap slots: true tokens then <null>)
    gap: torch.Tensor  # [B, C] bool, slot the model must fill
    corrupted: torch.Tensor  # [B, C] bool, gap slot replaced by a random token
    weight: torch.Tensor  # [B, C] float, loss weight

    @property
    def tokens(self) -> int:
        return self.context.numel() + self.canvas.numel()

    def to(self, device: str) -> "Batch":
        """The batch on `device` (batches are drawn on the CPU, with the CPU's seeded generators)."""
        return Batch(*(getattr(self, f.name).to(device) for f in fields(self)))


def layout(after: np.ndarray, gaps: list[tuple[int, int, int]], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay out a canvas from the true continuation `after`.

    `gaps` lists (known tokens before the gap, true tokens k, slot budget S >= k). Returns the clean
    canvas [length] and the gap mask [length]; known tokens after the last gap run to the end.
    """
    canvas, gap, i = [], [], 0
    for known, k, slots in gaps:
        canvas += list(after[i : i + known]) + list(after[i + known : i + known + k]) + [NULL_ID] * (slots - k)
        gap += [False] * known + [True] * slots
        i += known + k
    rest = length - len(canvas)
    canvas += list(after[i : i + rest])
    gap += [False] * rest
    return np.array(canvas[:length], dtype=np.int64), np.array(gap[:length], dtype=bool)


def sample_gaps(rng: np.random.Generator, cfg: ObjectiveConfig) -> tuple[list[tuple[int, int, int]], str]:
    """Random gap plan for one canvas (see `layout`) and its mode name.

    Gap slots take 10-75% of the canvas, split over 1..max_gaps gaps; the known tokens take the rest,
    split before/between the gaps (none before the first gap, mostly, as in the engine).
    """
    c = cfg.canvas_length
    modes, probs = ["continuation", "edit", "infill"], [cfg.continuation_prob, cfg.edit_prob]
    mode = str(rng.choice(modes, p=probs + [1 - sum(probs)]))
    if mode == "continuation":
        return [(0, c, c)], mode
    n_gaps = 1 if mode == "edit" else int(rng.integers(1, cfg.max_gaps + 1))
    budget = max(n_gaps, int(c * rng.uniform(cfg.min_gap_share, cfg.max_gap_share)))
    slots = 1 + rng.multinomial(budget - n_gaps, rng.dirichlet(np.ones(n_gaps)))  # [n_gaps], each >= 1
    # known tokens before each gap; at least one between gaps, or two gaps would read as one
    min_known = np.minimum(np.arange(n_gaps), 1)  # [n_gaps]: 0, 1, 1, ...
    known = min_known + rng.multinomial(c - budget - min_known.sum(), rng.dirichlet(np.ones(n_gaps + 1)))[:n_gaps]
    if rng.random() < cfg.gap_at_start_prob:
        known[0] = 0
    plan = []
    for lead, s in zip(known, slots):
        extra = 0 if mode == "edit" or rng.random() < cfg.exact_budget_prob else int(rng.integers(0, s + 1))
        plan.append((int(lead), int(s) - min(extra, cfg.max_extra_slots), int(s)))
    return plan, mode


def end_at_line(after: np.ndarray, start: int, k: int, slots: int, newline: np.ndarray, rng: np.random.Generator) -> int:
    """The gap's true length cut so that the text after it starts with a newline token: one of the newline
    tokens among after[start + 1 .. start + slots], at random; `k` unchanged when there is none."""
    ends = np.flatnonzero(np.isin(after[start + 1 : start + slots + 1], newline)) + 1  # candidate lengths
    return int(rng.choice(ends)) if len(ends) else k


def line_gaps(after: np.ndarray, plan: list[tuple[int, int, int]], cfg: ObjectiveConfig,
              rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """`plan` with each gap, at probability `line_end_prob`, cut to end before a newline (see `end_at_line`)."""
    out, i = [], 0
    for known, k, slots in plan:
        if rng.random() < cfg.line_end_prob:
            k = end_at_line(after, i + known, k, slots, np.asarray(cfg.newline_ids), rng)
        out.append((known, k, slots))
        i += known + k
    return out


def corrupt(
    target: torch.Tensor, gap: torch.Tensor, t: torch.Tensor, vocab_size: int, gen: torch.Generator,
    tail: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each gap slot by a uniform random token with probability t (per example, [B]); rows where
    `tail` [B] is set instead get every gap slot from a random gap position on replaced.

    Returns (noised canvas [B, C], corrupted mask [B, C]); every example with a gap gets at least one
    corrupted slot, so no example is loss-free.
    """
    u = torch.rand(target.shape, generator=gen, device=target.device)  # [B, C]
    corrupted = gap & (u < t[:, None])
    if tail is not None and (target.device.type != "cpu" or bool(tail.any())):  # off the CPU, no test: it would sync
        rank = gap.cumsum(dim=1)  # [B, C] 1-based index of each gap slot among the row's gap slots
        cut = (torch.rand(len(gap), generator=gen, device=gap.device) * gap.sum(dim=1)).long() + 1  # [B] first noised gap slot
        corrupted = torch.where(tail[:, None], gap & (rank >= cut[:, None]), corrupted)
    forced = gap & (u == torch.where(gap, u, 2.0).min(dim=1, keepdim=True).values)  # lowest-draw gap slot
    corrupted |= forced & ~corrupted.any(dim=1, keepdim=True)
    noise = torch.randint(0, vocab_size, target.shape, generator=gen, device=target.device)
    return torch.where(corrupted, noise, target), corrupted


def check_whole_contexts(batch_size: int, cfg: ObjectiveConfig) -> None:
    """Raise ValueError unless `batch_size` canvases are whole contexts (`forward_logits` repeats each context's
    cache for the same number of canvases)."""
    if cfg.canvases_per_context < 1 or batch_size % cfg.canvases_per_context:
        raise ValueError(f"--batch-size {batch_size} must be a multiple of --canvases-per-context "
                         f"{cfg.canvases_per_context} (at least 1): a batch is whole contexts.")


def make_batch(
    stream: TokenStream, batch_size: int, cfg: ObjectiveConfig, vocab_size: int, rng: np.random.Generator,
    fixed_t: float | None = None,
) -> Batch:
    """One training (or, with `fixed_t`, validation: infill only, one canvas per context) batch; one context length
    for all rows. `batch_size` counts canvases, a multiple of `canvases_per_context`."""
    short = fixed_t is None and rng.random() < cfg.short_context_prob
    ctx_len = int(rng.integers(1, cfg.max_context)) if short else cfg.max_context
    per_context = 1 if fixed_t is not None else cfg.canvases_per_context
    if fixed_t is None:
        check_whole_contexts(batch_size, cfg)
    contexts, targets, gaps, ts, tails = [], [], [], [], []
    for row in range(batch_size):
        if row % per_context == 0:
            context, after = stream.window(rng, ctx_len, cfg.canvas_length)
            contexts.append(context.astype(np.int64))
        plan, mode = sample_gaps(rng, cfg)
        while fixed_t is not None and mode != "infill":
            plan, mode = sample_gaps(rng, cfg)
        if mode == "infill" and cfg.line_end_prob > 0:
            plan = line_gaps(after, plan, cfg, rng)
        target, gap = layout(after, plan, cfg.canvas_length)
        t_max = cfg.edit_t_max if mode == "edit" else 1.0
        targets.append(target)
        gaps.append(gap)
        ts.append(fixed_t if fixed_t is not None else rng.uniform(cfg.t_min, t_max))
        tails.append(fixed_t is None and mode == "infill" and rng.random() < cfg.tail_noise_prob)
    target = torch.from_numpy(np.stack(targets))  # [B, C]
    gap = torch.from_numpy(np.stack(gaps))  # [B, C]
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31)))
    canvas, corrupted = corrupt(target, gap, torch.tensor(ts), vocab_size, gen, torch.tensor(tails))
    weight = corrupted.float() + cfg.clean_weight * (gap & ~corrupted).float()
    return Batch(torch.from_numpy(np.stack(contexts)), canvas, target, gap, corrupted, weight)


def head_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """The tied LM head and final softcap, as the model applies them to the decoder ([B, L, H] → [B, L, V])."""
    cap = model.final_logit_softcapping
    return torch.tanh(model.lm_head(hidden).float() / cap) * cap


def forward_logits(
    model, batch: Batch, self_cond: torch.Tensor | None = None, with_encoder: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Logits [B, C, V] of the decoder on every canvas; `self_cond` [B] bool runs a no-grad decoder pass first and
    feeds its logits back to those rows, as generation does from the second pass on. The encoder runs once per
    context and its cache serves both passes and every canvas of the context (the decoder only reads it).
    `with_encoder` also returns the encoder's next-token logits [B / K, L, V] (the shared weights as a causal LM)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    encoded = model.model.encoder(input_ids=batch.context, past_key_values=cache).last_hidden_state  # [B / K, L, H]
    if (per_context := batch.canvas.shape[0] // batch.context.shape[0]) > 1:
        cache.batch_repeat_interleave(per_context)  # [B, heads, L, head_dim] per layer

    def run(sc_logits: torch.Tensor | None) -> torch.Tensor:
        return model(
            past_key_values=cache, decoder_input_ids=batch.canvas,
            self_conditioning_logits=sc_logits, self_conditioning_mask=self_cond if sc_logits is not None else None,
        ).logits

    sc_logits = None
    if self_cond is not None and bool(self_cond.any()):
        with torch.no_grad():
            sc_logits = run(None)
    logits = run(sc_logits)
    return (logits, head_logits(model, encoded)) if with_encoder else logits


def ar_window(stream: TokenStream, batch_size: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """Token windows [B, length + 1] for the causal-LM objective (`next_token_loss` reads each position's successor)."""
    rows = [stream.window(rng, length + 1, 0)[0].astype(np.int64) for _ in range(batch_size)]
    return torch.from_numpy(np.stack(rows))


def ar_logits(model, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token logits [B, L, V] of the encoder alone on `tokens` [B, L] (no canvas, no decoder)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    hidden = model.model.encoder(input_ids=tokens, past_key_values=cache).last_hidden_state  # [B, L, H]
    return head_logits(model, hidden)


def next_token_loss(logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits [B, L, V] read at positions 0..L-2 against context [B, L] at 1..L-1."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), context[:, 1:].flatten())


def weighted_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over slots, weighted ([B, C, V], [B, C], [B, C] → scalar)."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), reduction="none").view_as(weight)
    return (ce * weight).sum() / weight.sum().clamp_min(1e-8)
