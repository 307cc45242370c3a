"""Ray Serve replicas of the fill `Service`, for more users than one process serves: one replica per GPU, many nodes.

Each replica is a Ray actor holding one `Service` (the model is loaded once, when the replica starts, and
concurrent fills share it as they do in the plain app). The Gradio front-end keeps its page and reaches the
replicas through `RayFillSource`, which streams every pass back and, when a replica dies mid-fill, runs the fill
again on another one (or says so, in one sentence). Ray is imported only in this module, and this module only
when `--ray-replicas` or `--ray-address` asks for it.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import AsyncIterator, Iterator

from .engine import FillRequest
from .model import ModelLoadError
from .results import FillResult
from .settings import FillSettings
from .ui.service import Progress, Service, resolve_language
from .ui.source import FillUnavailable
from .wiring import limits_from_args

log = logging.getLogger(__name__)

APP = "dgemma"  # the Serve application's name; a second deploy under it replaces the first
DEPLOYMENT = "FillReplica"
RETRIES = 2  # a fill whose replica died runs again on another one, at most this many times
ROOT = Path(__file__).resolve().parent.parent  # on the replicas' PYTHONPATH: they import this package
PASSED_ON = ("HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "OMP_NUM_THREADS", "TRANSFORMERS_OFFLINE")
_END = object()


def _step(updates: Iterator[Progress | FillResult]) -> Progress | FillResult | Exception | object:
    """The next update, _END, or the user's mistake (bad settings) as a value: sent back, not logged as a failure."""
    try:
        return next(updates, _END)
    except (ValueError, ModelLoadError) as err:
        return err


class FillReplica:
    """One replica: the plain app's Service, its model loaded in the constructor so that Serve counts the replica
    as running only once it can fill (a model that cannot load fails the deployment, not a user's fill)."""

    def __init__(self, args: argparse.Namespace):
        self.service = Service.from_args(args)
        self.service.engine()

    def describe(self) -> str:
        return self.service.describe()

    def defaults(self) -> FillSettings:
        return self.service.defaults()

    def load(self) -> tuple[str, int]:
        """This replica's id and the fills running on it (the model is working for them): for monitoring."""
        from ray import serve

        return serve.get_replica_context().replica_id.unique_id, self.service.running

    async def fill(self, request: FillRequest, overrides: dict, interval: float = 0.1, passes: bool = True) -> AsyncIterator[Progress | FillResult | Exception]:
        """The Service's stream, one item at a time from a worker thread. An async generator, because Serve can
        cancel only those: when the caller goes away, closing the Service's iterator stops the model at its next pass."""
        updates = self.service.run(request, overrides, interval, passes)
        step: asyncio.Future | None = None
        try:
            while True:
                step = asyncio.ensure_future(asyncio.to_thread(_step, updates))
                item = await asyncio.shield(step)  # a cancel must not leave the iterator running in its thread
                if item is _END:
                    return
                yield item
        finally:
            if step is not None and not step.done():
                with contextlib.suppress(Exception):
                    await step
            updates.close()


