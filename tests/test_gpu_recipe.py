"""The GPU recipe (`deploy/gpu_train.sh`) dry-run on the CPU at tiny scale: prepare (corpus pack sized to what a
device run carries, held-out files, HumanEval single-line) → training with batches built by the device builder →
bf16 export in shards → the files a device run returns → install into a model folder → the app's loader; the
script's own evaluation fills tasks of all three sets with the exported model; a first try that runs out of GPU
memory starts again at half the batch."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import runpy
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dgemma_app.model import load_model
from dgemma_app.train.__main__ import main
from dgemma_app.train.data import read_pack, write_pack
from tests.test_eval import TASK
from tests.test_train import TINY_SHAPE, workdir  # noqa: F401  (the tiny corpus and tokenizer fixture)

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--batch-size", "4", "--val-every", "2", "--val-batches", "1", "--canvas-length", "16", "--max-context", "8",
        "--threads", "1", "--ar-length", "12", "--warmup", "1", *TINY_SHAPE]


def test_a_pack_with_a_size_limit_keeps_whole_files_and_fits(workdir, tmp_path):  # noqa: F811
    full = write_pack(workdir["corpus"], workdir["tok"], tmp_path / "full.npz")
    limit = (tmp_path / "full.npz").stat().st_size - 300  # the tokens take about half the file: drop some of them
    kept = write_pack(workdir["corpus"], workdir["tok"], tmp_path / "fit.npz", max_bytes=limit)
    assert (tmp_path / "fit.npz").stat().st_size <= limit
    train, whole = kept["train"], full["train"]
    assert 0 < len(train.tokens) < len(whole.tokens)
    files = {whole.tokens[a:b].tobytes() for a, b in zip(whole.offsets[:-1], whole.offsets[1:])}
    assert all(train.tokens[a:b].tobytes() in files for a, b in zip(train.offsets[:-1], train.offsets[1:]))
    back = read_pack(tmp_path / "fit.npz", tmp_path / "tok")
    assert np.array_equal(back["train"].tokens, train.tokens) and np.array_equal(back["val"].tokens, full["val"].tokens)


def _humaneval_single_line(folder: Path) -> Path:
    """A two-task stand-in for HumanEval-SingleLineInfilling (the real file is not part of the repository)."""
    folder.mkdir()
    record = {"prompt": TASK.parts[0], "suffix": TASK.parts[1], "canonical_solution": TASK.solutions[0],
              "test": TASK.test, "entry_point": TASK.entry_point}
    with gzip.open(folder / "HumanEval-SingleLineInfilling.jsonl.gz", "wt") as f:
        for i in range(2):
            f.write(json.dumps({**record, "task_id": f"SingleLineInfilling/Toy/{i}/L0"}) + "\n")
    return folder


def _script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", str(ROOT / "deploy" / "gpu_train.sh"), *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _python_that_runs_out_of_memory_once(tmp_path: Path) -> Path:
    """A stand-in for `python3` whose first `-m dgemma_app.train train` fails as a CUDA out-of-memory error does."""
    wrapper, mark = tmp_path / "python-oom-once", tmp_path / "oom-happened"
    wrapper.write_text(f"""#!/usr/bin/env bash
if [ "$2 $3" = "dgemma_app.train train" ] && [ ! -e {mark} ]; then
    touch {mark}; echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 9.00 GiB"; exit 1
