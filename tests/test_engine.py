"""The engine on a real (random-weight) DiffusionGemma: clamping, windows, edits, candidates, trace."""
import threading

import pytest
import torch
from transformers import DynamicCache
from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSampler, EntropyBoundSamplerConfig

from dgemma_app.backends.base import FillCancelled
from dgemma_app.engine import FillRequest
from dgemma_app.backends.canvas_maths import clamp_scores, entropy_bound_accept, left_to_right_commit
from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings as Settings, shared_prefix_cache, temperature_at
from dgemma_app.trace import settled_from
from dgemma_app.gaps import MarkerError
from dgemma_app.pieces import whole_characters
from dgemma_app.settings import SettingsError

FAST = dict(max_passes=6)
STATES = {"known", "seed", "noise", "kept", "accepted", "outside"}


def test_entropy_bound_accept_matches_the_library_sampler():
    torch.manual_seed(0)
    logits = torch.randn(3, 16, 50) * 4
    entropy = torch.distributions.Categorical(logits=logits).entropy()
    sampler = EntropyBoundSampler(EntropyBoundSamplerConfig(entropy_bound=0.5), 16, 50, 48)
    sampler.accept_canvas(torch.zeros(3, 16, dtype=torch.long), torch.ones(3, 16, dtype=torch.long), logits, 1)
    assert torch.equal(entropy_bound_accept(entropy, 0.5), sampler.accepted_token_mask)


def test_clamp_scores_forces_known_and_bans_specials():
    scores = torch.zeros(1, 3, 5)
    known = torch.tensor([[True, False, False]])
    ids = torch.tensor([[4, 0, 0]])
    banned = torch.tensor([True, False, False, False, False])
    out = clamp_scores(scores, known, ids, banned)
    assert out[0, 0].argmax() == 4 and torch.isinf(out[0, 0, :4]).all()
    assert torch.isinf(out[0, 1:, 0]).all() and torch.isfinite(out[0, 1:, 1:]).all()


def test_left_to_right_commit_takes_the_leftmost_free_slot_and_a_filler_ends_its_gap():
    null = 4
    known = torch.tensor([[True, False, False, True], [False, False, False, False]])
    known_ids = torch.tensor([[9, 0, 0, 8], [0, 0, 0, 0]])
    owner = torch.tensor([[-1, 0, 0, -1], [0, 0, 1, 1]])
    draft = torch.tensor([[7, 6, 5, 8], [null, 6, 5, 3]])
    new_known, new_ids = left_to_right_commit(draft, known, known_ids, owner, null)
    assert new_known.tolist() == [[True, True, False, True], [True, True, False, False]]
    assert new_ids[0].tolist() == [9, 6, 0, 8]
    assert new_ids[1, :2].tolist() == [null, null]  # gap 0 ended at its first slot; gap 1 is untouched
    without_filler, _ = left_to_right_commit(draft, known, known_ids, owner, None)
    assert without_filler[1].tolist() == [True, False, False, False]


def test_temperature_schedule_runs_from_t_max_to_t_min():
    s = Settings(max_passes=10, t_max=0.8, t_min=0.4)
    assert temperature_at(10, s) == pytest.approx(0.8)
    assert temperature_at(0, s) == pytest.approx(0.4)


def test_known_text_is_kept_and_every_gap_filled(engine):
    source = "import os\n\ndef f(x):\n    return <FILL:5>\n\nprint(<FILL:3>)\n"
    result = engine.fill(source, "python", Settings(**FAST))
    assert len(result.fills) == 2
    before, rest = source.split("<FILL:5>")
    middle, after = rest.split("<FILL:3>")
    assert result.text == before + result.fills[0] + middle + result.fills[1] + after
    assert all("<null>" not in f for f in result.fills)


