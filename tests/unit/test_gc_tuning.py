"""Automatic cyclic collection is replaced by a full collection on a timer."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from dataflows import gc_tuning


def test_timer_collects_cycles_while_automatic_collection_is_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    was_enabled = gc.isenabled()
    calls: list[float] = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(time.monotonic()) or real_collect(*a))
    stop = gc_tuning.tune_garbage_collector(interval_s=0.05)
    try:
        assert not gc.isenabled()
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) >= 2
    finally:
        stop.set()
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def test_timer_stops_when_asked() -> None:
    stop = threading.Event()
    stop.set()
    worker = threading.Thread(target=gc_tuning.collect_periodically, args=(0.01, stop))
    worker.start()
    worker.join(2)
    assert not worker.is_alive()