fi
exec {sys.executable} "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.slow
def test_the_gpu_recipe_dry_runs_on_the_cpu_at_tiny_scale(workdir, tmp_path):  # noqa: F811
    carry, out, run, dest = tmp_path / "carry", tmp_path / "out", tmp_path / "run", tmp_path / "model"
    env = {"CARRY": str(carry), "CORPUS": str(workdir["corpus"]), "HELDOUT": str(workdir["corpus"]),
           "HUMANEVAL": str(_humaneval_single_line(tmp_path / "humaneval")), "WHEELS": "skip",
           "WHL": str(tmp_path / "no-wheels"), "PYTHON": str(_python_that_runs_out_of_memory_once(tmp_path)),
           "PYTHONPATH": str(ROOT), "DEVICE": "cpu", "OUT": str(out), "RUN": str(run), "SHARD": "120KB", "EVAL_LIMIT": "2"}

    prepared = _script(["prepare"], env).stdout
    budget = float(re.search(r"the pack may take ([\d.]+) MiB", prepared).group(1))
    assert 0 < (carry / "pack.npz").stat().st_size <= budget * 2**20
    assert (carry / "heldout" / "val.jsonl").read_bytes() == (workdir["corpus"] / "val.jsonl").read_bytes()
    assert re.search(r"sends \d+ bytes \(\d+ % of 64 MiB\)", prepared)

    _script(["0.03", *TINY], env)
    log = (out / "train.log").read_text()
    assert "out of GPU memory: again at batch 384" in log  # the first try failed as out of memory: half the batch
    assert "parameters" in log and "exported" in log
    shards = sorted(out.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1  # the weights came back in several files
    returned = [p for p in out.iterdir() if p.is_file()]
    assert len(returned) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in returned)  # the device limits
    with tarfile.open(out / "run.tar") as tar:
        names = tar.getnames()
    assert "log.jsonl" in names and "eval/single-line.json" in names
    evaluation = (out / "eval.log").read_text()
    for name in ("obvious", "heldout-lines", "single-line"):
        assert re.search(rf"^{name}: 2 tasks, exact [\d.]+%, compiles [\d.]+%", evaluation, re.M), evaluation
    assert re.search(r"^single-line: .* pass@1 [\d.]+%", evaluation, re.M)

    dest.mkdir()
    (dest / "LEDGER.md").write_text("kept\n")
    (dest / "model.safetensors").write_text("an older single-file export, replaced")
    partial = tmp_path / "partial"  # a shard lost on the way back: nothing is installed
    partial.mkdir()
    for p in [out / "model-meta.tar", *shards[1:]]:
        (partial / p.name).write_bytes(p.read_bytes())
    refused = subprocess.run(["bash", str(ROOT / "deploy" / "gpu_train.sh"), "install", str(partial), str(dest)], cwd=ROOT,
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and shards[0].name in refused.stderr and (dest / "model.safetensors").exists()
    _script(["install", str(out), str(dest)], env)
    assert (dest / "LEDGER.md").read_text() == "kept\n" and not (dest / "model.safetensors").exists()
    assert (dest / "model.safetensors.index.json").is_file() and (dest / "generation_config.json").is_file()
    loaded = load_model(dest, device_map="cpu")
    assert loaded.canvas_length == 16 and json.loads((dest / "config.json").read_text())["dtype"] == "bfloat16"
    weights = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    for name, value in loaded.model.state_dict().items():
        if name in weights:
            assert torch.equal(value, weights[name].to(torch.bfloat16).float()), name
    meta = torch.load(run / "checkpoint.pt", weights_only=False)["meta"]
    assert meta["loop"]["device_batches"] and meta["objective"]["line_end_prob"] == 0.5


def test_the_transformers_wheel_keeps_the_families_the_app_imports(tmp_path):
    """deploy/trim_wheel.py on a stand-in wheel: the kept families and what their runtime modules import stay, other
    families and their RECORD lines go, files outside `models/` stay; a `modular_*.py` source pulls nothing in."""
    files = {
        "transformers/__init__.py": "", "transformers/modeling_utils.py": "", "transformers/models/__init__.py": "",
        "transformers/models/auto/modeling_auto.py": "from ..bert import x\n",
        "transformers/models/diffusion_gemma/modeling_diffusion_gemma.py": "from ..gemma4.configuration_gemma4 import A\n",
        "transformers/models/diffusion_gemma/modular_diffusion_gemma.py": "from ..t5gemma2 import C\n",
        "transformers/models/gemma4/modeling_gemma4.py": "from ..siglip.modeling_siglip import B\n",
        "transformers/models/encoder_decoder/configuration_encoder_decoder.py": "",
        "transformers/models/siglip/modeling_siglip.py": "", "transformers/models/t5gemma2/modeling_t5gemma2.py": "",
        "transformers/models/bert/modeling_bert.py": "",
    }
    wheel = tmp_path / "transformers-5.23.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr("transformers-5.23.0.dist-info/RECORD", "".join(f"{name},sha256=x,1\n" for name in files))
    trim = runpy.run_path(str(ROOT / "deploy" / "trim_wheel.py"))["trim"]
    removed, size = trim(wheel)
    with zipfile.ZipFile(wheel) as z:
        names, record = set(z.namelist()), z.read("transformers-5.23.0.dist-info/RECORD").decode()
    gone = {"transformers/models/t5gemma2/modeling_t5gemma2.py", "transformers/models/bert/modeling_bert.py"}
    assert removed == 2 and size == wheel.stat().st_size
    assert names == (set(files) - gone) | {"transformers-5.23.0.dist-info/RECORD"}
    assert all((name in record) == (name not in gone) for name in files)