def test_clamped_positions_never_change_in_any_pass(engine):
    result = engine.fill("a = 1\nb = <FILL:4>\nc = 3\n", "python", Settings(**FAST))
    first = result.trace[0]
    known = [i for i, s in enumerate(first.state) if s == "known"]
    assert known, "the canvas should hold known suffix tokens"
    for trace_pass in result.trace:
        assert [trace_pass.token_ids[i] for i in known] == [first.token_ids[i] for i in known]
        assert all(trace_pass.state[i] == "known" for i in known)


def test_trace_shape_and_final_pass_matches_the_fill(engine, tiny_loaded):
    result = engine.fill("x = <FILL:6>\n", "python", Settings(**FAST))
    canvas = tiny_loaded.canvas_length
    assert result.trace[0].step == 0
    assert [p.step for p in result.trace] == list(range(len(result.trace)))
    for p in result.trace:
        assert len(p.token_ids) == len(p.pieces) == len(p.state) == len(p.changed) == len(p.confidence) == len(p.entropy) == canvas
        assert set(p.state) <= STATES
    assert not any(result.trace[0].changed)
    assert len(result.trace) - 1 == result.candidates[0].passes <= 6
    last = result.trace[-1]
    slot_ids = [t for t, s in zip(last.token_ids, last.state) if s in ("accepted", "noise") and t != tiny_loaded.null_id]
    # the gap took over the space before it: its tokens start with that space, the fill gives it back; bytes that
    # form no character are left out of the fill
    assert tiny_loaded.tokenizer.decode(whole_characters(slot_ids, engine.raw)) == " " + result.fills[0]
    assert result.text == "x = " + result.fills[0] + "\n"


@pytest.mark.parametrize("text,leads", [
    ("x = <FILL>", ["", " "]),
    ("def f():\n    <FILL>\n", ["", " ", ""]),
    ("a\n<FILL>b", ["", "\n", ""]),
    ("\t<EDIT>y</EDIT>", ["", ""]),  # a tab never joins the next word's token
    ("a <EDIT>y</EDIT>", ["", " "]),
    ("<FILL> x", ["", ""]),
    ("x=<FILL>", ["", ""]),
])
def test_a_marker_takes_over_the_whitespace_character_before_it(text, leads):
    from dgemma_app.gaps import boundary_leads
    from dgemma_app.gaps import parse_markers

    assert boundary_leads(parse_markers(text)) == leads


def test_first_slot_starts_with_the_taken_over_character_and_the_text_stays_whole(engine, tiny_loaded):
    for seed in range(3):
        result = engine.fill("def f():\n    return <FILL:3>\n", "python", Settings(**FAST, seed=seed))
        first_slot = next(t for t, o in zip(result.trace[-1].token_ids, result.trace[-1].state) if o in ("accepted", "noise"))
        assert tiny_loaded.tokenizer.decode([first_slot]).startswith(" ")
        assert result.text == "def f():\n    return " + result.fills[0] + "\n"


def test_gaps_further_apart_than_a_canvas_use_several_windows(engine, tiny_loaded):
    filler = "\n".join(f"v{i} = {i}" for i in range(12))
    source = f"a = <FILL:4>\n{filler}\nb = <FILL:4>\n"
    result = engine.fill(source, "python", Settings(**FAST))
    assert result.stats.windows == 2
    assert sorted({p.window for p in result.trace}) == [0, 1]
    assert filler in result.text and len(result.fills) == 2


def test_a_long_gap_spans_windows(engine, tiny_loaded):
    result = engine.fill("<FILL:40>\n", "text", Settings(**FAST))
    assert result.stats.windows >= 3  # 40 slots on a 16-token canvas


def test_edit_strength_zero_returns_the_old_text(engine):
    source = "def f():\n    <EDIT>return 1</EDIT>\n"
    result = engine.fill(source, "python", Settings(edit_strength=0.0, **FAST))
    assert result.text == "def f():\n    return 1\n"
    assert result.fills == ["return 1"] and result.stats.passes == 0


