"""Group commit: the one thread that writes collected calls, many requests per transaction.

Request handlers read and normalise their calls (``service.collect.prepare``) and hand them to
the writer; it takes every request waiting, writes them in one transaction, commits once and
then answers each handler. So a request is acknowledged only once committed, exactly as when
each had its own transaction, but a burst of requests costs one commit (one WAL sync) and one
writer-lock round instead of one each, and requests never queue on SQLite's busy timeout.

Several server processes (``custos serve --workers N``) each have a writer; on SQLite they take
turns through an empty lock file beside the database (``flock`` on ``<database>-collect-lock``):
the next writer wakes the moment the lock is free, where SQLite's busy handler would sleep and
poll. PostgreSQL's advisory lock already queues writers that way.

When a group's transaction fails, nothing of it is stored; each request of the group is then
written alone, so one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from custos.service import collect as service
from custos.service.app import Custos

log = logging.getLogger("custos.api")

#: A group stops growing at this many calls (a few transactions of this size per second keep
#: latency low and memory bounded; the request gate bounds it too).
MAX_GROUP_CALLS = 5_000
#: The writer thread ends after this long without work (a new request starts it again).
IDLE_SECONDS = 5.0


@dataclass
class _Job:
    prepared: service.Prepared
    future: asyncio.Future[service.CollectResult]
    loop: asyncio.AbstractEventLoop


class GroupWriter:
    """The single writer of one custos instance's collected calls (see the module doc)."""

    def __init__(self, custos: Custos, max_group_calls: int = MAX_GROUP_CALLS) -> None:
        self.custos = custos
        self.max_group_calls = max_group_calls
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: how many transactions were committed, and how many requests they held (for tests
        #: and the benchmark)
        self.groups = 0
        self.requests = 0
        #: requests in the transaction being written now
        self.writing = 0
        file = custos.store.file
        self._lock_path = f"{file}-collect-lock" if file else None  # beside -wal and -shm

    @property
    def waiting(self) -> int:
        """Requests handed over and not yet taken into a transaction."""
        return self._queue.qsize()

    async def write(self, prepared: service.Prepared) -> service.CollectResult:
        """Write one prepared request; returns once it is committed (raises when it failed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[service.CollectResult] = loop.create_future()
        self._queue.put(_Job(prepared, future, loop))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="custos-collect-writer", daemon=True
                )
                self._thread.start()
        return await future

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            with self._lock:  # should this thread die, the next request starts another
                if self._thread is threading.current_thread():
                    self._thread = None

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # a job put before this check is still served
                        self._thread = None
                        return
                continue
            group, calls = [first], len(first.prepared.calls)
            while calls < self.max_group_calls:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                group.append(job)
                calls += len(job.prepared.calls)
            self.writing = len(group)
            try:
                self._write(group)
            finally:
                self.writing = 0

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn to write (other server processes on the same SQLite file wait)."""
        if self._lock_path is None:
            yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, group: list[_Job]) -> None:
        try:
            with self._turn():
                results = service.write(self.custos, [j.prepared for j in group])
        except Exception as exc:
            if len(group) == 1:
                _answer(group[0], exc)
                return
            # Nothing of the group was stored: try each request alone, so that only the
            # request at fault fails.
            log.warning("a group of %d collection requests failed; writing each alone", len(group))
            for job in group:
                self._write([job])
            return
        self.groups += 1
        self.requests += len(group)
        for job, result in zip(group, results, strict=True):
            _answer(job, result)


def _answer(job: _Job, outcome: service.CollectResult | BaseException) -> None:
    """Resolve a handler's future on its own event loop (the loop may be gone: then the client
    has left, and the calls are stored or not, exactly as a resend will find them)."""

    def settle() -> None:
        if job.future.done():
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # the loop is closed
        job.loop.call_soon_threadsafe(settle)
