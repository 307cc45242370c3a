"""Loading checkpoints: the tiny model by folder and through a real Hugging Face cache layout, and
every way loading can fail ending in one sentence (in-process and through the CLI).

The same `load_model` path loads the embedded default, a local folder and the real
`google/diffusiongemma-26B-A4B-it`; only the source string differs. The hub-id cases run in a
subprocess because huggingface_hub reads HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE at import time,
which is also how an operator sets them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dgemma_app import wiring
from dgemma_app.engine import Engine
from dgemma_app.model import ModelLoadError, load_model

ROOT = Path(__file__).resolve().parent.parent
HUB_ID = "dgemma-tests/tiny-diffusiongemma"


# ----------------------------------------------------------------------------- helpers


def one_sentence(message: str) -> None:
    """What every load failure must look like: one line, a full stop, no traceback."""
    assert message and "\n" not in message, message
    assert message.rstrip().endswith("."), message
    assert "Traceback" not in message
    assert len(message) < 400, message


def expect_load_error(source, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(source, device_map="cpu", **kwargs)
    message = str(info.value)
    one_sentence(message)
    return message


def make_hub_cache(hub: Path, repo_id: str, checkpoint: Path) -> str:
    """Lay `checkpoint` out the way `hf download` does: blobs by hash, snapshot symlinks, refs/main."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    revision = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / revision
    blobs = repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for item in sorted(checkpoint.iterdir()):
        data = item.read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / item.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return revision


def subprocess_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGEMMA_", "HF_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- loading that works


def test_folder_loads_with_the_engine_contract(tiny_loaded, tiny_model_dir):
    loaded = tiny_loaded
    assert loaded.source == str(tiny_model_dir)
    assert type(loaded.model).__name__ == "DiffusionGemmaForBlockDiffusion"
    assert loaded.canvas_length == 16 and loaded.max_context == 256
    assert loaded.device == "cpu"
    assert not loaded.model.training  # eval mode: no dropout in the demo
    assert loaded.null_id is None or loaded.null_id not in loaded.banned_ids
    assert loaded.banned_ids and all(isinstance(i, int) for i in loaded.banned_ids)


def test_dtype_names_map_to_torch_dtypes(tiny_model_dir):
    import torch

    assert load_model(tiny_model_dir, device_map="cpu", dtype="bf16").model.dtype == torch.bfloat16
    # `auto` with device_map cpu is fp32: bf16 matmuls are slow on most CPUs.
    assert load_model(tiny_model_dir, device_map="cpu", dtype="auto").model.dtype == torch.float32


HUB_SCRIPT = r"""
import json, os, sys
from pathlib import Path
from dgemma_app.model import load_model, ModelLoadError
out = {}
loaded = load_model(sys.argv[1], device_map="cpu")
out["source"] = loaded.source
out["canvas"] = loaded.canvas_length
out["vocab"] = len(loaded.tokenizer)
out["model_vocab"] = loaded.model.config.text_config.vocab_size
for name in ("missing", "remote_default", "remote_trusted"):
    source = {"missing": "dgemma-tests/not-downloaded"}.get(name, os.environ.get("REMOTE_DIR"))
    try:
        load_model(source, device_map="cpu", trust_remote_code=(name == "remote_trusted"))
        out[name] = "loaded"
    except ModelLoadError as err:
        out[name] = str(err)
    out[name + "_ran_code"] = Path(os.environ["SENTINEL"]).exists()
print(json.dumps(out))
"""