def test_edit_seeds_the_canvas_with_old_tokens(engine, tiny_loaded):
    old = "return a + b"
    result = engine.fill(f"<EDIT>{old}</EDIT>", "text", Settings(edit_strength=0.0001, **FAST))
    start = result.trace[0]
    old_ids = tiny_loaded.tokenizer(old, add_special_tokens=False)["input_ids"]
    seeded = [t for t, s in zip(start.token_ids, start.state) if s == "seed"]
    assert seeded[: len(old_ids)] == old_ids


def test_candidates_are_all_returned_and_ranked(engine):
    result = engine.fill("def f(:\n    return <FILL:4>\n", "python", Settings(candidates=3, **FAST))
    assert len(result.candidates) == 3
    assert sorted(c.row for c in result.candidates) == [0, 1, 2]
    keys = [(c.report.new_errors, -c.confidence) for c in result.candidates]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert result.text == result.candidates[0].text
    assert result.report.errors_before >= 1  # the input was already broken
    assert all(c.rank_reason for c in result.candidates)


def test_same_seed_same_result_other_seed_differs(engine):
    source = "x = <FILL:8>\n"
    a = engine.fill(source, "python", Settings(seed=3, **FAST))
    b = engine.fill(source, "python", Settings(seed=3, **FAST))
    c = engine.fill(source, "python", Settings(seed=4, **FAST))
    assert a.text == b.text
    assert [p.token_ids for p in a.trace] == [p.token_ids for p in b.trace]
    assert [p.token_ids for p in a.trace] != [p.token_ids for p in c.trace]


@pytest.mark.parametrize("seed", range(4))
def test_left_to_right_commits_one_token_per_pass_until_the_filler(engine, seed):
    result = engine.fill("y = <FILL:5>\n", "python", Settings(left_to_right=True, max_passes=48, candidates=1, seed=seed))
    accepted = [p.accepted for p in result.trace[1:]]
    passes = result.candidates[0].passes
    assert passes == min(result.stats.tokens + 1, 5)  # tokens, then the filler that ends the gap (if any)
    assert accepted == list(range(1, passes)) + [5]


def test_long_input_is_cut_from_the_far_left_and_said_so(engine, tiny_loaded):
    head = "".join(f"line_{i} = {i}\n" for i in range(200))
    source = head + "z = <FILL:4>\nkeep_me = 1\n"
    result = engine.fill(source, "python", Settings(**FAST))
    assert any("left out" in note for note in result.notes)
    assert result.text.startswith(head) and result.text.endswith("keep_me = 1\n")
    first = result.trace[0]
    assert "keep" in "".join(pc for pc, s in zip(first.pieces, first.state) if s == "known")


def test_on_pass_streams_every_pass_and_cancel_stops(engine):
    seen = []
    result = engine.fill("q = <FILL:4>\n", "python", Settings(**FAST), on_pass=seen.append)
    assert [p.step for p in seen] == list(range(1, len(seen) + 1))
    assert len(seen) == result.stats.passes
    stop = threading.Event()
    stop.set()
    with pytest.raises(FillCancelled):
        engine.fill("q = <FILL:4>\n", "python", Settings(**FAST), cancel=stop)


def test_typed_special_token_names_stay_text(engine):
    result = engine.fill("s = '<eos><null>'\nt = <FILL:3>\n", "python", Settings(**FAST))
    assert result.text.startswith("s = '<eos><null>'\nt = ")


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(max_passes=0), "max passes"),
        (dict(entropy_bound=-1.0), "entropy bound"),
        (dict(t_max=0.2, t_min=0.4), "t_max"),
        (dict(edit_strength=1.5), "edit strength"),
        (dict(candidates=0), "candidates"),
        (dict(seed=float("nan")), "seed"),
    ],
)
def test_settings_out_of_range_are_named(engine, settings, message):
    with pytest.raises(SettingsError, match=message):
        engine.fill("x = <FILL>\n", "python", Settings(**settings))


def test_bad_markers_raise_before_model_work(engine):
    with pytest.raises(MarkerError):
        engine.fill("x = 1\n", "python", Settings(**FAST))


