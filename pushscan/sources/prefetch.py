"""Read ahead in a thread: the next batches are read and decoded while the tracker works.

Used for big inputs, where reading (a system call) and the compiled scanner and decoder
run without the GIL, so a second core does them. Items, and the exception that ends
the stream, come out exactly as the wrapped iterator produces them, in order.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, Optional, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(it: Iterator[T], depth: int = 2) -> Iterator[T]:
    q: "queue.Queue[tuple[Any, Optional[BaseException]]]" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_END, None))
        except BaseException as exc:   # handed to the consumer, raised there in order
            q.put((_END, exc))

    t = threading.Thread(target=work, name="pushscan-read", daemon=True)
    t.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        t.join()
