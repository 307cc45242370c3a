"""Several training canvases per context (`--canvases-per-context K`): each context is encoded once and its cache
serves K canvases with their own gaps and noise on the same continuation, so a step supervises more gap slots
for the same encoder work. The shared pass must compute exactly what K separate copies of the context would."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from dgemma_app.train.__main__ import main
from dgemma_app.train.data import NULL_ID, TokenStream
from dgemma_app.train.loop import ModelShape, build_model
from dgemma_app.train.objective import ObjectiveConfig, forward_logits, make_batch, weighted_loss

VOCAB = 300
SHAPE = ModelShape(hidden_size=24, num_layers=2, num_heads=2, num_kv_heads=1, num_experts=2, top_k_experts=1,
                   expert_size=16, intermediate_size=32, max_positions=64)


def counting_stream(vocab: int) -> TokenStream:
    """One long file whose tokens count up (wrapping below `vocab`, skipping the special ids): a window's text
    tells where in the file it was drawn."""
    tokens = (np.arange(20_000) % (vocab - 10) + 10).astype(np.uint16)
    return TokenStream(tokens, np.array([0, len(tokens)]), 4 * len(tokens))


def text_of(row: torch.Tensor) -> list[int]:
    """A canvas's true text: its clean tokens without the `<null>` filler."""
    return [t for t in row.tolist() if t != NULL_ID]


def test_the_canvases_of_a_context_continue_it_with_their_own_gaps():
    cfg = ObjectiveConfig(canvas_length=16, max_context=8, canvases_per_context=4, short_context_prob=0.0)
    b = make_batch(counting_stream(60_000), 8, cfg, VOCAB, np.random.default_rng(0))
    assert b.context.shape == (2, 8) and b.canvas.shape == b.target.shape == (8, 16)
    for k, context in enumerate(b.context.tolist()):
        rows = b.target[4 * k : 4 * k + 4]
        texts = [text_of(row) for row in rows]
        assert all(text[0] == context[-1] + 1 for text in texts)  # each canvas continues its own context
        longest = max(texts, key=len)
        assert all(text == longest[: len(text)] for text in texts)  # the same text, cut by different gap budgets
        assert len({tuple(gap.tolist()) for gap in b.gap[4 * k : 4 * k + 4]}) > 1  # but not the same gaps
    validation = make_batch(counting_stream(60_000), 8, cfg, VOCAB, np.random.default_rng(0), fixed_t=1.0)
    assert validation.context.shape == (8, 8)  # validation keeps one canvas per context, comparable across runs


@pytest.mark.parametrize("self_cond", [False, True])
def test_one_encoder_pass_per_context_equals_encoding_each_copy(self_cond):
    torch.manual_seed(0)
    model = build_model(VOCAB, SHAPE, 16)
    cfg = ObjectiveConfig(canvas_length=16, max_context=8, canvases_per_context=2, short_context_prob=0.0)
    shared = make_batch(counting_stream(VOCAB), 4, cfg, VOCAB, np.random.default_rng(1))
    copies = replace(shared, context=shared.context.repeat_interleave(2, dim=0))  # [4, L]: one context per canvas
    rows = torch.tensor([True, False, True, True]) if self_cond else None

    def step(batch):
        """(decoder logits, encoder logits, gradient of the shared embeddings) of one training step."""
        model.zero_grad()
        logits, encoder_logits = forward_logits(model, batch, rows, with_encoder=True)
        weighted_loss(logits, batch.target, batch.weight).backward()
        return logits.detach(), encoder_logits.detach(), model.get_input_embeddings().weight.grad.clone()

    (logits, encoder_logits, grad), (copy_logits, copy_encoder_logits, copy_grad) = step(shared), step(copies)
    assert encoder_logits.shape[0] == 2 and copy_encoder_logits.shape[0] == 4
    torch.testing.assert_close(logits, copy_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(encoder_logits, copy_encoder_logits[::2], atol=1e-4, rtol=1e-4)
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad, copy_grad, atol=1e-5, rtol=1e-4)  # the gradient reaches the context alike


def test_a_batch_that_is_not_whole_contexts_is_refused(tmp_path):
    with pytest.raises(SystemExit, match=r"--batch-size 6 must be a multiple of --canvases-per-context 4"):
        main(["train", "--run-dir", str(tmp_path / "run"), "--batch-size", "6", "--canvases-per-context", "4"])
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="must be a multiple"):  # and so are callers that skip the command
        make_batch(counting_stream(VOCAB), 6, ObjectiveConfig(canvases_per_context=4), VOCAB, np.random.default_rng(0))


def test_the_throughput_bench_trains_each_setting_in_turn():
    from bench.train_throughput import measure

    model = build_model(VOCAB, SHAPE, 16)
    before = model.get_input_embeddings().weight.detach().clone()
    obj = ObjectiveConfig(canvas_length=16, max_context=8)
    results = measure(model, counting_stream(VOCAB), obj, batch_size=4, canvases=[1, 2], steps=2, vocab=VOCAB)
    assert list(results) == [1, 2]
    assert all(len(seconds) == len(slots) == 2 and min(seconds) > 0 and min(slots) > 0 for seconds, slots in results.values())
    assert not torch.equal(before, model.get_input_embeddings().weight)  # the steps train
