"""One thread owns the model and decodes pending requests together.

Handler threads :meth:`Scheduler.submit` a :class:`Job` and read its ``events`` queue. The scheduler's thread
takes the oldest pending job, waits up to ``batch_wait_ms`` from that job's arrival for more (up to
``max_batch_size``), and decodes them as one batch with ``llm_adapters_eval.decoding.decode``: each row runs its
own adapter through per-row routing (``adapter_names``; the base is ``__base__`` when other rows use adapters),
finished rows leave the batch at each step, and jobs that arrive while a batch runs join it between two steps
as places free up (continuous batching), up to ``max_batch_size`` rows at a time.

Events on a job's queue: ``("token", piece)`` for each newly final piece of text (streaming jobs only), then
``("done", Finished)`` or ``("error", APIError)``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .errors import APIError, server_error
from .host import ModelHost

log = logging.getLogger(__name__)


@dataclass
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass
class Finished:
    text: str
    finish_reason: str
    completion_tokens: int


@dataclass
class Job:
    """One request waiting for, or in, a batch. ``adapter`` None is the base model."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    adapter: str | None = None
    stream: bool = False
    events: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchRecord:
    """What one decoding run held: how many requests (those it started with and those that joined it), each
    one's route (None: base) and how long the run took."""

    size: int
    routes: tuple[str | None, ...]
    seconds: float


class Scheduler:
    """The thread that runs every batch. ``start`` it, ``submit`` jobs, ``close`` it."""

    def __init__(
        self, host: ModelHost, *, max_batch_size: int = 8, batch_wait_ms: float = 5.0, max_pending: int = 256
    ) -> None:
        self.host = host
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_pending = max_pending
        self.history: deque[BatchRecord] = deque(maxlen=10_000)
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="llm-adapters-serve-scheduler", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop after the running batch; jobs still pending get a 503."""
        with self._cond:
            self._closing = True
            left = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in left:
            job.events.put(("error", APIError(503, "The server is shutting down.", type="server_error")))
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise APIError(503, "The server is shutting down.", type="server_error", code="shutting_down")
            if len(self._pending) >= self.max_pending:
                raise APIError(
                    503,
                    f"The server is overloaded ({self.max_pending} requests waiting); retry later.",
                    type="server_error",
                    code="overloaded",
                )
            self._pending.append(job)
            self._cond.notify_all()

    # ---- the thread ------------------------------------------------------------------------------------
    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            deadline = self._pending[0].arrived + self.batch_wait
            while len(self._pending) < self.max_batch_size and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[Job] = []
            while self._pending and len(batch) < self.max_batch_size:
                job = self._pending.popleft()
                if not job.cancelled.is_set():
                    batch.append(job)
            return batch

    def idle(self) -> bool:
        """Whether nothing is pending or decoding (a run's record is in ``history`` once it is idle)."""
        with self._cond:
            return not self._pending and not self._busy

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._busy = True
                try:
                    self.run_batch(batch)
                finally:
                    self._busy = False

    def _arrived(self, free: int) -> list[Job]:
        """Up to ``free`` jobs that arrived while a batch runs (they join it), without waiting."""
        with self._cond:
            taken: list[Job] = []
            while self._pending and len(taken) < free and not self._closing:
                job = self._pending.popleft()
                if not job.cancelled.is_set():
                    taken.append(job)
            return taken

    def run_batch(self, jobs: list[Job]) -> None:
        """Decode ``jobs`` as one batch, with the jobs that arrive meanwhile joining it (continuous batching),
        and hand each its events (called on the scheduler's thread)."""
        from llm_adapters_eval.decoding import Row, Sampling, decode

        jobs = list(jobs)
        ends = frozenset(self.host.eos_ids)
        progress: list[_Progress] = []

        def rows_of(new: list[Job]) -> list[Row]:
            rows = []
            for job in new:
                watch = _Progress(job, ends)
                progress.append(watch)
                s = job.sampling
                rows.append(
                    Row(
                        prompt_ids=job.prompt_ids,
                        max_new_tokens=job.max_new_tokens,
                        sampling=Sampling(
                            temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, seed=s.seed, stop=s.stop
                        ),
                        # no adapter is ever active here: a row without one runs the base (decoding routes it
                        # to the base by name as soon as any row of the batch names an adapter)
                        adapter=job.adapter,
                        on_token=watch.on_token,
                    )
                )
            return rows

        def more(free: int) -> list[Row]:
            new = self._arrived(free)
            jobs.extend(new)
            return rows_of(new)

        rows = rows_of(jobs)
        start = time.perf_counter()
        try:
            results = decode(
                self.host.model,
                self.host.tokenizer,
                rows,
                eos_ids=self.host.eos_ids,
                pad_id=self.host.pad_id,
                max_batch=self.max_batch_size,
                more=more,
            )
        except Exception as exc:  # every unfinished row of the batch fails alike; the log keeps the traceback
            log.exception("a batch of %d request(s) failed", len(jobs))
            error = server_error(exc)
            for watch in progress:
                if not watch.done:
                    watch.done = True
                    watch.job.events.put(("error", error))
            return
        self.history.append(BatchRecord(len(jobs), tuple(j.adapter for j in jobs), time.perf_counter() - start))
        for watch, result in zip(progress, results, strict=True):
            if not watch.done:
                watch.finish(Finished(result.text, result.finish_reason, len(result.token_ids)))


class _Progress:
    """One row's tokens as decoding hands them over: streams the pieces of a streaming job, and finishes the job
    as soon as its row is certainly over (its EOS, or its budget without stop strings), so that a short answer
    does not wait for the longest row of its batch. A row that ends any other way (a stop string) finishes
    with the batch, from decoding's result."""

    def __init__(self, job: Job, ends: frozenset[int]) -> None:
        self.job = job
        self.ends = ends
        self.pieces: list[str] = []
        self.tokens = 0
        self.done = False

    def on_token(self, token_id: int, piece: str) -> None:
        if self.done:
            return
        if piece:
            self.pieces.append(piece)
            if self.job.stream:
                self.job.events.put(("token", piece))
        if token_id in self.ends:  # decoding ends a row at its EOS, which is not one of its tokens
            self.finish(Finished("".join(self.pieces), "stop", self.tokens))
            return
        self.tokens += 1
        if self.tokens >= self.job.max_new_tokens and not self.job.sampling.stop:
            self.finish(Finished("".join(self.pieces), "length", self.tokens))

    def finish(self, result: Finished) -> None:
        self.done = True
        self.job.events.put(("done", result))
