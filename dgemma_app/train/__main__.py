"""Command line: `python -m dgemma_app.train {corpus,tokenizer,train,export} ...` (see `--help`).

Typical order: build the corpus, train the tokenizer, train (in the background), export a checkpoint.
For another machine (a GPU), `pack` puts the encoded corpus and its tokenizer in one file for `train --pack`.
Dataclass settings become flags automatically, so defaults live in one place.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a 2-core machine shared with other jobs, spinning
# threads made steps 5-20x slower (measured), sleeping ones cost little when the machine is free.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dgemma_app.train.corpus import CorpusConfig, build, read_docs
from dgemma_app.train.export import SamplerSettings
from dgemma_app.train.loop import LoopConfig, ModelShape
from dgemma_app.train.objective import ObjectiveConfig, check_whole_contexts

RUNS = Path("runs")


def add_dataclass_flags(parser: argparse.ArgumentParser, cls) -> None:
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif not isinstance(default, list):
            parser.add_argument(flag, type=type(default), default=default, help=f"(default: {default})")


def from_args(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def cmd_corpus(args) -> None:
    stats = build(from_args(CorpusConfig, args), args.out)
    print(f"corpus: {stats['files']} files ({stats['val_files']} held out, {stats['prose_files']} prose), "
          f"{stats['chars']:,} characters → {args.out}")


def cmd_tokenizer(args) -> None:
    from dgemma_app.train.data import encode_splits
    from dgemma_app.train.tokenizer import save_tokenizer, train_tokenizer

    texts = (d.text for d in read_docs(args.corpus / "train.jsonl"))
    save_tokenizer(train_tokenizer(texts, args.vocab_size), args.out)
    for split, stream in encode_splits(args.corpus, args.out).items():
        print(f"{split}: {len(stream.offsets) - 1} files, {len(stream.tokens):,} tokens, "
              f"{stream.chars_per_token:.2f} characters per token")


def cmd_pack(args) -> None:
    from dgemma_app.train.data import write_pack

    max_bytes = None if args.max_mib is None else int(args.max_mib * 2**20)
    streams = write_pack(args.corpus, args.tokenizer, args.out, max_bytes)
    tokens = {split: f"{len(s.tokens):,}" for split, s in streams.items()}
    print(f"packed {tokens['train']} train and {tokens['val']} validation tokens with {args.tokenizer} → {args.out} "
          f"({args.out.stat().st_size / 2**20:.1f} MiB)")


def load_streams(meta: dict):
    """(train, validation) token streams of a run: from a pack file, or the corpus folder's splits."""
    from dgemma_app.train.data import encode_splits, read_pack

    corpus, tokenizer = Path(meta["corpus"]), Path(meta["tokenizer"])
    streams = read_pack(corpus, tokenizer) if corpus.is_file() else encode_splits(corpus, tokenizer)
    return streams["train"], streams["val"]


def cmd_train(args) -> None:
    import torch

    from dgemma_app.train.loop import build_model, shape_of, train
    from dgemma_app.train.tokenizer import load_tokenizer, newline_ids

    torch.set_num_threads(args.threads)
    run_dir = RUNS / args.name if args.run_dir is None else args.run_dir
    ckpt = run_dir / "checkpoint.pt"
    if args.resume and ckpt.exists():  # the run's own settings win over the flags, except the loop's
        meta = torch.load(ckpt, weights_only=False)["meta"]
    else:
        meta = {"tokenizer": str(run_dir / "tokenizer" if args.pack else args.tokenizer), "corpus": str(args.pack or args.corpus),
                "shape": dataclasses.asdict(from_args(ModelShape, args)),
                "objective": dataclasses.asdict(from_args(ObjectiveConfig, args))}
    obj = ObjectiveConfig(**meta["objective"])
    loop = from_args(LoopConfig, args)
    try:
        check_whole_contexts(loop.batch_size, obj)  # before any data is read
        if loop.device_batches and loop.workers:
            raise ValueError("--device-batches builds the batches on the training device: drop --workers.")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    meta["loop"] = dataclasses.asdict(loop)
    train_stream, val_stream = load_streams(meta)
    tokenizer = load_tokenizer(Path(meta["tokenizer"]))
    vocab = tokenizer.get_vocab_size()
    if obj.line_end_prob > 0 and not obj.newline_ids:
        obj.newline_ids = newline_ids(tokenizer)
        meta["objective"] = dataclasses.asdict(obj)
    if loop.init_from:  # continue from a model folder (the shipped one): its weights, a fresh optimizer
        if (Path(loop.init_from) / "tokenizer.json").read_bytes() != (Path(meta["tokenizer"]) / "tokenizer.json").read_bytes():
            raise SystemExit(f"{loop.init_from}: its tokenizer differs from the run's {meta['tokenizer']}; pass --tokenizer "
                             f"{loop.init_from} (or pack the corpus with it).")
        model = init_model(Path(loop.init_from), vocab, obj.canvas_length)
        meta["shape"] = dataclasses.asdict(shape_of(model.config))
    else:
        torch.manual_seed(loop.seed)  # the initial weights too follow --seed (two runs alike train alike)
        model = build_model(vocab, ModelShape(**meta["shape"]), obj.canvas_length)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; train {len(train_stream.tokens):,} tokens; run dir {run_dir}")
    started = time.time()
    state = train(model, train_stream, val_stream, obj, loop, run_dir, meta, resume=args.resume)
    summary = {"name": loop.name, "params": n_params, "steps": state.step, "seconds": round(state.seconds),
               "wall_seconds_this_call": round(time.time() - started), "tokens": state.tokens,
               "chars_per_token": round(val_stream.chars_per_token, 3), "last": state.history[-1] if state.history else None}
    print(json.dumps(summary))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))


