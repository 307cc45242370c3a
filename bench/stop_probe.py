"""Does the model know where a fill ends? One decoder pass per obvious gap and state, at the first slot not given.

    python -m bench.stop_probe [--model DIR] [--slots 16] [--threads 1]

Each obvious gap becomes a `--slots`-slot gap holding the answer's tokens, then `<null>` filler, with the file's
text on both sides. The file is tokenized whole, so the gap's tokens are those of the real text (a gap that
starts after the indentation shares no token with it). Four states: no slot given (every fill starts there);
slot 0 given; all but the answer's last token given; the whole answer given, where the next slot should be the
filler. The rest of the gap is uniform noise. A model that fills a line and stops needs a high "filler" in the
last row; the 2026-11-30 default said filler there 4 % of the time (models/dgemma-code-tiny/LEDGER.md). The
engine's one-line gaps end a fill where the model writes a line break instead, so the last columns give the
probability of a line break (a token that starts with one) and how often it is the argmax.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from dgemma_app.backends.diffusion_gemma import DiffusionGemmaBackend
from dgemma_app.evalsets import GapCase, read_cases
from dgemma_app.model import load_model
from dgemma_app.train.data import NULL_ID
from dgemma_app.train.objective import Batch, forward_logits

STATES = ("none", "slot 0", "all but the last", "the whole answer")


def answer_span(tokenizer, case: GapCase, context: int) -> tuple[list[int], list[int], list[int]]:
    """(prefix ids, answer ids, suffix ids) of the case's whole text: the answer's tokens are those that overlap its
    characters; the prefix keeps its last `context` tokens."""
    text = case.prefix + case.solution + case.suffix
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, spans = enc["input_ids"], enc["offset_mapping"]
    lo, hi = len(case.prefix), len(case.prefix) + len(case.solution)
    inside = [i for i, (a, b) in enumerate(spans) if b > lo and a < hi]
    first, last = inside[0], inside[-1] + 1
    return ids[:first][-context:], ids[first:last], ids[last:]


def probe_case(model, ids: tuple[list[int], list[int], list[int]], slots: int, canvas: int, bos: int,
               gen: torch.Generator, breaks: torch.Tensor) -> list[tuple[float, float, bool, bool, float, bool]]:
    """Per state, at the first free slot: (P(filler), P(true token), argmax is the filler, argmax is the true token,
    P(line break), argmax is a line break); `breaks` [V] bool marks the tokens that start with a line break."""
    prefix, answer, suffix = ids
    target = (answer + [NULL_ID] * (slots - len(answer)) + suffix)[:canvas]
    target += [NULL_ID] * (canvas - len(target))
    given_counts = (0, 1, len(answer) - 1, len(answer))
    rows = []
    for given in given_counts:
        noise = torch.randint(NULL_ID + 1, model.config.get_text_config().vocab_size, (slots - given,), generator=gen)
        row = target[:given] + noise.tolist() + target[slots:]  # [canvas]
        batch = Batch(torch.tensor([prefix or [bos]]), torch.tensor([row]), torch.tensor([target]), None, None, None)
        with torch.no_grad():
            p = torch.softmax(forward_logits(model, batch)[0, given].float(), -1)  # [V] at the first free slot
        true = target[given]
        top = int(p.argmax())
        rows.append((p[NULL_ID].item(), p[true].item(), top == NULL_ID, top == true, p[breaks].sum().item(), bool(breaks[top])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    parser.add_argument("--slots", type=int, default=16, help="gap slots, as the engine gives a <FILL>")
    parser.add_argument("--context", type=int, default=128, help="prefix tokens, as in training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device_map="cpu")
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    canvas = model.config.canvas_length
    gen = torch.Generator().manual_seed(args.seed)
    breaks = DiffusionGemmaBackend(loaded).line_breaks()[0]  # [V]: the tokens one-line gaps end at
    results = []
    for case in read_cases():
        ids = answer_span(tokenizer, case, args.context)
        if 2 <= len(ids[1]) <= args.slots and args.slots < canvas:
            results.append(probe_case(model, ids, args.slots, canvas, tokenizer.bos_token_id or 0, gen, breaks))
    table = np.array(results)  # [cases, states, 6]
    print(f"# stop probe: {loaded.source}, {len(results)} obvious gaps of 2-{args.slots} tokens, {args.slots} slots, seed {args.seed}")
    print("| given | P(filler) | P(true) | argmax filler | argmax true | P(line break) | argmax line break |\n|---|---|---|---|---|---|---|")
    for state, row in zip(STATES, table.mean(axis=0)):
        print(f"| {state} | {row[0]:.3f} | {row[1]:.3f} | {row[2]:.0%} | {row[3]:.0%} | {row[4]:.3f} | {row[5]:.0%} |")


if __name__ == "__main__":
    main()
