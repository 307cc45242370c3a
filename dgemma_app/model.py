"""Loading checkpoints: the embedded default, a local folder, or a hub id in the local cache.

The checkpoint's `model_type` picks the backend (see `backends`), which names the transformers class to load
it with and reads its window sizes and sampler defaults.

Every failure becomes a `ModelLoadError` whose message is one sentence that says what to do, so the
CLI and the UI can show it without a traceback. Nothing here runs at import time.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .backends import diffusion_gemma, rule  # noqa: F401  (importing a family registers its backend)
from .backends.base import LoadedModel, backend_for, registered

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "dgemma-code-tiny"

# Special tokens of the models this project trains (ids fixed so the config defaults fit).
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<null>"]
NULL_TOKEN = "<null>"

MIN_TOKENIZER_SIZE = 64  # below this, transformers fell back to an empty default tokenizer
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class ModelLoadError(Exception):
    """A model could not be loaded; the message is meant for the user as it is."""


def tiny_config(
    vocab_size: int,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    num_experts: int = 2,
    top_k_experts: int = 1,
    expert_size: int = 64,
    intermediate_size: int = 128,
    canvas_length: int = 16,
    max_positions: int = 1024,
):
    """A small `DiffusionGemmaConfig` (text only, a minimal vision tower) for training and tests."""
    from transformers import DiffusionGemmaConfig

    layer_types = ["sliding_attention"] * (num_layers - 1) + ["full_attention"]
    text_config = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        num_experts=num_experts,
        top_k_experts=top_k_experts,
        moe_intermediate_size=expert_size,
        max_position_embeddings=max_positions,
        sliding_window=256,
        layer_types=layer_types,
        global_head_dim=hidden_size // num_heads,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    vision_config = dict(
        model_type="gemma4_vision",
        num_hidden_layers=1,
        hidden_size=32,
        intermediate_size=32,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=32,
    )
    return DiffusionGemmaConfig(text_config=text_config, vision_config=vision_config, canvas_length=canvas_length)


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or os.sep in source.strip("/").split("/", 1)[-1] or Path(source).exists()


def resolve_dtype(name: str, device_map: str) -> torch.dtype:
    """`auto` means bf16 on a GPU and fp32 on a CPU."""
    if name == "auto":
        on_gpu = device_map != "cpu" and torch.cuda.is_available()
        return torch.bfloat16 if on_gpu else torch.float32
    if name not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {name!r}; choose one of auto, {', '.join(DTYPES)}.")
    return DTYPES[name]


def load_model(
    source: str | Path | None = None,
    device_map: str = "auto",
    dtype: str = "auto",
    max_memory: dict | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a checkpoint of a family with a backend, and its tokenizer, never touching the network."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI's stderr is for one-line messages

    source = str(source or DEFAULT_MODEL_DIR)
    local = Path(source).expanduser()
    if local.is_dir():
        where = str(local)
        if not (local / "config.json").is_file():
            raise ModelLoadError(f"Model folder {where} has no config.json; point --model at a saved checkpoint folder.")
    elif _looks_like_path(source) or source.count("/") != 1:
        raise ModelLoadError(f"Model folder {source} does not exist; pass an existing folder or a hub id like owner/name.")
    else:
        where = source
    if device_map == "auto" and not torch.cuda.is_available():
        device_map = "cpu"
    torch_dtype = resolve_dtype(dtype, device_map)
    common = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(where, **common)
    except (OSError, ValueError) as err:
        if where == source and not local.is_dir():
            raise ModelLoadError(
                f"Model {source} is not in the local Hugging Face cache; download it once with "
                f"`hf download {source}` (runs here are offline)."
            ) from err
        raise ModelLoadError(f"Model folder {where} has an unreadable config.json ({_first_line(err)}).") from err
    model_type = getattr(config, "model_type", None) or "unknown"
    backend = backend_for(model_type)
    if backend is None or not backend.model_class:
        loadable = [b for b in registered() if b.model_class]
        raise ModelLoadError(
            f"Model {where} is a {model_type!r} model, not {' or '.join(b.title for b in loadable)}; "
            f"pick a {' or '.join(b.model_class for b in loadable)} checkpoint."
        )
    hf_logging.set_verbosity_error()  # our sentence replaces transformers' load report
    try:
        model, info = getattr(transformers, backend.model_class).from_pretrained(
            where,
            dtype=torch_dtype,
            device_map=device_map,
            max_memory=max_memory,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **common,
        )
    except torch.OutOfMemoryError as err:
        raise ModelLoadError(
            f"Out of memory while loading {where}; use --dtype bf16, a quantised checkpoint, or spread it with "
            "--device-map auto --max-memory."
        ) from err
    except Exception as err:  # corrupt or mismatched weights surface as many exception types
        raise ModelLoadError(f"Weights in {where} could not be loaded ({_first_line(err)}); re-save or re-download them.") from err
    bad = sorted(info["missing_keys"]) + sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in info["mismatched_keys"])
    if bad:
        raise ModelLoadError(
            f"Weights in {where} do not match its config.json ({len(bad)} tensors missing or of another shape, "
            f"e.g. {bad[0]}); re-save or re-download the checkpoint."
        )
    model.eval()
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **common)
    except Exception as err:
        raise ModelLoadError(f"Tokenizer in {where} could not be loaded ({_first_line(err)}).") from err
    if len(tokenizer) < MIN_TOKENIZER_SIZE:
        raise ModelLoadError(f"Model {where} has no usable tokenizer ({len(tokenizer)} tokens); save tokenizer.json beside the weights.")
    canvas_length, max_context = backend.window_sizes(model)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        source=where,
        model_type=model_type,
        canvas_length=canvas_length,
        max_context=max_context,
        null_id=_token_id(tokenizer, NULL_TOKEN),
        banned_ids=sorted({i for i in tokenizer.all_special_ids if i is not None} - {_token_id(tokenizer, NULL_TOKEN)}),
        defaults=backend.checkpoint_defaults(model),
        device=str(next(model.parameters()).device),
    )


def _token_id(tokenizer, token: str) -> int | None:
    """The id of `token` when the vocabulary has it as a whole token."""
    vocab = tokenizer.get_vocab()
    return vocab.get(token)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
