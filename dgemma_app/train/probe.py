"""How much the text before a gap is worth where every fill starts: loss by gap slot at t = 1.

Fixed held-out canvases with one gap of `SLOTS` slots at canvas position 0, exact length (no `<null>`
filler, so easy filler slots do not flatter the mean), every gap slot noise, the rest of the canvas
known. The same canvases are scored with the true prefix and with another file's prefix (the batch
rolled by one row). A model that reads its context scores far lower with the true prefix; slot 0 needs
only the end of the prefix, so it should reach the corpus's bigram level early.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dgemma_app.train.data import TokenStream
from dgemma_app.train.objective import Batch, ObjectiveConfig, forward_logits

SLOTS = 8


@dataclass
class PrefixProbe:
    batches: list[Batch]  # gap = canvas slots 0..SLOTS-1, all corrupted


def prefix_probe(stream: TokenStream, obj: ObjectiveConfig, vocab_size: int, n: int, batch_size: int) -> PrefixProbe:
    batches = []
    for i in range(n):
        rng = np.random.default_rng(3000 + i)
        rows = [stream.window(rng, obj.max_context, obj.canvas_length) for _ in range(batch_size)]
        context = torch.from_numpy(np.stack([c for c, _ in rows]).astype(np.int64))  # [B, L]
        target = torch.from_numpy(np.stack([a for _, a in rows]).astype(np.int64))  # [B, C]
        gap = torch.zeros_like(target, dtype=torch.bool)
        gap[:, :SLOTS] = True
        gen = torch.Generator().manual_seed(4000 + i)
        canvas = torch.where(gap, torch.randint(0, vocab_size, target.shape, generator=gen), target)
        batches.append(Batch(context, canvas, target, gap, gap.clone(), gap.float()))
    return PrefixProbe(batches)


def slot_losses(model, probe: PrefixProbe, other_prefix: bool) -> np.ndarray:
    """Mean cross-entropy per gap slot [SLOTS], with the true prefix or another row's."""
    per_slot = []
    for b in probe.batches:
        if other_prefix:
            b = Batch(b.context.roll(1, dims=0), b.canvas, b.target, b.gap, b.corrupted, b.weight)
        logits = forward_logits(model, b)[:, :SLOTS]  # [B, SLOTS, V]
        ce = F.cross_entropy(logits.float().flatten(0, 1), b.target[:, :SLOTS].flatten(), reduction="none")
        per_slot.append(ce.view(-1, SLOTS).mean(dim=0).cpu().numpy())
    return np.mean(per_slot, axis=0)


def probe_losses(model, probe: PrefixProbe) -> dict[str, float]:
    """t1_true / t1_other: mean loss over the gap slots at t = 1 with the true / another file's prefix;
    slot0 and slots1_7: the true-prefix loss at the first slot and over the others."""
    true, other = slot_losses(model, probe, False), slot_losses(model, probe, True)
    return {"t1_true": float(true.mean()), "t1_other": float(other.mean()), "slot0": float(true[0]),
            "slots1_7": float(true[1:].mean()), "slots_true": [round(float(x), 3) for x in true],
            "slots_other": [round(float(x), 3) for x in other]}
