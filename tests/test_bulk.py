"""The paused collector of bulk jobs (an entry point's choice, see :mod:`custos.process`)."""

from __future__ import annotations

import gc

from custos.process import paused_gc


def test_paused_gc_pauses_and_resumes() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with paused_gc():
        with paused_gc():  # nested: still paused after the inner one ends
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
