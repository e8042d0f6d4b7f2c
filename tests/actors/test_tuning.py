"""actors.tune_gc changes the collector's thresholds and says what they were."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from actors import tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_raises_the_young_threshold_and_returns_the_old_thresholds() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    assert tune_gc(20_000, freeze=False) == before
    assert gc.get_threshold() == (20_000, before[1], before[2])
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_freezes_the_objects_alive_now_by_default() -> None:
    frozen = gc.get_freeze_count()
    tune_gc()
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > frozen
