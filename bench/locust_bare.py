"""The bare Locust baseline of bench/bench_generator.py: a FastHttpUser that GETs one URL
back to back (closed loop, no wait), reading the whole body, as `tracereplay replay` does.

The send time of every request is appended to a list (one list append, the only extra
work) and written as float64 seconds to $BENCH_TIMES when Locust quits, so the bench
measures both tools over the same steady-state stretch of their own requests.
"""

from __future__ import annotations

import os
import time
from array import array
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

PATH = os.environ.get("BENCH_PATH", "/item.json")
_SENT = array("d")


class Bare(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        _SENT.append(time.time())
        self.client.get(PATH)


@events.quitting.add_listener
def _dump(**_: Any) -> None:
    target = os.environ.get("BENCH_TIMES")
    if target:
        with Path(target).open("wb") as out:
            _SENT.tofile(out)
