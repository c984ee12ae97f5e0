"""The paused collector of bulk jobs."""

from __future__ import annotations

import gc

from custos.core.bulk import paused_gc


def test_paused_gc_pauses_and_unfreezes_only_what_it_froze() -> None:
    assert gc.isenabled()
    with paused_gc() as pause:
        assert not gc.isenabled()
        pause.freeze()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with paused_gc():
        with paused_gc():  # nested: still paused after the inner one ends
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
