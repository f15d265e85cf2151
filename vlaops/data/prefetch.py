"""Run an iterator ahead of its consumer in a background thread.

    for batch in background(make_batches(), size=2): ...

The producer stays at most ``size`` items ahead; an exception it raises is raised in the consumer
at the same point of the sequence; closing (or dropping) the consumer's generator stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

_END = object()


def background[T](items: Iterator[T], size: int) -> Iterator[T]:
    q: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((item, None))
            q.put((_END, None))
        except BaseException as e:  # surfaced in the consumer
            q.put((None, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)
