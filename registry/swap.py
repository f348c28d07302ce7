"""A readers–writer lock for swapping an index's encoder while searches run.

Recording a new encoder version (a text map, a weight encoder) reloads the embedder and then
re-embeds and rebuilds the index: for those seconds the query side and the stored vectors can be of
different versions (a tuned text map even changes the index's dimension). Searches, and ingests
(which embed a new adapter and add it to the index), run under ``reading()``; the swap runs under
``writing()``. A search sees the old pair or the new one, waiting out the swap instead of failing
on half of it, and an ingest's vectors land in the index of the version they were embedded with.
Re-entrant per thread (a writer may search, a reader may read again); a waiting writer holds back
new readers so that a steady stream of searches cannot starve it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SwapLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0  # threads inside reading() (each counted once)
        self._writing = False  # a thread is inside writing()
        self._waiting = 0  # writers waiting for the readers to leave
        self._mine = threading.local()  # this thread's depth: reads, writes

    def _depth(self) -> list[int]:
        if not hasattr(self._mine, "depth"):
            self._mine.depth = [0, 0]
        return self._mine.depth  # type: ignore[no-any-return]

    @staticmethod
    @contextmanager
    def _inside(depth: list[int], i: int) -> Iterator[None]:
        """This thread's depth of reads (``i`` 0) or writes (1) raised for the block."""
        depth[i] += 1
        try:
            yield
        finally:
            depth[i] -= 1

    @contextmanager
    def reading(self) -> Iterator[None]:
        depth = self._depth()
        if depth[0] or depth[1]:  # already inside: no second wait (a waiting writer would deadlock it)
            with self._inside(depth, 0):
                yield
            return
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            with self._inside(depth, 0):
                yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        depth = self._depth()
        if depth[1]:
            with self._inside(depth, 1):
                yield
            return
        if depth[0]:
            raise RuntimeError("a swap cannot start inside a read of the same thread")
        with self._cond:
            self._waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writing = True
        try:
            with self._inside(depth, 1):
                yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
