"""`in_order`: works given back in their order, whatever order their threads end in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tracereplay.models.in_order import in_order, read_ahead


def slow_first(p: int) -> int:
    """Partition 0 ends last of the first three (its thread sleeps)."""
    time.sleep(0.05 if p == 0 else 0.0)
    return p * p


@pytest.mark.parametrize("ahead", [0, 1, 2, 5])
def test_results_come_in_order_whatever_ends_first(ahead: int) -> None:
    assert list(in_order(slow_first, range(7), ahead, "test")) == [p * p for p in range(7)]


def test_no_more_than_ahead_are_made_beside_the_one_held() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(p: int) -> int:
        with lock:
            started.append(p)
        return p

    given = in_order(work, range(10), 2, "test")
    assert next(given) == 0
    time.sleep(0.05)
    assert sorted(started) == [0, 1, 2]  # the one held and two beside it
    assert list(given) == list(range(1, 10))


def test_an_error_is_raised_where_its_result_is_given() -> None:
    def work(p: int) -> int:
        if p == 3:
            raise ValueError("partition 3")
        return p

    given = in_order(work, range(6), 2, "test")
    assert [next(given) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="partition 3"):
        next(given)


def test_no_thread_when_nothing_is_asked_ahead() -> None:
    names: list[str] = []
    list(in_order(lambda p: names.append(threading.current_thread().name), range(3), 0, "test"))
    assert names == [threading.current_thread().name] * 3


def test_read_ahead_gives_every_item_in_order() -> None:
    for ahead in (0, 1, 3):
        assert list(read_ahead(iter(range(50)), ahead, "test")) == list(range(50))


def test_read_ahead_raises_the_iterators_error_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield from range(3)
        raise ValueError("damaged")

    got: list[int] = []
    with pytest.raises(ValueError, match="damaged"):
        for item in read_ahead(items(), 2, "test"):
            got.append(item)
    assert got == [0, 1, 2]


def test_read_ahead_left_early_stops_its_thread_and_reads_no_further() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for p in range(1000):
            taken.append(p)
            yield p

    given = read_ahead(items(), 2, "read-test")
    assert [next(given) for _ in range(3)] == [0, 1, 2]
    given.close()
    assert not any(t.name == "read-test" for t in threading.enumerate())
    assert len(taken) <= 3 + 2 + 1  # (the ones given, those queued, the one in hand)
