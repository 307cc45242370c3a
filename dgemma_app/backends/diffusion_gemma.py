"""DiffusionGemma (uniform-state block diffusion): the library's own `generate` with a logits processor.

Known canvas positions are clamped by the processor (one possible token: entropy 0, always accepted), gap
slots start as uniform noise, the library's EntropyBoundSampler accepts the lowest-entropy predictions and
re-noises the rest, and its stable-and-confident rule stops early. The processor also records every pass.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
    DiffusionGemmaGenerationConfig,
    EntropyBoundSampler,
    EntropyBoundSamplerConfig,
    StableAndConfidentStoppingCriteria,
)

from ..settings import FillSettings, SettingsError, knob, settings_of
from .base import Cancel, Denoised, FillCancelled, LoadedModel, PassRecord, Stream, WindowBatch, register
from .canvas_maths import (
    clamp_scores, end_at_breaks, hold_line_breaks, left_to_right_commit, ordered_accept, penalize_filler, restrict_leads,
)
from .cache_prior import CachePrior, mix_prior

SAMPLER_KEYS = ("entropy_bound",)  # generation_config.json keeps these inside `sampler_config`
PROCESSOR_KEYS = ("filler_penalty", "cache_weight", "left_bias")  # applied by our processor, not by `generate`: kept in config.json, whose
# extra keys the library keeps (its generation config refuses unknown keys)


@dataclass
class DiffusionGemmaSettings(FillSettings):
    """DiffusionGemma's generation knobs (library defaults) plus the engine's."""

    max_passes: int = knob(
        48, low=1, high=1024, label="Max passes", slider=(1, 256, 1), generation="max_denoising_steps",
        help="denoising passes per window at most; stop after this many",
    )
    entropy_bound: float = knob(
        0.1, low=1e-6, high=1000.0, label="Entropy bound", slider=(0.01, 32, 0.01), generation="entropy_bound",
        help="summed entropy the sampler may accept per pass: higher accepts more tokens per pass, faster, riskier",
    )
    t_max: float = knob(0.8, low=1e-3, high=10.0, label="t_max", slider=(0.05, 2, 0.05), generation="t_max", help="temperature at the first pass")
    t_min: float = knob(0.4, low=1e-3, high=10.0, label="t_min", slider=(0.05, 2, 0.05), generation="t_min", help="temperature at the last pass")
    stability_threshold: int = knob(
        1, low=0, high=64, label="Stability", name="stability threshold", flag="--stability", slider=(0, 16, 1),
        generation="stability_threshold", help="passes the draft must stay unchanged to stop early",
    )
    confidence_threshold: float = knob(
        0.005, low=1e-9, high=100.0, label="Confidence threshold", flag="--confidence", generation="confidence_threshold",
        help="stop early once the stable draft's entropy is below this",
    )

    filler_penalty: float = knob(
        0.0, low=0.0, high=100.0, label="Filler penalty", slider=(0, 10, 0.1), generation="filler_penalty",
        help="subtracted from the <null> filler's logit in gap slots: higher writes longer fills",
    )
    cache_weight: float = knob(
        0.0, low=0.0, high=1.0, label="Cache prior", slider=(0, 1, 0.05), generation="cache_weight",
        help="weight of the text's own tokens (how often each follows the one before) mixed into the gap's guesses",
    )
    left_bias: float = knob(
        0.0, low=0.0, high=100.0, label="Left-to-right lean", slider=(0, 2, 0.05), generation="left_bias",
        help="added to a gap slot's entropy per free slot before it: higher settles gaps more from the left",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.t_max <= self.t_min:
            raise SettingsError(f"t_max ({self.t_max}) must be above t_min ({self.t_min}).")


def generation_values(settings: DiffusionGemmaSettings) -> dict[str, Any]:
    """The settings under their generation_config.json names."""
    return {s.knob.generation: s.kind(getattr(settings, s.name)) for s in settings_of(type(settings)) if s.knob.generation}


def generation_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """generation_config.json names -> the keyword arguments of `generate` / `DiffusionGemmaGenerationConfig`."""
    rest = {k: v for k, v in values.items() if k not in SAMPLER_KEYS + PROCESSOR_KEYS}
    return {**rest, "sampler_config": EntropyBoundSamplerConfig(**{k: values[k] for k in SAMPLER_KEYS})}


def generation_config(values: dict[str, Any], **special_ids: int) -> DiffusionGemmaGenerationConfig:
    """A generation_config.json for an exported checkpoint."""
    return DiffusionGemmaGenerationConfig(**generation_kwargs(values), **special_ids)


def store_defaults(model: Any, values: dict[str, Any], **special_ids: int) -> None:
    """Make `values` (generation_config.json names) the checkpoint's decoding defaults when `model` is saved."""
    model.generation_config = generation_config(values, **special_ids)
    for key in PROCESSOR_KEYS:
        setattr(model.config, key, values[key])


