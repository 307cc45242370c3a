"""Training batches built on the training device from the whole corpus held there as one token tensor.

The CPU builder (`objective.make_batch`) lays out every canvas in a Python loop over rows: on a GPU the model
waited for it. Here every step of it is a tensor operation over the whole batch, on the device that trains:
window starts, gap plans (mode, number of gaps, slot budgets, known runs, true lengths, line ends), the canvas
layout and the noise. The only Python loop is over the gap index (at most `max_gaps`, 3), because a gap's place
in the continuation depends on the true lengths before it. Same objective as `make_batch`, same fields, drawn
from the same distributions, except two: the split of a budget over the gaps is a rounded Dirichlet(1) split
instead of a Dirichlet-multinomial one (same mean, both uniform-like), and the random stream differs (torch's
generator on the device instead of numpy's on the CPU), so a run is reproducible for one seed and builder.
"""
from __future__ import annotations

import numpy as np
import torch

from dgemma_app.train.data import NULL_ID, BatchSource, TokenStream
from dgemma_app.train.objective import Batch, ObjectiveConfig, check_whole_contexts, corrupt


class DeviceCorpus:
    """A token stream moved to `device` once: tokens [N] int64, file offsets [F + 1] and lengths [F]."""

    def __init__(self, stream: TokenStream, device: str):
        self.device = torch.device(device)
        self.tokens = torch.from_numpy(stream.tokens.astype(np.int64)).to(self.device)  # [N]
        self.offsets = torch.from_numpy(stream.offsets.astype(np.int64)).to(self.device)  # [F + 1]
        self.lengths = self.offsets[1:] - self.offsets[:-1]  # [F]

    def starts(self, n: int, context: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` positions g [n], uniform over the positions with `context` tokens of the same file before them (as
        `TokenStream.window`), and the end of each one's file [n]."""
        room = (self.lengths - context).clamp_min(0)  # [F] valid starts per file
        cum = room.cumsum(0)  # [F]
        u = (torch.rand(n, generator=gen, device=self.device) * cum[-1]).long().clamp_max(cum[-1] - 1)  # [n]
        f = torch.searchsorted(cum, u, right=True)  # [n] file of each draw
        g = self.offsets[f] + context + u - (cum[f] - room[f])  # [n]
        return g, self.offsets[f + 1]

    def windows(self, n: int, context: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(contexts [n, context], continuations [n, length]) as `TokenStream.window`: `<null>` past a file's end."""
        g, end = self.starts(n, context, gen)
        ctx = self.tokens[g[:, None] + torch.arange(-context, 0, device=self.device)]  # [n, context]
        pos = g[:, None] + torch.arange(length, device=self.device)  # [n, length]
        after = torch.where(pos < end[:, None], self.tokens[pos.clamp_max(len(self.tokens) - 1)], NULL_ID)
        return ctx, after


def split(total: torch.Tensor, parts: torch.Tensor, width: int, gen: torch.Generator) -> torch.Tensor:
    """A random split of `total` [B] (>= 0) into `parts` [B] (1..width) non-negative whole parts [B, width]
    (Dirichlet(1) shares, cumulated and rounded down, so the parts sum exactly to `total`); parts past `parts` are 0."""
    live = torch.arange(width, device=total.device) < parts[:, None]  # [B, width]
    e = torch.where(live, -torch.log(torch.rand(live.shape, generator=gen, device=total.device).clamp_min(1e-12)), 0.0)
    share = e.cumsum(1) / e.sum(1, keepdim=True)  # [B, width], 1 from the last live part on
    cum = torch.where(share >= 1 - 1e-6, total[:, None].double(), (share * total[:, None]).floor().double()).long()
    return torch.diff(cum, dim=1, prepend=torch.zeros_like(cum[:, :1]))


class GapPlans:
    """Gap plans of a batch as tensors [B, G] (G = max_gaps): known tokens before each gap, true tokens, slots;
    gaps past a row's number are empty. Modes: 0 continuation, 1 edit, 2 infill (`objective.sample_gaps`)."""

    def __init__(self, n: int, cfg: ObjectiveConfig, gen: torch.Generator, device: torch.device):
        c, g_max = cfg.canvas_length, cfg.max_gaps
        rand = lambda *shape: torch.rand(shape, generator=gen, device=device)  # noqa: E731
        u = rand(n)
        self.mode = torch.where(u < cfg.continuation_prob, 0, torch.where(u < cfg.continuation_prob + cfg.edit_prob, 1, 2))
        infill, edit = self.mode == 2, self.mode == 1
        n_gaps = torch.where(infill, (rand(n) * g_max).long() + 1, 1)  # [B]
        budget = torch.maximum(n_gaps, (c * (cfg.min_gap_share + rand(n) * (cfg.max_gap_share - cfg.min_gap_share))).long())
        slots = 1 + split(budget - n_gaps, n_gaps, g_max, gen)  # [B, G]
        gap_ids = torch.arange(g_max, device=device)
        min_known = ((gap_ids >= 1) & (gap_ids < n_gaps[:, None])).long()  # [B, G]: 0, 1, 1, ... for live gaps
        known = min_known + split((c - budget - min_known.sum(1)).clamp_min(0), n_gaps + 1, g_max + 1, gen)[:, :g_max]
        known[:, 0] = torch.where(rand(n) < cfg.gap_at_start_prob, 0, known[:, 0])
        live = gap_ids < n_gaps[:, None]
        slots, known = slots * live, known * live
        exact = edit[:, None] | (rand(n, g_max) < cfg.exact_budget_prob)
        extra = torch.where(exact, 0, (rand(n, g_max) * (slots + 1)).long().clamp_max(cfg.max_extra_slots))
        whole = (self.mode == 0)[:, None]  # continuation: one gap of the whole canvas
        self.known = torch.where(whole, 0, known)
        self.slots = torch.where(whole, torch.where(gap_ids == 0, c, 0), slots)
        self.true = torch.where(whole, self.slots, slots - extra)

    def end_at_lines(self, after: torch.Tensor, newline_ids: torch.Tensor, prob: float, gen: torch.Generator) -> None:
        """Cut infill gaps, each at probability `prob`, to end just before a newline token (`newline_ids`) of
        `after` [B, C] within its slots (`objective.line_gaps`); a later gap moves with the earlier ones' new lengths."""
        newline = torch.isin(after, newline_ids)  # [B, C]
        n, c = after.shape
        pick = (self.mode == 2)[:, None] & (torch.rand(n, self.true.shape[1], generator=gen, device=after.device) < prob)
        j = torch.arange(1, c + 1, device=after.device)  # [C] candidate lengths
        begin = torch.zeros(n, dtype=torch.long, device=after.device)  # where gap i's true tokens begin in `after`
        for i in range(self.true.shape[1]):
            begin = begin + self.known[:, i]
            at = begin[:, None] + j  # [B, C] the token after a gap of length j
            ok = (j <= self.slots[:, i : i + 1]) & (at < c) & newline.gather(1, at.clamp_max(c - 1))
            score = torch.where(ok, torch.rand(ok.shape, generator=gen, device=after.device), -1.0)
            chosen = score.argmax(1) + 1  # [B] a random newline in reach
            self.true[:, i] = torch.where(pick[:, i] & ok.any(1), chosen, self.true[:, i])
            begin = begin + self.true[:, i]

    def layout(self, after: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean canvas [B, C] and gap mask [B, C] from `after` [B, C] (`objective.layout`, for all rows at once):
        a slot's source in `after` is its position less the filler slots before it."""
        n, c = after.shape
        start = (self.known + self.slots).cumsum(1) - self.slots  # [B, G] first slot of each gap
        p = torch.arange(c, device=after.device)[None, :, None]  # [1, C, 1]
        offset = p - start[:, None, :]  # [B, C, G]
        gap = ((offset >= 0) & (offset < self.slots[:, None, :])).any(2)  # [B, C]
        filler = ((offset >= self.true[:, None, :]) & (offset < self.slots[:, None, :])).any(2)  # [B, C]
        source = p[0, :, 0] - (filler.long().cumsum(1) - filler.long())  # [B, C]
        return torch.where(filler, NULL_ID, after.gather(1, source)), gap


class DeviceBatches(BatchSource):
    """Training batches drawn on the corpus's device (the loop's `batch_source` with `device_batches`): diffusion
    `Batch`es and causal-LM windows, every random draw from one torch generator seeded by seed + first step."""

    def __init__(self, stream: TokenStream, obj: ObjectiveConfig, batch_size: int, ar_length: int, vocab: int,
                 seed: int, step: int, device: str):
        check_whole_contexts(batch_size, obj)
        self.corpus = DeviceCorpus(stream, device)
        self.obj, self.batch_size, self.ar_length, self.vocab = obj, batch_size, ar_length, vocab
        self.gen = torch.Generator(device=self.corpus.device).manual_seed(seed + step)
        self.rng = np.random.default_rng(seed + step)  # the batch's one context length: a host scalar, no sync
        self.newline_ids = torch.tensor(obj.newline_ids, dtype=torch.long, device=self.corpus.device)  # copied once

    def next(self, ar: bool) -> Batch | torch.Tensor:
        if ar:  # [B, ar_length + 1]
            return self.corpus.windows(self.batch_size, self.ar_length + 1, 0, self.gen)[0]
        return self.diffusion()

    def diffusion(self) -> Batch:
        cfg, b, dev = self.obj, self.batch_size, self.corpus.device
        short = self.rng.random() < cfg.short_context_prob
        ctx_len = int(self.rng.integers(1, cfg.max_context)) if short else cfg.max_context
        k = cfg.canvases_per_context
        context, after = self.corpus.windows(b // k, ctx_len, cfg.canvas_length, self.gen)  # [B / K, L], [B / K, C]
        after = after.repeat_interleave(k, dim=0)  # [B, C]: each context's continuation for its K canvases
        plans = GapPlans(b, cfg, self.gen, dev)
        if cfg.line_end_prob > 0:
            plans.end_at_lines(after, self.newline_ids, cfg.line_end_prob, self.gen)
        target, gap = plans.layout(after)
        u = torch.rand(b, generator=self.gen, device=dev)
        t_max = torch.where(plans.mode == 1, cfg.edit_t_max, 1.0)
        t = cfg.t_min + u * (t_max - cfg.t_min)  # [B]
        tail = (plans.mode == 2) & (torch.rand(b, generator=self.gen, device=dev) < cfg.tail_noise_prob)
        canvas, corrupted = corrupt(target, gap, t, self.vocab, self.gen, tail)
        weight = corrupted.float() + cfg.clean_weight * (gap & ~corrupted).float()
        return Batch(context, canvas, target, gap, corrupted, weight)