def test_json_contract(engine):
    result = engine.fill("x = <FILL:3>\ny = <FILL:3>\n", "python", Settings(candidates=2, **FAST))
    data = result.to_dict(with_trace=True)
    assert set(data) >= {"text", "fills", "language", "parses", "errors", "candidates", "stats", "trace"}
    assert set(data["stats"]) >= {"seconds", "passes", "tokens", "tokens_per_pass", "tokens_per_second"}
    assert len(data["candidates"]) == 2 and len(data["fills"]) == 2
    assert all(set(e) == {"line", "column", "kind", "in_fill"} for e in data["errors"])
    assert data["trace"][0]["step"] == 0


def test_every_gap_gets_at_least_one_token_even_when_the_model_prefers_the_filler(engine, tiny_loaded):
    null = tiny_loaded.null_id
    scores = torch.zeros(1, 2, tiny_loaded.model.config.text_config.vocab_size)
    scores[..., null] = 50.0  # a model that would put the filler everywhere
    banned = torch.zeros(scores.shape[-1], dtype=torch.bool)
    out = clamp_scores(scores, torch.tensor([[False, False]]), torch.zeros(1, 2, dtype=torch.long), banned, torch.tensor([[True, False]]), null)
    assert out[0, 0].argmax() != null and out[0, 1].argmax() == null
    for seed in range(3):
        result = engine.fill("a = <FILL>\nb = <FILL:2>\n", "python", Settings(seed=seed, **FAST))
        assert all(result.fills), result.fills


