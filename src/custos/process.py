"""Process-wide settings that only entry points make: the garbage collector and log levels.

Library code (all of custos but its entry points) never changes the garbage collector, a
logger's level or the environment: a program that imports custos keeps its own settings. The
entry points pick here what suits their process: the ``custos`` command
(:func:`custos.cli.main`), the server factory (:func:`custos.api.server.server_app`) and the
bench scripts. ``tests/test_process_state.py`` holds library code to this.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

#: Third-party loggers and the least level they report at in a custos process: Splink and DuckDB
#: report routine steps of training as warnings. (Presidio's loggers are not here: its debug
#: lines quote the analysed text, so the PII engine itself keeps them quiet, invariant 7.)
QUIET_LOGGERS = {"splink": logging.ERROR, "duckdb": logging.ERROR}

#: The cycle collector's thresholds in a server process. Collection makes thousands of short-lived
#: dicts per request, so with Python's default (700, 10, 10) the collector runs every few calls
#: and walks the young objects again and again; measured on the collection benchmark, these
#: thresholds cut the server's CPU time per call by about a sixth. Memory is bounded all the
#: same (the young generation holds at most this many container objects between passes).
SERVER_GC_THRESHOLDS = (20_000, 20, 100)


def quiet_loggers() -> None:
    """Raise the levels of :data:`QUIET_LOGGERS` (a command's output stays the command's)."""
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def tune_server() -> None:
    """Settings of a server process: :data:`SERVER_GC_THRESHOLDS` and quiet loggers."""
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
    quiet_loggers()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk job (an entry point's choice).

    A job that builds millions of tuples and small objects (a full resolution loads every
    record) triggers a collection every few hundred allocations, and each full collection walks
    every live object: with a million loaded rows that costs a third of the job's time.
    Reference counting still frees everything that is not in a cycle while paused, and the
    collector, resumed, finds the few cycles later (Splink's linker holds some; custos closes
    its DuckDB connections itself, so no large buffer waits for them). Nested use keeps it
    paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
