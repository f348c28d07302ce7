"""``registry.swap.SwapLock``: searches (readers) and an encoder swap (the writer) never overlap."""

from __future__ import annotations

import threading

import pytest

from registry.swap import SwapLock

WAIT = 5.0  # seconds a thread gets to reach a point it must reach (never what a test measures)


def _in_thread(target: object) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    t.start()
    return t


def test_readers_share_and_a_writer_waits_for_them() -> None:
    lock = SwapLock()
    inside, leave, wrote = threading.Event(), threading.Event(), threading.Event()

    def reader() -> None:
        with lock.reading():
            inside.set()
            leave.wait(WAIT)

    def writer() -> None:
        with lock.writing():
            wrote.set()

    r = _in_thread(reader)
    assert inside.wait(WAIT)
    with lock.reading():  # a second reader is not held back by the first
        assert lock._readers == 2
    w = _in_thread(writer)
    assert not wrote.wait(0.3)  # the reader is still inside
    leave.set()
    r.join(WAIT), w.join(WAIT)
    assert wrote.is_set()


def test_a_waiting_writer_holds_back_new_readers_and_a_writer_holds_back_all() -> None:
    lock = SwapLock()
    order: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()

    def first_reader() -> None:
        with lock.reading():
            first_in.set()
            release_first.wait(WAIT)
            order.append("first reader out")

    def writer() -> None:
        with lock.writing():
            order.append("writer")

    def late_reader() -> None:
        with lock.reading():
            order.append("late reader")

    r1 = _in_thread(first_reader)
    assert first_in.wait(WAIT)
    w = _in_thread(writer)
    while not lock._waiting:  # the writer is queued behind the first reader
        threading.Event().wait(0.01)
    r2 = _in_thread(late_reader)
    assert not threading.Event().wait(0.2) and order == []  # the late reader waits behind the writer
    release_first.set()
    for t in (r1, w, r2):
        t.join(WAIT)
    assert order == ["first reader out", "writer", "late reader"]


def test_re_entry_in_one_thread() -> None:
    lock = SwapLock()
    seen: list[str] = []
    with lock.writing():
        with lock.reading(), lock.writing():  # a swap may search and record again
            seen.append("nested in the swap")
    with lock.reading():
        with lock.reading():  # a nested read does not queue again (a waiting writer would deadlock it)
            seen.append("nested read")
        assert lock._readers == 1
        with pytest.raises(RuntimeError, match="inside a read"), lock.writing():
            seen.append("unreachable")
    assert seen == ["nested in the swap", "nested read"]

    def other() -> None:
        with lock.writing():
            seen.append("another thread swaps")

    _in_thread(other).join(WAIT)  # everything was released
    assert seen[-1] == "another thread swaps"
