"""The maths of one denoising pass over a window, as small pure tensor functions: what the sampler keeps, what the
clamps allow, and where a fill ends. Shapes: B rows, C canvas positions, V vocabulary.

`backends.diffusion_gemma` applies them in its logits processor; a masked-diffusion backend can use the same ones.
"""
from __future__ import annotations

import torch

NEG_INF = float("-inf")


def entropy_bound_accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """Which positions the EntropyBoundSampler accepts: lowest-entropy first while the sum minus the max stays under `bound`."""
    sorted_entropy, order = torch.sort(entropy, dim=-1)  # [B, C]
    keep = torch.cumsum(sorted_entropy, dim=-1) - sorted_entropy <= bound
    return torch.zeros_like(keep).scatter(-1, order, keep)


def clamp_scores(
    scores: torch.Tensor,
    known: torch.Tensor,
    known_ids: torch.Tensor,
    banned: torch.Tensor,
    must_fill: torch.Tensor | None = None,
    null_id: int | None = None,
) -> torch.Tensor:
    """Known positions may only be their token; free positions may never be a banned special token; `must_fill`
    slots may not be the `<null>` filler (a marked gap holds at least one token)."""
    # scores [B, C, V]; known [B, C] bool; known_ids [B, C]; banned [V] bool; must_fill [B, C] bool
    free = scores.masked_fill(banned, NEG_INF)
    if must_fill is not None and null_id is not None:
        free[..., null_id] = free[..., null_id].masked_fill(must_fill, NEG_INF)
    forced = torch.full_like(scores, NEG_INF).scatter(-1, known_ids.unsqueeze(-1), 0.0)
    return torch.where(known.unsqueeze(-1), forced, free)


def left_to_right_commit(
    draft: torch.Tensor, known: torch.Tensor, known_ids: torch.Tensor, owner: torch.Tensor, null_id: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Baseline order, one token per pass, as an autoregressive decoder: the leftmost free slot takes its greedy
    token. A filler there is the decoder's end token: the rest of that gap becomes filler in the same pass.
    Returns the new known mask and ids."""
    # draft, known_ids, owner [B, C] (owner: marker index of a slot, -1 elsewhere); known [B, C] bool
    free = ~known
    first = free & (torch.cumsum(free.int(), dim=-1) == 1)  # [B, C]
    known_ids = torch.where(first, draft, known_ids)
    if null_id is not None:
        ended = torch.where(first & (draft == null_id), owner, -2).amax(-1, keepdim=True)  # [B, 1], -2 = no gap ended
        rest = free & (owner == ended)
        known_ids = torch.where(rest, null_id, known_ids)  # the committed slot already drafted the filler
        first = first | rest
    return known | first, known_ids


def penalize_filler(scores: torch.Tensor, slots: torch.Tensor, null_id: int | None, penalty: float) -> torch.Tensor:
    """Lower the filler's logit in free gap slots (scores [B, C, V], slots [B, C] bool). With nothing better to say,
    `<null>` is a weak model's safest, most confident guess, and the sampler accepts confident tokens first, so
    fills shrink to a token or two; the penalty makes the model say what it would write instead."""
    if null_id is None or penalty == 0:
        return scores
    scores[..., null_id] = scores[..., null_id] - penalty * slots.to(scores.dtype)
    return scores


def hold_line_breaks(scores: torch.Tensor, free_line_end: torch.Tensor, no_break: torch.Tensor, null_id: int,
                     breaks: torch.Tensor, inner_breaks: torch.Tensor) -> torch.Tensor:
    """In a gap that ends a line the filler waits for the line break (scores [B, C, V]; masks [B, C] bool; token
    sets [V] bool). A weak model's fill otherwise shrinks to a token or two: `<null>`, its safest guess, is accepted
    in the far slots first. Yet told the whole line it writes a line break next about two times in three (the
    embedded model on the obvious-gap set): so free slots there may not be the filler, slots that must hold a token
    may not be a break (`breaks`: tokens that start with one), and a token with a break after its text
    (`inner_breaks`) may not appear there at all. `end_at_breaks` turns an accepted break into the fill's end."""
    scores[..., null_id] = scores[..., null_id].masked_fill(free_line_end, NEG_INF)
    scores = scores.masked_fill(no_break.unsqueeze(-1) & breaks, NEG_INF)
    return scores.masked_fill(free_line_end.unsqueeze(-1) & inner_breaks, NEG_INF)


def end_at_breaks(stop: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """The slots a line break ends (stop, owner [B, C]: slots whose accepted token is a break that ends its line
    gap; the slot's gap): each such slot and every later slot of its gap, [B, C] bool. They become the filler:
    the break itself belongs to the text after the gap."""
    pos = torch.arange(owner.shape[-1], device=owner.device)  # [C]
    same_gap = (owner.unsqueeze(-1) == owner.unsqueeze(-2)) & (owner.unsqueeze(-1) >= 0)  # [B, C slot, C stop]
    at_or_after = pos.unsqueeze(-1) >= pos  # [C slot, C stop]
    return (same_gap & at_or_after & stop.unsqueeze(-2)).any(-1)


def restrict_leads(scores: torch.Tensor, leads: list[tuple[int, int, torch.Tensor]]) -> torch.Tensor:
    """Slots whose token must start with a given text keep only such tokens (scores [B, C, V]); a few per window."""
    for b, i, allowed in leads:
        scores[b, i] = scores[b, i].masked_fill(~allowed, NEG_INF)
    return scores


# ----------------------------------------------------------------------------- acceptance order


def ordered_accept(entropy: torch.Tensor, free: torch.Tensor, bias: float, bound: float) -> torch.Tensor:
    """The entropy-bound rule with a left-to-right lean: slots are taken in order of entropy plus `bias` per free
    slot to their left, and kept while the summed entropy minus its largest term stays under `bound` (the library's
    rule, whose sorted order makes that term the last one). Bias 0 is `entropy_bound_accept`. entropy [B, C],
    free [B, C] bool -> [B, C] bool. A weak model is surer of a slot when it sees the tokens before it."""
    if bias == 0:
        return entropy_bound_accept(entropy, bound)
    rank = (torch.cumsum(free.int(), dim=-1) - 1).clamp_min(0) * free  # [B, C]: free slots to the left
    order = torch.argsort(entropy + bias * rank, dim=-1, stable=True)  # [B, C]
    taken = torch.gather(entropy, -1, order)
    keep = torch.cumsum(taken, dim=-1) - torch.cummax(taken, dim=-1).values <= bound
    return torch.zeros_like(keep).scatter(-1, order, keep)
