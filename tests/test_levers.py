"""Decoding levers on a real (random-weight) DiffusionGemma: the cache prior and the left-to-right lean."""
import pytest
import torch

from dgemma_app.backends.cache_prior import bigram_cache, left_tokens, mix_prior, unigram_cache
from dgemma_app.backends.canvas_maths import entropy_bound_accept, ordered_accept
from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings as Settings

FAST = dict(max_passes=6, candidates=1)


def test_unigram_and_bigram_count_the_context_and_skip_what_is_not_text():
    context = torch.tensor([[5, 1, 2, 1, 3, 9]])  # 5 is padding (not valid), 9 a filler slot
    valid = torch.tensor([[False, True, True, True, True, False]])
    uni = unigram_cache(context, valid, 10)
    assert uni[0, 1] == pytest.approx(0.5) and uni[0, 2] == uni[0, 3] == pytest.approx(0.25) and uni[0, 5] == 0
    left = torch.tensor([[1, -1, 3]])  # after 1: 2 once, 3 once; unknown: the unigram; after 3: only the filler (no pair)
    bi = bigram_cache(context, valid, left, uni)
    assert bi[0, 0, 2] == pytest.approx((1 + 0.25) / 3) and bi[0, 0, 3] == pytest.approx((1 + 0.25) / 3)
    assert torch.allclose(bi[0, 1], uni[0]) and torch.allclose(bi[0, 2], uni[0])
    assert torch.allclose(bi.sum(-1), torch.ones(1, 3))


def test_left_tokens_take_known_tokens_then_the_last_draft_and_never_the_filler():
    known = torch.tensor([[True, False, False]])
    known_ids, draft, null = torch.tensor([[4, 0, 0]]), torch.tensor([[4, 7, 2]]), 2
    assert left_tokens(known, known_ids, None, torch.tensor([8]), null).tolist() == [[8, 4, -1]]
    assert left_tokens(known, known_ids, draft, torch.tensor([8]), null).tolist() == [[8, 4, 7]]
    assert left_tokens(known, known_ids, torch.tensor([[4, 2, 2]]), torch.tensor([8]), null).tolist() == [[8, 4, -1]]


def test_mix_prior_keeps_the_clamps_and_only_touches_gap_slots():
    scores = torch.tensor([[[0.0, 0.0, float("-inf")], [0.0, 0.0, 0.0]]])  # [1, 2, 3]; token 2 banned in slot 0
    prior = torch.tensor([[[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]])
    slots = torch.tensor([[True, False]])
    assert mix_prior(scores, prior, slots, 0.0) is scores
    out = mix_prior(scores, prior, slots, 0.5).exp()
    assert out[0, 0].tolist() == pytest.approx([0.25, 0.75, 0.0])  # the prior's mass on the banned token goes to token 1
    assert torch.equal(out[0, 1].log(), scores[0, 1])
    nothing = mix_prior(scores, torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]), slots, 0.5)
    assert torch.equal(nothing[0, 0], scores[0, 0])  # the prior allows nothing there: the model's own scores


def test_ordered_accept_without_bias_is_the_library_rule_and_with_bias_takes_the_left_first():
    torch.manual_seed(0)
    entropy = torch.rand(4, 12)
    free = torch.ones(4, 12, dtype=torch.bool)
    assert torch.equal(ordered_accept(entropy, free, 0.0, 0.8), entropy_bound_accept(entropy, 0.8))
    leaning = ordered_accept(entropy, free, 100.0, 0.8)
    for row in leaning.tolist():
        taken = sum(row)
        assert taken >= 1 and row == [True] * taken + [False] * (12 - taken)  # a left run of slots
    assert ordered_accept(entropy, free, 100.0, 1000.0).all()


def test_a_full_cache_prior_fills_only_with_tokens_the_text_around_the_gap_holds(engine, tiny_loaded):
    text = "alpha = beta + gamma\nresult = <FILL:4>\nprint(result)\n"
    result = engine.fill(text, "python", Settings(cache_weight=1.0, **FAST))
    tokenizer = tiny_loaded.tokenizer
    around = set(tokenizer(text.replace("<FILL:4>", ""), add_special_tokens=False)["input_ids"])
    around |= set(tokenizer(" ", add_special_tokens=False)["input_ids"])  # the space the gap took over from the text
    filled = tokenizer(" " + result.fills[0], add_special_tokens=False)["input_ids"]
    assert result.fills[0] and set(filled) <= around
    assert engine.fill(text, "python", Settings(**FAST)).fills[0] != result.fills[0]


def test_no_prior_and_no_lean_are_todays_output(engine):
    text = "def f(a, b):\n    return <FILL>\n"
    plain = engine.fill(text, "python", Settings(**FAST))
    zeros = engine.fill(text, "python", Settings(cache_weight=0.0, left_bias=0.0, **FAST))
    assert zeros.fills == plain.fills and [p.token_ids for p in zeros.trace] == [p.token_ids for p in plain.trace]


def test_a_strong_lean_accepts_each_pass_a_left_run_of_the_free_slots(engine):
    result = engine.fill("x = <FILL:8>\ny = 1\n", "python", Settings(left_bias=100.0, entropy_bound=0.5, exact_length=True, **FAST))
    passes = [p for p in result.trace if p.step > 0]
    assert passes
    for trace_pass in passes:
        accepted = [s in ("accepted", "kept") for s, k in zip(trace_pass.state, result.trace[0].state) if k == "noise"]
        taken = sum(accepted)
        assert accepted == [True] * taken + [False] * (len(accepted) - taken)