class RayFillSource:
    """The page's fill source when the model runs on Ray Serve replicas: the calls of `Service`, over a handle.

    The cluster is joined and the deployment made on first use (as `Service` loads its model), so importing the
    app or building the page starts nothing."""

    def __init__(self, args: argparse.Namespace):
        self.source = args.model
        self.limits = limits_from_args(args)
        self._args = args
        self._handle = None
        self._lock = threading.Lock()
        self._about: tuple[str, FillSettings] | None = None

    @property
    def ready(self) -> bool:
        return self._handle is not None

    def handle(self):
        """The deployment's handle, deploying it on first use. Raises ModelLoadError when no replica can start."""
        with self._lock:
            if self._handle is None:
                self._handle = deploy(self._args)
            return self._handle

    def _model(self) -> tuple[str, FillSettings]:
        """The model's description and defaults, asked of one replica once (every replica loads the same model)."""
        if self._about is None:
            handle = self.handle()
            self._about = handle.describe.remote().result(), handle.defaults.remote().result()
        return self._about

    def describe(self) -> str:
        return f"{self._model()[0]} · {replicas(self._args)} Ray Serve replica(s)"

    def defaults(self) -> FillSettings:
        return self._model()[1]

    def request(self, text: str, language: str) -> FillRequest:
        """Parsed here, before any replica is asked: a bad input never costs a round trip."""
        return FillRequest.parse(text, language, self.limits, resolve_language)

    def run(self, request: FillRequest, overrides: dict, interval: float = 0.1, passes: bool = True) -> Iterator[Progress | FillResult]:
        """Stream the fill from a replica. A replica that dies mid-fill (its passes so far are lost) is replaced by
        another for a fresh run of the same fill; after RETRIES such runs the user is told. Closing this iterator
        (Stop, a closed tab) cancels the request, and the replica stops the model at its next pass."""
        from ray.exceptions import RayActorError

        for attempt in range(RETRIES + 1):
            stream = self.handle().options(stream=True).fill.remote(request, overrides, interval, passes)
            try:
                for update in stream:
                    if isinstance(update, Exception):
                        raise update
                    yield update
                return
            except RayActorError as err:
                log.warning("replica lost during a fill (attempt %d of %d): %s", attempt + 1, RETRIES + 1, str(err).splitlines()[0])
            finally:
                stream.cancel()
        raise FillUnavailable(f"The model replicas stopped while filling ({RETRIES + 1} tries); please try again in a moment.")


def replicas(args: argparse.Namespace) -> int:
    """Replicas to deploy: --ray-replicas, at least one (attaching by --ray-address alone gives one)."""
    return max(args.ray_replicas, 1)


def _connect(args: argparse.Namespace) -> None:
    """Join the cluster at --ray-address, or start a one-node cluster in this process that listens on loopback only
    (nothing when this process is already connected)."""
    if not args.ray_address:
        # Ray reads this when imported: a node that is not a cluster node advertises (and binds) 127.0.0.1
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env |= {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    if args.ray_address:
        ray.init(address=args.ray_address, runtime_env={"env_vars": env})
    else:  # every replica asks Ray for one CPU: a small machine still fits the replicas asked for
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, replicas(args)), include_dashboard=False, runtime_env={"env_vars": env})


def deploy(args: argparse.Namespace):
    """Start (or join) Ray, deploy the replicas and wait until they have loaded the model; returns the handle.
    Raises ModelLoadError with one sentence when they cannot start."""
    _connect(args)
    from ray import serve

    serve.start(proxy_location="Disabled")  # no Serve HTTP server: the Gradio page is the only way in
    # --concurrency fills per replica reach its Service at once (it runs them in turn, or batched); more wait in Serve's router
    deployment = serve.deployment(
        FillReplica, name=DEPLOYMENT, num_replicas=replicas(args), max_ongoing_requests=max(args.concurrency, 1),
        ray_actor_options={"num_cpus": 1, "num_gpus": args.ray_gpus}, max_constructor_retry_count=1,
    )
    try:
        return serve.run(deployment.bind(args), name=APP, route_prefix=None)
    except RuntimeError as err:
        raise ModelLoadError(_start_failure(serve.status(), str(err))) from None


def _start_failure(status, error: str) -> str:
    """The replicas' own sentence (ModelLoadError's message, from the traceback in Serve's status), else Serve's."""
    app = status.applications.get(APP)
    report = app.deployments[DEPLOYMENT].message if app and DEPLOYMENT in app.deployments else ""
    causes = [m.group(1) for m in re.finditer(r"^\s*[\w.]*(?:Error|Exception): (.+)$", report, re.MULTILINE)]
    return causes[-1] if causes else f"The Ray Serve replicas could not start: {error.splitlines()[0]}"
