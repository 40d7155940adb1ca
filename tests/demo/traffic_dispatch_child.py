"""Child process for test_traffic_dispatch.py: imports locust, so never from pytest itself.

Prints, as JSON, the seat mix Locust's dispatcher and `StableMixDispatcher` reach for
each seat count of a dipping and rising sequence.
"""

from __future__ import annotations

import json
import sys

from locust.dispatch import UsersDispatcher
from locust.runners import WorkerNode

from tracereplay.demo.traffic.shape import StableMixDispatcher
from tracereplay.demo.traffic.users import USER_CLASSES


def mixes(dispatcher_class: type[UsersDispatcher], counts: list[int]) -> list[dict[str, int]]:
    node = WorkerNode("local")
    dispatcher = dispatcher_class([node], list(USER_CLASSES))
    reached = []
    for count in counts:
        dispatcher.new_dispatch(count, spawn_rate=1000)
        last = {}
        for users_on_workers in dispatcher:
            last = users_on_workers[node.id]
        reached.append(last)
    return reached


if __name__ == "__main__":
    counts = [int(c) for c in sys.argv[1:]]
    json.dump(
        {
            "locust": mixes(UsersDispatcher, counts),
            "stable": mixes(StableMixDispatcher, counts),
        },
        sys.stdout,
    )
