"""The service under load, as pure rules: fewer candidates for a fill left at the default, and coalesced updates."""
from __future__ import annotations

from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings as Settings
from dgemma_app.ui.service import BUSY, HEARTBEAT, QUIET, under_load, update_interval


def test_a_busy_service_fills_a_default_fill_with_one_candidate_and_says_so():
    defaults = Settings(candidates=2)
    assert under_load(Settings(candidates=2), defaults, BUSY - 1) == (Settings(candidates=2), None)
    settings, note = under_load(Settings(candidates=2, seed=5), defaults, BUSY)
    assert settings == Settings(candidates=1, seed=5) and f"({BUSY} fills in line)" in note and "1 candidate instead of 2" in note
    assert under_load(Settings(candidates=4), defaults, BUSY + 20) == (Settings(candidates=4), None)  # asked for: kept


def test_updates_coalesce_in_proportion_to_the_load_up_to_the_heartbeat():
    assert update_interval(1, 0.1) == update_interval(QUIET, 0.1) == 0.1
    assert update_interval(2 * QUIET, 0.1) == 0.2 and update_interval(1000, 0.1) == HEARTBEAT
    assert update_interval(1000, 0.0) == 0.0  # every pass, when asked