def test_a_prefix_every_candidate_shares_is_encoded_once(engine, tiny_loaded):
    model = tiny_loaded.model
    prefix = tiny_loaded.tokenizer("def f(a, b):\n    return a + b\n", add_special_tokens=False)["input_ids"]
    shared = shared_prefix_cache(model, prefix, 3)
    batched = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.no_grad():
        model.model.encoder(input_ids=torch.tensor([prefix] * 3), past_key_values=batched)
    for one, many in zip(shared.layers, batched.layers):
        assert one.keys.shape == many.keys.shape and torch.allclose(one.keys, many.keys, atol=1e-5)
        assert torch.allclose(one.values, many.values, atol=1e-5)

    batches = []
    hook = model.model.encoder.register_forward_hook(lambda m, a, kw, out: batches.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    try:
        result = engine.fill("x = 1\ny = <FILL:3>\n", "python", Settings(candidates=3, **FAST))
    finally:
        hook.remove()
    assert batches[0][0] == 1 and batches[1] == (3, 1)  # the prefix once, then each row's last prefix token
    assert len(result.candidates) == 3 and all(result.fills)


def test_exact_length_bans_the_filler_in_every_slot_of_a_sized_gap(engine, tiny_loaded):
    from dgemma_app.rows import build_rows
    from dgemma_app.gaps import parse_markers

    segments = parse_markers("a = <FILL:3>\nb = <FILL>\n")
    for exact, sized in ((True, [True] * 3), (False, [True, False, False])):
        (row,) = build_rows(segments, tiny_loaded, Settings(exact_length=exact, candidates=1, slot_budget=2))
        slots = [m for m, o in zip(row.must_fill, row.owner) if o >= 0]
        assert slots == sized + [True, False]  # the unsized gap keeps only its first slot off the filler
    result = engine.fill("a = <FILL:5>\n", "python", Settings(exact_length=True, left_to_right=True, candidates=1))
    assert result.stats.tokens == 5 and result.candidates[0].passes == 5


def test_a_model_configured_for_a_static_cache_still_fills_several_candidates(engine, tiny_loaded):
    gen = tiny_loaded.model.generation_config
    saved = gen.cache_implementation, gen.disable_compile
    gen.cache_implementation, gen.disable_compile = "static", True  # the library's own cache; no compile in a test
    try:
        result = engine.fill("x = 1\ny = <FILL:3>\n", "python", Settings(candidates=2, **FAST))
    finally:
        gen.cache_implementation, gen.disable_compile = saved
    assert len(result.candidates) == 2 and all(result.fills)


def test_settled_from_is_the_first_pass_of_the_final_unbroken_run_of_kept_tokens():
    drafts = [[5, 7, 1], [5, 8, 2], [5, 8, 3]]
    kept = [[True, True, False], [True, True, False], [False, False, False]]
    # 5 kept from the first pass on; 7 was kept and then replaced by 8; the third slot is final only at the end
    assert settled_from(drafts, kept) == [0, 1, 2]


@pytest.mark.parametrize("text", ["x = <FILL:8>\n", "def f(a):\n    <EDIT>return a + 1</EDIT>\n"])
def test_an_accepted_token_never_changes_and_accepted_counts_only_grow(engine, text):
    settings = Settings(**{**FAST, "max_passes": 12}, entropy_bound=0.3, t_max=0.8, t_min=0.3, stability_threshold=2)
    for candidate in engine.fill(text, "python", settings).candidates:
        trace = candidate.trace
        for before, after in zip(trace, trace[1:]):
            if after.window != before.window:
                continue
            assert after.accepted >= before.accepted
            for i, state in enumerate(before.state):
                if state == "accepted":
                    assert after.state[i] == "accepted" and after.token_ids[i] == before.token_ids[i]


def test_candidate_confidence_is_taken_where_each_token_was_accepted(engine):
    result = engine.fill("x = <FILL:6>\n", "python", Settings(**{**FAST, "candidates": 4}, entropy_bound=0.3, t_max=0.8, t_min=0.3))
    confidences = [c.confidence for c in result.candidates]
    assert all(0 < c <= 1 for c in confidences)
    assert len(set(confidences)) > 1 and max(confidences) < 0.5  # a random model is unsure; the last pass says ~1


def test_a_short_gap_gets_a_short_canvas_that_keeps_the_known_text(engine, tiny_loaded):
    """A canvas sized to the gap (slots + `context_after`, a multiple of 8): the model's 16 cut to 8 here, the
    known text in it clamped in every pass, the text around the gap unchanged, and the model's config as it was."""
    settings = Settings(**FAST, context_after=0, candidates=2)
    fill = engine.begin(FillRequest.parse("x = <FILL:3>\ny = 2\n", "python"), settings)
    assert fill.canvas == 8 < tiny_loaded.canvas_length
    assert engine.begin(FillRequest.parse("x = <FILL:3>\ny = 2\n", "python"), Settings(**FAST, context_after=8)).canvas == 16
    while fill.active:
        engine.step([fill])
    result = engine.finish(fill)
    assert result.text == "x = " + result.fills[0] + "\ny = 2\n"
    assert tiny_loaded.model.config.canvas_length == tiny_loaded.canvas_length
    for candidate in result.candidates:
        first = candidate.trace[0]
        known = [i for i, s in enumerate(first.state) if s == "known"]
        assert known and all(len(p.token_ids) == 8 for p in candidate.trace)
        assert all([p.token_ids[i] for i in known] == [first.token_ids[i] for i in known] for p in candidate.trace)


def test_a_short_canvas_fill_is_the_same_whatever_shares_its_call(engine):
    """Fills share a call only with the same canvas; sharing one changes no fill of its seed."""
    settings = [Settings(**FAST, context_after=0, seed=s) for s in (4, 5)]
    requests = [FillRequest.parse(t, "python") for t in ("x = <FILL:3>\ny = 2\n", "def f(a):\n    return <FILL:5>\n")]
    alone = engine.run(requests[0], settings[0])
    fills = [engine.begin(r, s) for r, s in zip(requests, settings)]
    assert {f.canvas for f in fills} == {8}
    while active := [f for f in fills if f.active]:
        engine.step(active)
    shared = engine.finish(fills[0])
    assert shared.text == alone.text and [p.token_ids for p in shared.trace] == [p.token_ids for p in alone.trace]
    with pytest.raises(ValueError, match="same canvas"):
        engine.step([engine.begin(requests[0], settings[0]), engine.begin(requests[0], Settings(**FAST))])
