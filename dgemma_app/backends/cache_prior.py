"""The cache prior: a bigram language model of the text around a gap, mixed into the gap slots' guesses.

Code repeats its own identifiers and idioms (the classic cache language model for code, Tu et al. 2014); a small
model knows little of a file's names, but the file itself does. Pure tensor functions, then the per-window state
the backend's logits processor asks for a prior each pass. Shapes: B rows, L context tokens, C canvas, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

CACHE_SMOOTHING = 1.0  # pseudo-count of the unigram in a bigram's estimate (a left token seen once: half each)


def unigram_cache(context: torch.Tensor, valid: torch.Tensor, vocab: int) -> torch.Tensor:
    """Each row's token frequencies in the text around its gap (context [B, L] ids, valid [B, L] bool) -> [B, V];
    a row with no valid token is all zeros. Code repeats its own identifiers: the classic cache language model."""
    counts = torch.zeros(context.shape[0], vocab).scatter_add_(-1, context, valid.float())  # [B, V]
    return counts / counts.sum(-1, keepdim=True).clamp_min(1.0)


def bigram_cache(context: torch.Tensor, valid: torch.Tensor, left: torch.Tensor, unigram: torch.Tensor) -> torch.Tensor:
    """P(token | the token to its left) in the context, smoothed towards the unigram: (c(left, v) + s·uni(v)) /
    (c(left, ·) + s). left [B, C] ids, -1 where unknown (the unigram alone); unigram [B, V] -> [B, C, V]."""
    pair = valid[:, :-1] & valid[:, 1:]  # [B, L-1]: both tokens of the pair are text
    match = (context[:, None, :-1] == left[:, :, None]) & pair[:, None, :]  # [B, C, L-1]
    follows = context[:, None, 1:].expand(-1, left.shape[1], -1)  # [B, C, L-1]
    counts = torch.zeros(*left.shape, unigram.shape[-1]).scatter_add_(-1, follows, match.float())  # [B, C, V]
    return (counts + CACHE_SMOOTHING * unigram[:, None, :]) / (counts.sum(-1, keepdim=True) + CACHE_SMOOTHING)


def left_tokens(known: torch.Tensor, known_ids: torch.Tensor, draft: torch.Tensor | None, last: torch.Tensor,
                null_id: int | None) -> torch.Tensor:
    """The token to the left of each canvas position, [B, C], -1 where unknown: a known token, else the previous
    pass's draft (None on the first pass); position 0 has the prefix's `last` token [B]. A filler is no token."""
    # known [B, C] bool; known_ids, draft [B, C]
    guess = known_ids.masked_fill(~known, -1) if draft is None else torch.where(known, known_ids, draft)
    if null_id is not None:
        guess = guess.masked_fill(guess == null_id, -1)
    return torch.cat([last[:, None], guess[:, :-1]], dim=-1)


def mix_prior(scores: torch.Tensor, prior: torch.Tensor, slots: torch.Tensor, weight: float) -> torch.Tensor:
    """log(w·p_prior + (1 - w)·p_model) in `slots` (scores [B, C, V] logits at temperature 1, prior [B, C, V],
    slots [B, C] bool). The prior keeps to the tokens the clamps allow (finite scores); a slot where it allows
    nothing keeps the model's scores. Weight 0 returns `scores` itself: today's output exactly."""
    if weight == 0:
        return scores
    allowed = prior * torch.isfinite(scores)
    total = allowed.sum(-1, keepdim=True)  # [B, C, 1]
    mixed = torch.log(weight * allowed / total.clamp_min(1e-30) + (1 - weight) * torch.softmax(scores, dim=-1))
    return torch.where((slots & (total[..., 0] > 0))[..., None], mixed, scores)


@dataclass
class CachePrior:
    """One window's context (CPU tensors): each row's encoder prefix, then its canvas's known tokens."""

    ids: torch.Tensor  # [B, L]
    valid: torch.Tensor  # [B, L] bool: text, not padding or filler
    unigram: torch.Tensor  # [B, V] see `unigram_cache`
    null_id: int | None

    @classmethod
    def of(cls, prefix: torch.Tensor, prefix_valid: torch.Tensor, canvas: torch.Tensor, known: torch.Tensor, null_id: int | None,
           vocab: int) -> "CachePrior":
        """prefix, prefix_valid [B, P] (left-padded); canvas [B, C] starting tokens, known [B, C] bool."""
        text = known if null_id is None else known & (canvas != null_id)  # [B, C]
        ids, valid = torch.cat([prefix, canvas], dim=-1), torch.cat([prefix_valid.bool(), text], dim=-1)
        return cls(ids, valid, unigram_cache(ids, valid, vocab), null_id)

    def at(self, known: torch.Tensor, known_ids: torch.Tensor, draft: torch.Tensor | None) -> torch.Tensor:
        """[B, C, V] the prior of every canvas position, given the token to its left as it stands now (`left_tokens`)."""
        left = left_tokens(known.cpu(), known_ids.cpu(), None if draft is None else draft.cpu(), self.ids[:, -1], self.null_id)
        return bigram_cache(self.ids, self.valid, left, self.unigram).to(known.device)