# ----------------------------------------------------------------------------- the library's schedule, the prefix cache


def temperature_at(step: torch.Tensor | int, settings: DiffusionGemmaSettings) -> torch.Tensor | float:
    """The library's linear schedule: `step` counts the passes *remaining*, max_passes..1."""
    return settings.t_min + (settings.t_max - settings.t_min) * (step / settings.max_passes)


def shared_prefix_cache(model, prefix: list[int], batch: int) -> DynamicCache:
    """The encoder's KV cache of `prefix`, computed once and copied to `batch` rows.

    Candidates differ only in their canvases, so in the first window every row has the same prefix and a
    batched encoder would repeat the same work once per row."""
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.no_grad():
        model.model.encoder(input_ids=torch.tensor([prefix], device=model.device), past_key_values=cache)  # [1, P]
    cache.batch_repeat_interleave(batch)  # [B, heads, P, head_dim] per layer
    return cache


# ----------------------------------------------------------------------------- the hook


@dataclass
class _Clamp:
    """The window's constraints as device tensors, all [B, C]."""

    known: torch.Tensor  # bool
    known_ids: torch.Tensor  # the token a known position is clamped to
    owner: torch.Tensor  # marker index of a slot, -1 elsewhere
    must_fill: torch.Tensor  # bool: never the filler
    leads: list[tuple[int, int, torch.Tensor]]  # (row, position, [V] bool: tokens that start as the slot must)
    line_end: torch.Tensor  # bool: slot of a gap that ends a line (`hold_line_breaks`)
    stoppable: torch.Tensor  # bool: a line-end slot whose accepted break ends its gap (not one that must hold a token)
    no_break: torch.Tensor  # bool: a line-end slot that must hold a token and may not be a break