REMOTE_CODE = """
import os, pathlib
pathlib.Path(os.environ["SENTINEL"]).write_text("remote code ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil_remote"
"""


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("gpt2")
    config = GPT2Config(n_layer=1, n_embd=8, n_head=1, vocab_size=50, n_positions=16, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def subprocesses(tmp_path_factory, tiny_model_dir, gpt2_dir):
    """The two clean-process checks, started together (each pays the torch import once):
    loading by hub id from an offline cache, and the CLI failing to load a wrong architecture."""
    tmp_path = tmp_path_factory.mktemp("hub")
    home = tmp_path / "hf"
    make_hub_cache(home / "hub", HUB_ID, tiny_model_dir)
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "evil_remote", "auto_map": {"AutoConfig": "evil.EvilConfig"}}))
    (remote / "evil.py").write_text(REMOTE_CODE)
    env = subprocess_env(
        HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"), HF_HUB_OFFLINE="1",
        REMOTE_DIR=str(remote), SENTINEL=str(tmp_path / "sentinel"),
    )
    source = tmp_path / "a.py"
    source.write_text("x = <FILL>\n")
    started = {
        "hub": subprocess.Popen([sys.executable, "-c", HUB_SCRIPT, HUB_ID], cwd=tmp_path, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        # the model from DGEMMA_MODEL: the environment path of the CLI too
        "cli": subprocess.Popen([sys.executable, "-m", "dgemma_app", "fill", str(source)], cwd=ROOT,
                                env=subprocess_env(DGEMMA_MODEL=str(gpt2_dir)), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    return {name: (proc, *proc.communicate(timeout=180)) for name, proc in started.items()}


@pytest.mark.slow
def test_hub_id_from_offline_cache_layout_and_remote_code_stays_off(subprocesses):
    """By hub id from a `hf download`-shaped cache with HF_HUB_OFFLINE=1, in a clean process."""
    proc, stdout, stderr = subprocesses["hub"]
    assert proc.returncode == 0, stderr[-3000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    # Loaded from the snapshot folder the refs/main revision points at.
    assert out["source"] == HUB_ID and out["canvas"] == 16
    assert out["vocab"] == out["model_vocab"]  # the checkpoint's own tokenizer, not a fallback
    # A hub id that is not in the cache: one sentence telling how to get it, no network attempt.
    one_sentence(out["missing"])
    assert "not in the local Hugging Face cache" in out["missing"] and "hf download dgemma-tests/not-downloaded" in out["missing"]
    # trust_remote_code off by default: the checkpoint's Python never runs.
    one_sentence(out["remote_default"])
    assert out["remote_default_ran_code"] is False
    # Only when the operator asks does it run (and the model is still refused: not DiffusionGemma).
    assert out["remote_trusted_ran_code"] is True
    assert "'evil_remote' model, not DiffusionGemma" in out["remote_trusted"]


@pytest.mark.slow
def test_cli_load_failure_is_one_line(subprocesses):
    proc, stdout, stderr = subprocesses["cli"]
    assert proc.returncode == 2, stderr
    assert stdout == "" and "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dgemma_app: Model ") and "not DiffusionGemma" in lines[0]


# ----------------------------------------------------------------------------- failures: one sentence


def test_missing_folder(tmp_path):
    message = expect_load_error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message and "does not exist" in message


@pytest.mark.parametrize("source", ["just-a-name", "a/b/c", "./relative/missing"])
def test_neither_folder_nor_hub_id(source):
    assert "does not exist" in expect_load_error(source)


def test_folder_without_config(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    assert "has no config.json" in expect_load_error(tmp_path)


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    assert "unreadable config.json" in expect_load_error(tmp_path)


def test_wrong_architecture(gpt2_dir):
    message = expect_load_error(gpt2_dir)
    assert "'gpt2' model, not DiffusionGemma" in message


@pytest.mark.parametrize(
    "name, damage",
    [
        ("truncated", lambda b: b[: len(b) // 2]),
        ("tail cut", lambda b: b[:-100]),
        ("garbage", lambda b: b"\xff" * 64),
        ("empty", lambda b: b""),
    ],
)
def test_corrupt_weights(tmp_path, tiny_model_dir, name, damage):
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    weights = folder / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    message = expect_load_error(folder)
    assert message.startswith(f"Weights in {folder} could not be loaded") and "re-download" in message


def test_missing_weights(tmp_path, tiny_model_dir):
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    (folder / "model.safetensors").unlink()
    assert "could not be loaded" in expect_load_error(folder)


def test_weights_of_another_shape(tmp_path, tiny_model_dir):
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["vocab_size"] += 100
    (folder / "config.json").write_text(json.dumps(config))
    assert "do not match its config.json" in expect_load_error(folder)


def test_weights_missing_layers_are_refused(tmp_path, tiny_model_dir):
    """A config asking for more layers than the weights hold must not load random layers silently."""
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    text = config["text_config"]
    text["num_hidden_layers"] += 1
    text["layer_types"] = ["sliding_attention"] * (text["num_hidden_layers"] - 1) + ["full_attention"]
    (folder / "config.json").write_text(json.dumps(config))
    expect_load_error(folder)


def test_folder_without_tokenizer_is_refused(tmp_path, tiny_model_dir):
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    expect_load_error(folder)


def test_unknown_dtype(tiny_model_dir):
    message = expect_load_error(tiny_model_dir, dtype="fp8")
    assert "Unknown dtype 'fp8'" in message and "bf16" in message


def test_bad_max_memory_is_one_sentence():
    with pytest.raises(ModelLoadError) as info:
        wiring.parse_max_memory("0=70GiB,oops")
    one_sentence(str(info.value))
    assert wiring.parse_max_memory("0=70GiB, 1=70GiB,cpu=100GiB") == {0: "70GiB", 1: "70GiB", "cpu": "100GiB"}
    assert wiring.parse_max_memory(None) is None and wiring.parse_max_memory("") is None


def test_trust_remote_code_defaults_off(monkeypatch):
    def parse(argv):
        parser = argparse.ArgumentParser()
        wiring.add_model_args(parser)
        return parser.parse_args(argv)

    for name in [k for k in os.environ if k.startswith("DGEMMA_")]:
        monkeypatch.delenv(name)
    assert parse([]).trust_remote_code is False
    assert parse(["--trust-remote-code"]).trust_remote_code is True
    monkeypatch.setenv("DGEMMA_TRUST_REMOTE_CODE", "yes")  # only an explicit "1" turns it on
    assert parse([]).trust_remote_code is False
    monkeypatch.setenv("DGEMMA_TRUST_REMOTE_CODE", "1")
    assert parse([]).trust_remote_code is True


def test_env_defaults_reach_the_loader(monkeypatch, tiny_model_dir):
    """DGEMMA_* settings give the same arguments as the flags; flags win."""
    monkeypatch.setenv("DGEMMA_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("DGEMMA_DEVICE_MAP", "cpu")
    monkeypatch.setenv("DGEMMA_DTYPE", "bf16")
    monkeypatch.setenv("DGEMMA_MAX_MEMORY", "cpu=4GiB")
    monkeypatch.setenv("DGEMMA_MAX_INPUT_BYTES", "1000")
    parser = argparse.ArgumentParser()
    wiring.add_model_args(parser)
    args = parser.parse_args(["--dtype", "fp32"])
    assert (args.model, args.device_map, args.dtype, args.max_input_bytes) == (str(tiny_model_dir), "cpu", "fp32", 1000)
    loaded = wiring.load_from_args(args)
    assert loaded.source == str(tiny_model_dir)
    engine = Engine(loaded)
    assert engine.fill("x = <FILL:2>\n", "python", engine.settings(max_passes=1)).text.startswith("x = ")


def test_bad_env_number_is_a_usage_error(monkeypatch):
    """A malformed DGEMMA_* number should be argparse's one-line error (exit 2), like a bad flag."""
    monkeypatch.setenv("DGEMMA_MAX_INPUT_BYTES", "1MiB")
    parser = argparse.ArgumentParser()
    with pytest.raises(SystemExit) as info:
        wiring.add_model_args(parser)
        parser.parse_args([])
    assert info.value.code == 2


def test_shape_mismatch_sentence_stands_alone(tmp_path, tiny_model_dir):
    """`python -m dgemma_app fill --model <that folder>` printed a 7-line table on stderr, then
    "... For details look at the above report!); re-save ...": the sentence should not need it."""
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["vocab_size"] += 100
    (folder / "config.json").write_text(json.dumps(config))
    assert "above report" not in expect_load_error(folder)
