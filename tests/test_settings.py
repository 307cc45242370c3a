"""Self-describing settings: validation, CLI flags, environment variables, the API signature and the export
all come from the fields' knob metadata, and the public names stay what they were."""
from __future__ import annotations

import argparse
import inspect
from dataclasses import asdict, dataclass

import pytest

from dgemma_app.backends.diffusion_gemma import DiffusionGemmaBackend, DiffusionGemmaSettings, store_defaults
from dgemma_app.settings import FillSettings, SettingsError, knob, settings_of
from dgemma_app.train.export import SamplerSettings
from dgemma_app.ui.api import fill_endpoint
from dgemma_app.wiring import add_sampler_args

FLAGS = ["--max-passes", "--entropy-bound", "--t-max", "--t-min", "--stability", "--confidence", "--filler-penalty", "--cache-weight", "--left-bias", "--seed", "--candidates",
         "--slot-budget", "--strength", "--left-to-right", "--exact-length", "--one-line", "--context-after"]
API = ["text", "language", "max_passes", "entropy_bound", "t_max", "t_min", "stability_threshold", "confidence_threshold", "filler_penalty", "cache_weight", "left_bias", "seed",
       "candidates", "slot_budget", "edit_strength", "left_to_right", "with_trace", "exact_length", "one_line", "context_after", "stream_passes"]


def sampler_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_sampler_args(parser)
    return parser


def test_cli_flags_are_derived_and_unchanged():
    options = [a.option_strings[0] for a in sampler_parser()._actions if a.option_strings and a.dest != "help"]
    assert options == FLAGS


def test_sampler_flags_also_come_from_the_environment_and_a_flag_wins(monkeypatch):
    monkeypatch.setenv("DGEMMA_MAX_PASSES", "7")
    monkeypatch.setenv("DGEMMA_LEFT_TO_RIGHT", "1")
    monkeypatch.setenv("DGEMMA_ONE_LINE", "0")
    args = sampler_parser().parse_args([])
    assert (args.max_passes, args.left_to_right, args.one_line, args.seed) == (7, True, False, None)
    assert sampler_parser().parse_args(["--max-passes", "9"]).max_passes == 9
    flags = sampler_parser().parse_args(["--no-left-to-right", "--one-line"])
    assert (flags.left_to_right, flags.one_line) == (False, True)


def test_api_signature_is_derived_with_the_same_names_in_the_same_order():
    endpoint = fill_endpoint(None)  # the signature does not touch the handlers
    params = inspect.signature(endpoint).parameters
    assert list(params) == API
    assert params["max_passes"].default is None and params["left_to_right"].default is False and params["one_line"].default is True
    assert "max_passes: denoising passes per window" in endpoint.__doc__ and "with_trace:" in endpoint.__doc__
    assert inspect.isgeneratorfunction(endpoint)


def test_validation_names_the_knob_and_makes_whole_numbers_ints():
    assert DiffusionGemmaSettings(max_passes=12.0).max_passes == 12
    with pytest.raises(SettingsError, match="stability threshold is 65; it must be between 0 and 64"):
        DiffusionGemmaSettings(stability_threshold=65)
    with pytest.raises(SettingsError, match="candidates is 1.5; it must be a whole number"):
        FillSettings(candidates=1.5)


def test_a_new_knob_is_one_field():
    @dataclass
    class Family(FillSettings):
        block_length: int = knob(32, low=1, high=1024, label="Block length", help="tokens unmasked per block")

    assert [s.name for s in settings_of(Family)][0] == "block_length"  # a family's knobs come first
    assert settings_of(Family)[0].flag == "--block-length"
    with pytest.raises(SettingsError, match="block length is 0"):
        Family(block_length=0)


def test_the_export_writes_what_the_loader_reads(tiny_loaded):
    tuned = SamplerSettings(max_denoising_steps=16, entropy_bound=16.0, t_max=0.3, t_min=0.1, confidence_threshold=0.05,
                            filler_penalty=2.0, cache_weight=0.3, left_bias=0.5)
    assert list(asdict(tuned)) == ["max_denoising_steps", "entropy_bound", "t_max", "t_min", "stability_threshold",
                                   "confidence_threshold", "filler_penalty", "cache_weight", "left_bias"]
    model = tiny_loaded.model
    saved = model.generation_config
    store_defaults(model, asdict(tuned), pad_token_id=0)
    try:
        read = DiffusionGemmaBackend.checkpoint_defaults(model)
    finally:
        model.generation_config = saved
        for key in ("filler_penalty", "cache_weight", "left_bias"):
            delattr(model.config, key)
    assert read == {"max_passes": 16, "entropy_bound": 16.0, "t_max": 0.3, "t_min": 0.1, "stability_threshold": 1,
                    "confidence_threshold": 0.05, "filler_penalty": 2.0, "cache_weight": 0.3, "left_bias": 0.5}


def test_filler_penalty_lowers_only_the_filler_in_free_gap_slots():
    import torch

    from dgemma_app.backends.canvas_maths import penalize_filler

    scores = torch.zeros(1, 3, 6)  # [B, C, V]
    slots = torch.tensor([[True, False, True]])
    out = penalize_filler(scores.clone(), slots, null_id=4, penalty=2.5)
    assert out[0, :, 4].tolist() == [-2.5, 0.0, -2.5]
    assert out[..., :4].abs().sum() == 0 and out[..., 5].abs().sum() == 0


def test_unset_overrides_keep_the_checkpoints_defaults():
    """A flag or API knob left empty (None) must not replace the checkpoint's tuned default with the library's."""
    tuned = {"max_passes": 16, "entropy_bound": 16.0}
    settings = DiffusionGemmaSettings.with_overrides(tuned, {"max_passes": None, "entropy_bound": None, "seed": 3})
    assert (settings.max_passes, settings.entropy_bound, settings.seed) == (16, 16.0, 3)