class _PassRecorder(LogitsProcessor):
    """Clamps known positions and records every pass; runs first in the library's processor list.

    It sees the raw scores, so it applies the same temperature the library will apply next to compute
    exactly the entropies the sampler and the stopping rule will see."""

    def __init__(self, clamp: _Clamp, banned: torch.Tensor, null_id: int | None, settings: DiffusionGemmaSettings,
                 on_pass: Callable[[PassRecord], None] | None, cancel: Cancel | None, breaks: tuple[torch.Tensor, torch.Tensor],
                 prior: CachePrior | None):
        self.clamp, self.banned, self.null_id, self.breaks, self.prior = clamp, banned, null_id, breaks, prior
        self.settings, self.on_pass, self.cancel = settings, on_pass, cancel
        self.stopper = StableAndConfidentStoppingCriteria(settings.stability_threshold, settings.confidence_threshold)
        self.finished = torch.zeros(clamp.known.shape[0], dtype=torch.bool)  # [B]
        self.passes: list[PassRecord] = []
        self.draft: torch.Tensor | None = None  # [B, C] the last pass's draft
        self.accepted: torch.Tensor | None = None  # [B, C] what this pass accepts (`StreamSampler` keeps to it)

    def __call__(self, input_ids, scores, cur_step):
        if self.cancel is not None and self.cancel.is_set():
            raise FillCancelled("The fill was cancelled.")
        c = self.clamp
        scores = clamp_scores(scores, c.known, c.known_ids, self.banned, c.must_fill, self.null_id)
        scores = restrict_leads(penalize_filler(scores, ~c.known & (c.owner >= 0), self.null_id, self.settings.filler_penalty), c.leads)
        if c.line_end.any():
            scores = hold_line_breaks(scores, c.line_end & ~c.known, c.no_break, self.null_id, *self.breaks)
        if self.prior is not None:
            prior = self.prior.at(c.known, c.known_ids, self.draft)  # [B, C, V]
            scores = mix_prior(scores, prior, ~c.known & (c.owner >= 0), self.settings.cache_weight)
        scaled = scores / temperature_at(cur_step, self.settings)
        log_probs = torch.log_softmax(scaled, dim=-1)  # [B, C, V]
        top_log_prob, draft = log_probs.max(dim=-1)  # [B, C]
        entropy = -(log_probs.exp() * log_probs.nan_to_num(neginf=0.0)).sum(-1)  # [B, C]
        if self.settings.left_to_right:
            c.known, c.known_ids = left_to_right_commit(draft, c.known, c.known_ids, c.owner, self.null_id)
            # free slots get a flat distribution: nothing is drafted there before its turn
            scores = clamp_scores(torch.zeros_like(scores), c.known, c.known_ids, self.banned)
            scaled = scores / temperature_at(cur_step, self.settings)
            accepted = c.known
        else:
            accepted = ordered_accept(entropy, ~c.known, self.settings.left_bias, self.settings.entropy_bound)
        stop = c.stoppable & accepted & self.breaks[0][draft]  # [B, C]
        if stop.any():  # those slots and the rest of their gaps become the filler, from this pass on
            ended = end_at_breaks(stop, c.owner)
            c.known, c.known_ids = c.known | ended, c.known_ids.masked_fill(ended, self.null_id)
            scores = clamp_scores(scores, c.known, c.known_ids, self.banned)
            scaled = scores / temperature_at(cur_step, self.settings)
            draft, top_log_prob, entropy = draft.masked_fill(ended, self.null_id), top_log_prob.masked_fill(ended, 0.0), entropy.masked_fill(ended, 0.0)
            accepted = c.known if self.settings.left_to_right else ordered_accept(entropy, ~c.known, self.settings.left_bias, self.settings.entropy_bound)
        stopped = self.stopper(draft, scaled)
        # one device-to-host copy per pass: ids < 2**24 are exact in float32
        host = torch.stack([draft.float(), top_log_prob.exp().float(), entropy.float(), accepted.float(), stopped[:, None].expand_as(draft).float()]).cpu()
        record = PassRecord(
            draft=host[0].long().tolist(),
            confidence=host[1].tolist(),
            entropy=host[2].tolist(),
            accepted=host[3].bool().tolist(),
            active=(~self.finished).tolist(),
        )
        self.draft, self.accepted = draft, accepted
        self.finished = self.finished | host[4, :, 0].bool()
        self.passes.append(record)
        if self.on_pass is not None:
            self.on_pass(record)
        return scores


# ----------------------------------------------------------------------------- noise per fill


def stream_generators(streams: list[Stream], device: torch.device, vocab: int, canvas: int) -> list[torch.Generator]:
    """Each stream's generator on `device`, where the library draws, as it stands after the starting noise.

    Before batching a fill seeded torch's global generator, drew its starting noise on the CPU, and the library
    drew the rest from the same seeded state on the device; this replays that sequence per fill."""
    generators = []
    for stream in streams:
        generator = torch.Generator(device).manual_seed(stream.seed)
        if generator.device.type == "cpu":  # one generator: step past the starting noise (`start_noise`)
            torch.randint(0, vocab, (stream.rows, canvas), generator=generator)
        generators.append(generator)
    return generators


def start_noise(streams: list[Stream], vocab: int, canvas: int) -> torch.Tensor:
    """Uniform noise for every row, each stream from a CPU generator seeded with its seed."""
    return torch.cat([torch.randint(0, vocab, (s.rows, canvas), generator=torch.Generator().manual_seed(s.seed)) for s in streams])  # [B, C]


