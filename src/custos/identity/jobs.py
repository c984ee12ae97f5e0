"""Database work on a second thread, in order, while the calling thread goes on computing (the
profile writer's full rewrite uses both cores this way)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Jobs:
    """Database work done in order on a second thread while this one goes on computing.

    The database driver lets go of Python's lock while the database works, so producing rows
    and storing them use both cores. Nothing else may use the connection the jobs use until
    the block ends; ending it waits for the last job and raises the first failure (a failure
    stops the jobs after it, and so does an exception in the block). At most ``backlog`` jobs
    wait: memory stays bounded when the database is the slower side.
    """

    def __init__(self, backlog: int = 4) -> None:
        self.pending: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(
            maxsize=backlog
        )
        self.failed: list[BaseException] = []
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, name="custos-resolve-db", daemon=True)

    def _run(self) -> None:
        while (job := self.pending.get()) is not None:
            if self.failed or self.cancelled:
                continue  # drain: the block raises (or has raised) already
            work, args = job
            try:
                work(*args)
            except BaseException as exc:  # re-raised on this side
                self.failed.append(exc)

    def put(self, work: Callable[..., Any], *args: Any) -> None:
        """Queue ``work(*args)`` (waits while the backlog is full); raises an earlier failure."""
        if self.failed:
            raise self.failed[0]
        self.pending.put((work, args))

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``work(*args)`` (a read on the jobs' connection, between their writes) and
        return the future of what it returns; :meth:`result` waits for it."""
        done: Future[T] = Future()

        def job() -> None:
            try:
                done.set_result(work(*args))
            except BaseException as exc:
                done.set_exception(exc)
                raise

        self.put(job)
        return done

    def result(self, done: Future[T]) -> T:
        """What a submitted job returned, once it ran; raises an earlier job's failure (after
        which it never runs)."""
        while True:
            try:
                return done.result(timeout=0.1)
            except TimeoutError:
                if self.failed:
                    raise self.failed[0] from None

    def __enter__(self) -> Jobs:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.cancelled = True
        self.pending.put(None)
        self.thread.join()
        if kind is None and self.failed:
            raise self.failed[0]
