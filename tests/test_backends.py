"""The seam between the engine and a model family, proven with the rule backend (no DiffusionGemma involved):
rows, windows, candidates, ranking, stats and the trace all come from the engine."""
from __future__ import annotations

import threading

import pytest

from dgemma_app.backends.base import FillCancelled, backend_for
from dgemma_app.backends.diffusion_gemma import DiffusionGemmaBackend, DiffusionGemmaSettings
from dgemma_app.backends.rule import RULE_TEXT, RuleBackend, rule_model
from dgemma_app.engine import Engine
from dgemma_app.results import Position
from dgemma_app.settings import FillSettings, SettingsError


@pytest.fixture(scope="module")
def rule_engine(tiny_loaded) -> Engine:
    return Engine(rule_model(tiny_loaded.tokenizer))  # no filler token: slot counts spread over the candidates


def test_backends_are_found_by_model_type(tiny_loaded, rule_engine):
    assert backend_for("diffusion_gemma") is DiffusionGemmaBackend and backend_for("rule") is RuleBackend
    assert backend_for("llama") is None
    assert isinstance(Engine(tiny_loaded).backend, DiffusionGemmaBackend)
    assert isinstance(rule_engine.backend, RuleBackend)


def test_the_rule_fills_every_slot_two_per_pass(rule_engine):
    result = rule_engine.fill("def f():\n    return <FILL:3>\n", "python", rule_engine.settings(candidates=1))
    assert result.fills == [RULE_TEXT * 3] and result.text == f"def f():\n    return {RULE_TEXT * 3}\n"
    assert result.stats.passes == 2 and result.stats.tokens == 3 and result.stats.tokens_per_pass == 1.5
    assert [p.step for p in result.trace] == [0, 1, 2]
    assert [p.accepted for p in result.trace] == [0, 2, 3]
    first = result.trace[0]
    assert first.state.count(Position.NOISE) == 3 and Position.KNOWN in first.state
    assert all(not c for c in first.changed) and any(result.trace[1].changed)


def test_left_to_right_commits_one_slot_per_pass(rule_engine):
    result = rule_engine.fill("x = <FILL:3>\n", "python", rule_engine.settings(candidates=1, left_to_right=True))
    assert result.stats.passes == 3 and [p.accepted for p in result.trace[1:]] == [1, 2, 3]


def test_a_long_gap_runs_window_after_window(rule_engine):
    result = rule_engine.fill("<FILL:40>", "text", rule_engine.settings(candidates=1))
    assert result.stats.windows == 3 and result.stats.passes == 8 + 8 + 4  # 16-token canvas, 2 slots per pass
    assert sorted({p.window for p in result.trace}) == [0, 1, 2] and result.fills == [RULE_TEXT * 40]


def test_candidates_spread_their_slot_counts_and_are_ranked(rule_engine):
    result = rule_engine.fill("def f(:\n    return <FILL>\n", "python", rule_engine.settings(candidates=2, slot_budget=4))
    assert sorted(c.slots for c in result.candidates) == [[2], [4]]
    assert result.text == result.candidates[0].text and all(c.rank_reason for c in result.candidates)


def test_passes_stream_and_cancel_stops(rule_engine):
    seen = []
    result = rule_engine.fill("x = <FILL:4>\n", "python", rule_engine.settings(candidates=1), on_pass=seen.append)
    assert [p.step for p in seen] == [1, 2] and seen[-1].token_ids == result.trace[-1].token_ids
    stop = threading.Event()
    stop.set()
    with pytest.raises(FillCancelled):
        rule_engine.fill("x = <FILL:4>\n", "python", rule_engine.settings(), cancel=stop)


def test_each_family_takes_its_own_settings(rule_engine, engine):
    assert type(rule_engine.settings(max_passes=3)) is FillSettings  # another family's knob is ignored
    assert isinstance(engine.settings(max_passes=3), DiffusionGemmaSettings) and engine.settings(max_passes=3).max_passes == 3
    with pytest.raises(SettingsError, match="another model family"):
        engine.fill("x = <FILL>\n", "python", FillSettings())