class StreamSampler(EntropyBoundSampler):
    """The library's entropy-bound sampler, drawing each fill's samples and re-noise from that fill's generator.

    The library samples the denoiser's canvas with torch's global generator before calling `accept_canvas`;
    this redraws it from the same processed logits per stream (the same op, so a fill alone draws what it drew
    before), and the library's own draw is left unused."""

    def __init__(self, config: EntropyBoundSamplerConfig, canvas_length: int, vocab_size: int,
                 sizes: list[int], generators: list[torch.Generator], order: _PassRecorder | None = None):
        super().__init__(config, canvas_length, vocab_size, 0)
        self.sizes, self.generators, self.order = sizes, generators, order

    def initialize_canvas(self, batch_size: int, device: torch.device) -> torch.LongTensor:
        return torch.cat([torch.randint(0, self.vocab_size, (n, self.canvas_length), generator=g, device=device)
                          for n, g in zip(self.sizes, self.generators)])  # [B, C]

    def accept_canvas(self, current_canvas, denoiser_canvas, logits, cur_step):
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)  # [B, C, V], as the library computes it
        own = [torch.multinomial(p.reshape(-1, self.vocab_size), 1, generator=g).view(p.shape[:2])
               for p, g in zip(probs.split(self.sizes), self.generators)]
        if self.order is None:
            return super().accept_canvas(current_canvas, torch.cat(own), logits, cur_step)
        self.accepted_token_mask = self.order.accepted  # the recorder's order (`left_bias`), not the library's sort
        return torch.where(self.accepted_token_mask, torch.cat(own), current_canvas)


@contextmanager
def sampling_with(model, sampler: EntropyBoundSampler) -> Iterator[None]:
    """`model.generate` uses `sampler` for the duration (the library builds its own in `_prepare_sampler`)."""
    model._prepare_sampler = lambda generation_config: sampler
    try:
        yield
    finally:
        del model._prepare_sampler


@contextmanager
def canvas_of(model, length: int) -> Iterator[None]:
    """`model.generate` denoises a canvas of `length` tokens for the duration: the library sizes its canvas, its
    positions and its decoder mask from `config.canvas_length`, and the decoder itself takes any length. Callers
    hold the engine's lock, so no other call sees the change."""
    config, full = model.config, model.config.canvas_length
    config.canvas_length = length
    try:
        yield
    finally:
        config.canvas_length = full


# ----------------------------------------------------------------------------- the backend


