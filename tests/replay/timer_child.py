"""`sender.RequestTimer` in a child process (gevent stays out of pytest's own): one
session's requests, each a sleep between the timer's start and cancel, as `Sender.send`
brackets a request. Prints, per scenario, whether the timer raised (itself) and after how
long from the start of the request it bounded, as JSON.

    python -m tests.replay.timer_child SECONDS
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import gevent

from tracereplay.replay.sender import RequestTimer


def request(timer: RequestTimer, seconds: float) -> dict[str, Any]:
    """One request lasting `seconds` under `timer`: whether the timer cut it, and when."""
    started = time.monotonic()
    timer.start()
    try:
        gevent.sleep(seconds)
    except gevent.Timeout as exc:
        return {"raised": exc is timer, "after": time.monotonic() - started}
    finally:
        timer.cancel()
    return {"raised": False, "after": time.monotonic() - started}


def scenarios(bound: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    timer = RequestTimer(bound)
    try:
        # A request longer than the bound is cut at the bound.
        out["long"] = request(timer, 3 * bound)
        # Short requests, then one that ends past the first one's bound but within its own:
        # it is bounded from its own start, not from the first request's.
        out["short"] = request(timer, 0.5 * bound)
        gevent.sleep(0.3 * bound)
        out["later"] = request(timer, 0.7 * bound)  # ends 1.5 bounds after the first start
        # Idle past when the timer fires (no request running: nothing raised), then a
        # request longer than the bound is still cut at its own bound.
        gevent.sleep(1.5 * bound)
        out["after_idle"] = request(timer, 3 * bound)
        out["after_cut"] = request(timer, 0.2 * bound)  # a cut leaves it usable
    finally:
        timer.close()
    return out


if __name__ == "__main__":
    print(json.dumps(scenarios(float(sys.argv[1]))))