def init_model(folder: Path, vocab: int, canvas_length: int):
    """A model folder's weights as the start of a run; its vocabulary and canvas must match the run's."""
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion

    model = DiffusionGemmaForBlockDiffusion.from_pretrained(folder, dtype=torch.float32)
    text = model.config.get_text_config()
    if (text.vocab_size, model.config.canvas_length) != (vocab, canvas_length):
        raise SystemExit(f"{folder}: vocabulary {text.vocab_size} and canvas {model.config.canvas_length} do not match "
                         f"the run's {vocab} and {canvas_length}; pass --tokenizer {folder} and its --canvas-length.")
    return model


def cmd_export(args) -> None:
    from dgemma_app.train.export import SamplerSettings, export

    out = export(args.checkpoint, args.out, args.dtype, from_args(SamplerSettings, args), args.max_shard_size)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"exported {args.checkpoint} → {out} ({size / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dgemma_app.train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("corpus", help="collect and de-duplicate the corpus, with a held-out split")
    p.add_argument("--out", type=Path, default=RUNS / "corpus")
    add_dataclass_flags(p, CorpusConfig)  # --package-cap-chars etc.: a larger corpus for a longer (GPU) run
    p.add_argument("--extra-root", dest="extra_roots", type=Path, action="append", default=[], help="another folder of .py/.md/.txt files")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("tokenizer", help="train the byte-level BPE tokenizer and encode both splits")
    p.add_argument("--corpus", type=Path, default=RUNS / "corpus")
    p.add_argument("--out", type=Path, default=RUNS / "tokenizer")
    p.add_argument("--vocab-size", type=int, default=512)
    p.set_defaults(func=cmd_tokenizer)

    p = sub.add_parser("pack", help="the encoded corpus and its tokenizer in one file, for training elsewhere")
    p.add_argument("--corpus", type=Path, default=RUNS / "corpus")
    p.add_argument("--tokenizer", type=Path, default=RUNS / "tokenizer")
    p.add_argument("--out", type=Path, default=RUNS / "pack.npz")
    p.add_argument("--max-mib", type=float, default=None, help="keep whole training files until the pack would pass this size")
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("train", help="train (or --resume) a model; checkpoints go to runs/<name>/")
    p.add_argument("--corpus", type=Path, default=RUNS / "corpus")
    p.add_argument("--tokenizer", type=Path, default=RUNS / "tokenizer")
    p.add_argument("--pack", type=Path, default=None, help="a `pack` file: corpus and tokenizer (instead of --corpus/--tokenizer)")
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/<name>")
    p.add_argument("--resume", action="store_true")
    for cls in (LoopConfig, ModelShape, ObjectiveConfig):
        add_dataclass_flags(p, cls)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write a checkpoint as a model folder that load_model reads")
    p.add_argument("--checkpoint", type=Path, default=RUNS / "default" / "checkpoint.pt")
    p.add_argument("--out", type=Path, default=Path("models/dgemma-code-tiny"))
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--max-shard-size", default=None, help='split the weights into files of at most this size, e.g. "15MB"')
    add_dataclass_flags(p, SamplerSettings)
    p.set_defaults(func=cmd_export)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