@register
class DiffusionGemmaBackend:
    """Denoises a window batch with `DiffusionGemmaForBlockDiffusion.generate`."""

    model_type = "diffusion_gemma"
    title = "DiffusionGemma"
    model_class = "DiffusionGemmaForBlockDiffusion"
    settings = DiffusionGemmaSettings

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.model = loaded.model
        self.vocab = loaded.model.config.text_config.vocab_size
        self.banned = torch.zeros(self.vocab, dtype=torch.bool)  # [V]
        self.banned[[i for i in loaded.banned_ids if i < self.vocab]] = True
        self.device = next(loaded.model.parameters()).device
        self._texts: list[str] | None = None  # every token's text, decoded on first use
        self._starts: dict[str, torch.Tensor] = {}  # lead text -> [V] bool
        self._breaks: tuple[torch.Tensor, torch.Tensor] | None = None  # see `line_breaks`

    def tokens_starting_with(self, lead: str) -> torch.Tensor:
        """[V] bool: the tokens that can open a fill after `lead` (decoding the vocabulary once per lead): they start
        with it, and after a space go on with more than whitespace (byte-level BPE joins a space to the word after
        it), so the fill is never just the character given back."""
        if lead not in self._starts:
            opens = [t.startswith(lead) and (lead != " " or t[1:2].strip() != "") for t in self.token_texts()]
            self._starts[lead] = torch.tensor(opens) & ~self.banned
        return self._starts[lead]

    def line_breaks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[V] bool twice: tokens that start with a line break, and tokens with one after some text."""
        if self._breaks is None:
            texts = self.token_texts()
            self._breaks = (torch.tensor([t.startswith("\n") for t in texts]), torch.tensor(["\n" in t[1:] and not t.startswith("\n") for t in texts]))
        return self._breaks

    def token_texts(self) -> list[str]:
        """Every token's text, decoded on first use."""
        if self._texts is None:
            self._texts = self.loaded.tokenizer.batch_decode([[i] for i in range(self.vocab)])
        return self._texts

    @staticmethod
    def checkpoint_defaults(model: Any) -> dict[str, Any]:
        gen = model.generation_config
        found = {}
        for s in settings_of(DiffusionGemmaSettings):
            key = s.knob.generation
            if key:
                source = gen.sampler_config if key in SAMPLER_KEYS else model.config if key in PROCESSOR_KEYS else gen
                found[s.name] = getattr(source, key, None)
        return {k: v for k, v in found.items() if v is not None}

    @staticmethod
    def window_sizes(model: Any) -> tuple[int, int]:
        return int(model.config.canvas_length), int(model.config.text_config.max_position_embeddings)

    def start(self, batch: WindowBatch, settings: DiffusionGemmaSettings) -> list[list[int]]:
        """Uniform noise over the vocabulary, as the library's own starting canvas, seeded per stream."""
        initial = torch.tensor(batch.initial)  # [B, C], -1 = noise
        noise = start_noise(batch.streams, self.vocab, initial.shape[1])
        return torch.where(initial < 0, noise, initial).tolist()

    def denoise(self, batch: WindowBatch, start: list[list[int]], settings: DiffusionGemmaSettings,
                on_pass: Callable[[PassRecord], None] | None, cancel: Cancel | None) -> Denoised:
        loaded, device, canvas = self.loaded, self.device, len(start[0])  # the window's canvas: at most the model's
        prefixes, pad = batch.prefixes, loaded.pad_id
        width = max(len(p) for p in prefixes)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prefixes])  # [B, P] left-padded
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prefixes])  # [B, P]
        known = torch.tensor(batch.known)  # [B, C]
        start_canvas = torch.tensor(start)  # [B, C]
        prior = CachePrior.of(input_ids, attention, start_canvas, known, loaded.null_id, self.vocab) if settings.cache_weight > 0 else None
        cache = None
        own_cache = self.model.generation_config.cache_implementation is None  # else generate builds its own (static) cache
        if own_cache and len(prefixes) > 1 and width > 1 and all(p == prefixes[0] for p in prefixes):
            # all but the last prefix token go through the encoder once; generate encodes that last one per row
            cache = shared_prefix_cache(self.model, prefixes[0][:-1], len(prefixes))
            input_ids = input_ids[:, -1:]  # [B, 1]
        if settings.left_to_right:  # at most one pass per free slot; it stops on the pass that leaves none free
            settings = replace(settings, max_passes=int((~known).sum(-1).max()), stability_threshold=0)
        leads = [(b, i, self.tokens_starting_with(t).to(device)) for b, row in enumerate(batch.lead)
                 for i, t in enumerate(row) if t and not batch.known[b][i]]
        must_fill = torch.tensor(batch.must_fill)  # [B, C]
        line_end = torch.tensor(batch.line_end)  # [B, C]: the engine sets none for a model without a filler
        opens_line = torch.tensor([[t.startswith("\n") for t in row] for row in batch.lead])  # [B, C]: its break is the text's
        clamp = _Clamp(known.to(device), start_canvas.to(device), torch.tensor(batch.owner, device=device), must_fill.to(device),
                       leads, line_end.to(device), (line_end & ~must_fill).to(device), (line_end & must_fill & ~opens_line).to(device))
        breaks = tuple(t.to(device) for t in self.line_breaks())
        recorder = _PassRecorder(clamp, self.banned.to(device), loaded.null_id, settings, on_pass, cancel, breaks, prior)
        kwargs = generation_kwargs(generation_values(settings))
        generators = stream_generators(batch.streams, device, self.vocab, canvas)
        order = recorder if settings.left_bias > 0 else None
        sampler = StreamSampler(kwargs["sampler_config"], canvas, self.vocab, [s.rows for s in batch.streams], generators, order)
        with sampling_with(self.model, sampler), canvas_of(self.model, canvas):
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                past_key_values=cache,
                decoder_input_ids=start_canvas.to(device),
                max_new_tokens=canvas,
                logits_processor=LogitsProcessorList([recorder]),
                **kwargs,
            )
        final = out.sequences[:, -canvas:]  # [B, C]
        if clamp.stoppable.any():  # the library keeps a sampled token, not always the processor's draft: a break it sampled ends the gap too
            final = final.masked_fill(end_at_breaks(clamp.stoppable & breaks[0][final], clamp.owner), loaded.null_id)
        return Denoised(final.cpu().tolist(), recorder.passes)
