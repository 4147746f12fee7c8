"""The worker's collector set-up at start-up (entrypoints/worker.py): what start-up built is
frozen, garbage is not, and the young generation's threshold is raised."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from order_service.entrypoints.worker import YOUNG_COLLECTION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_frozen_garbage_collected_young_threshold_raised(
    collector: None,
) -> None:
    kept = _Cycle()
    garbage = _Cycle()
    gone = weakref.ref(garbage)
    del garbage  # a cycle: only a collection frees it
    _, middle, old = gc.get_threshold()

    tune_garbage_collector()

    assert gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # frozen: out of the collector's sight
    assert gone() is None  # collected before the freeze, not kept for good
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, middle, old)
