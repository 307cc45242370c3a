"""Training batches for the loop: drawn in its own thread (`workers` = 0, as before), or by background worker
processes that keep a few ready (`workers` > 0), so a GPU need not wait on `make_batch`'s per-row Python loop.

Workers are spawned (no fork of a process that holds torch threads or a CUDA context). Step i's batch comes
from worker i mod N, and each worker draws from its own generators, one per batch kind, seeded by (seed, first
step, worker, kind): a run is reproducible for a fixed N, though its batches differ from those of N = 0. The
loop says which kind it wants (causal-LM windows in the AR start, diffusion batches after it); workers draw
causal-LM windows until the loop first asks for a diffusion batch, and the few still queued then are dropped.

This module imports no torch at its top: a spawned worker imports it before it reads its arguments, and a
heavy import there would start the workers one after another.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import traceback
from dataclasses import asdict, fields

import numpy as np

from dgemma_app.train.data import BatchSource

AR, DIFFUSION, ERROR = "ar", "diffusion", "error"
PREFETCH = 4  # batches each worker keeps ready
POLL_S = 0.2  # how often a blocked worker looks for a stop request or a dead parent


def draw(stream, obj, batch_size: int, ar_length: int, vocab: int, ar: bool, rng: np.random.Generator):
    """One training batch on the CPU: causal-LM windows [B, ar_length + 1] (`ar`) or a diffusion `Batch`."""
    from dgemma_app.train.objective import ar_window, make_batch

    return ar_window(stream, batch_size, ar_length, rng) if ar else make_batch(stream, batch_size, obj, vocab, rng)


class InlineBatches(BatchSource):
    """Batches drawn in the caller's thread from one generator seeded by seed + first step (`workers` = 0)."""

    def __init__(self, stream, obj, batch_size: int, ar_length: int, vocab: int, seed: int, step: int):
        self.args = (stream, obj, batch_size, ar_length, vocab)
        self.rng = np.random.default_rng(seed + step)

    def next(self, ar: bool):
        return draw(*self.args, ar, self.rng)


class WorkerBatches(InlineBatches):
    """Batches drawn by `workers` spawned processes, each with a bounded queue of `prefetch` batches.

    `ar`: whether the run starts in the causal-LM phase. Leaving the `with` block (at the end, on an exception or
    a KeyboardInterrupt) stops and joins every worker; a worker that does not stop in time is terminated.
    """

    def __init__(self, stream, obj, batch_size: int, ar_length: int, vocab: int, seed: int, step: int, workers: int,
                 ar: bool, prefetch: int = PREFETCH):
        ctx = mp.get_context("spawn")
        self.stop, self.ar_done = ctx.Event(), ctx.Event()
        if not ar:
            self.ar_done.set()
        self.queues = [ctx.Queue(prefetch) for _ in range(workers)]
        spec = (stream.tokens, stream.offsets, stream.chars, asdict(obj), batch_size, ar_length, vocab)
        self.procs = [ctx.Process(target=work, args=(spec, (seed, step, w), q, self.stop, self.ar_done), daemon=True,
                                  name=f"batch-worker-{w}") for w, q in enumerate(self.queues)]
        self.ready: list[list] = [[] for _ in range(workers)]  # items `wait` took, served first
        self.turn, self.started = 0, []
        try:
            for p in self.procs:
                p.start()
                self.started.append(p)
        except BaseException:
            self.close()
            raise

    def next(self, ar: bool):
        """The next batch of the kind the loop's phase wants (the phase only moves from causal LM to diffusion)."""
        import torch

        from dgemma_app.train.objective import Batch

        if not ar and not self.ar_done.is_set():
            self.ar_done.set()
        w = self.turn % len(self.procs)
        want = AR if ar else DIFFUSION
        while True:
            kind, payload = self.take(w)
            if kind == ERROR:
                raise RuntimeError(f"batch worker {w} failed:\n{payload}")
            if kind == want:
                break
            if ar:
                raise RuntimeError(f"batch worker {w} drew a diffusion batch before the causal-LM start ended")
            # else: causal-LM windows drawn before the switch to diffusion, dropped
        self.turn += 1
        return torch.from_numpy(payload) if kind == AR else Batch(*(torch.from_numpy(a) for a in payload))

    def take(self, w: int) -> tuple[str, object]:
        """Worker w's next item; a worker that died without one raises instead of leaving the loop waiting."""
        if self.ready[w]:
            return self.ready[w].pop(0)
        while True:
            try:
                return self.queues[w].get(timeout=1.0)
            except queue.Empty:
                if not self.procs[w].is_alive():
                    raise RuntimeError(f"batch worker {w} exited (code {self.procs[w].exitcode}) without a batch")

    def wait(self) -> None:
        """Block until every worker has a batch ready (their start-up, seconds, is then not counted as step time)."""
        for w in range(len(self.procs)):
            if not self.ready[w]:
                self.ready[w].append(self.take(w))

    def close(self) -> None:
        self.stop.set()
        for p in self.started:  # each stops within a batch's drawing and POLL_S
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        for q in self.queues:
            q.close()
        self.started = []


def batch_source(stream, obj, batch_size: int, ar_length: int, vocab: int, seed: int, step: int, workers: int,
                 ar: bool, device: str | None = None):
    """Where the loop's training batches come from (a context manager): see the module's docstring; with a `device`,
    built there from the whole corpus moved there once (`device_batches`; then no workers start)."""
    if device is not None:
        from dgemma_app.train.device_batches import DeviceBatches

        return DeviceBatches(stream, obj, batch_size, ar_length, vocab, seed, step, device)
    if workers <= 0:
        return InlineBatches(stream, obj, batch_size, ar_length, vocab, seed, step)
    return WorkerBatches(stream, obj, batch_size, ar_length, vocab, seed, step, workers, ar)


def put(out, item, stop, parent) -> bool:
    """Put `item` on the bounded queue, waiting for room; False if asked to stop or the parent process is gone."""
    while not stop.is_set():
        try:
            out.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            if parent is not None and not parent.is_alive():
                return False
    return False


def work(spec: tuple, seeds: tuple[int, int, int], out, stop, ar_done) -> None:
    """A worker process's body (it ends the process): draw batches of the current kind into `out` until `stop` or
    the parent's end; an exception goes to `out` as the worker's last item."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    parent = mp.parent_process()
    try:
        import torch

        from dgemma_app.train.data import TokenStream
        from dgemma_app.train.objective import ObjectiveConfig

        torch.set_num_threads(1)
        tokens, offsets, chars, obj, batch_size, ar_length, vocab = spec
        stream, obj = TokenStream(tokens, offsets, chars), ObjectiveConfig(**obj)
        rngs = {kind: np.random.default_rng([*seeds, i]) for i, kind in enumerate((AR, DIFFUSION))}
        while not stop.is_set():
            kind = DIFFUSION if ar_done.is_set() else AR
            data = draw(stream, obj, batch_size, ar_length, vocab, kind == AR, rngs[kind])
            payload = data.numpy() if kind == AR else tuple(getattr(data, f.name).numpy() for f in fields(data))
            if not put(out, (kind, payload), stop, parent):
                break
    except Exception:
        put(out, (ERROR, traceback.format_exc()), stop, parent)  # the exit then waits until the parent reads it
        return
    out.cancel_join_thread()  # stopping: batches still buffered are dropped, the exit does not wait for a reader
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing left to flush: skip the interpreter's teardown of torch and transformers (seconds)
