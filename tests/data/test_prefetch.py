"""The background iterator behind the loader's and the trainer's prefetching."""

import threading
import time

import pytest

from vlaops.data.prefetch import background


def test_same_items_in_order_and_bounded_lookahead():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    it = background(items(), size=2)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(produced) <= 4  # one handed over, two queued, one waiting to be put
    assert list(it) == list(range(1, 10))


def test_an_error_surfaces_where_it_happened():
    def items():
        yield 1
        raise ValueError("bad episode 7")

    it = background(items(), size=4)
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad episode 7"):
        next(it)


def test_closing_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    before = threading.active_count()
    it = background(endless(), size=1)
    next(it)
    it.close()
    assert closed.wait(2)
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
