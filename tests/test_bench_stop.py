"""The stop probe's pieces: the answer's tokens are those of the whole text (the shipped tokenizer), and each
state is read at its first free slot (the package's tiny random-weight model)."""
from __future__ import annotations

import torch
from transformers import AutoTokenizer

from bench.stop_probe import STATES, answer_span, probe_case
from dgemma_app.evalsets import GapCase
from dgemma_app.model import DEFAULT_MODEL_DIR
from dgemma_app.train.data import NULL_ID


def test_answer_span_splits_the_whole_text_at_the_answer():
    tok = AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    case = GapCase("t", prefix="def f(a, b):\n    ", suffix="\n\nprint(f(1, 2))\n", solution="return a + b")
    prefix, answer, suffix = answer_span(tok, case, context=128)
    assert prefix + answer + suffix == tok(case.prefix + case.solution + case.suffix, add_special_tokens=False)["input_ids"]
    assert tok.decode(answer).strip() == "return a + b"
    assert tok.decode(prefix).startswith("def f(a, b):") and tok.decode(suffix).strip() == "print(f(1, 2))"
    assert len(answer_span(tok, case, context=3)[0]) == 3


def test_probe_case_reads_the_first_free_slot_of_each_state(tiny_loaded):
    model = tiny_loaded.model.eval()
    ids = ([10, 11, 12], [20, 21, 22, 23], [30, 31])  # prefix, answer, suffix
    breaks = torch.zeros(model.config.get_text_config().vocab_size, dtype=torch.bool)
    breaks[[30, 40]] = True  # tokens 30 and 40 stand for line breaks
    rows = probe_case(model, ids, 6, model.config.canvas_length, 2, torch.Generator().manual_seed(0), breaks)
    assert len(rows) == len(STATES)
    assert all(0.0 <= p <= 1.0 for row in rows for p in (row[0], row[1], row[4]))
    whole = rows[-1]  # the whole answer given: the next slot's true token is the filler
    assert whole[0] == whole[1] and whole[2] == whole[3]
    assert all(row[0] != row[1] for row in rows[:-1])  # elsewhere the true token is an answer token, not the filler
    assert NULL_ID not in ids[1]
    everything = probe_case(model, ids, 6, model.config.canvas_length, 2, torch.Generator().manual_seed(0), torch.ones_like(breaks))
    assert all(abs(row[4] - 1.0) < 1e-5 and row[5] for row in everything)  # every token a break: all the mass
