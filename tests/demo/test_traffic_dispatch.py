"""The seat mix stays a function of the seat count through dips and rises.

Runs tests/demo/traffic_dispatch_child.py in a child process (it imports locust).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("traffic_dispatch_child.py")
COUNTS = [10, 9, 10, 8, 12, 7, 10, 3, 10, 30, 20, 19, 10]


def test_stable_mix_dispatcher_keeps_the_mix_of_each_count() -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), *map(str, COUNTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    stable = result["stable"]
    first_ten = stable[0]
    assert first_ten == {
        "AdminApiUser": 1, "AdminBrowserUser": 2, "ClientApiUser": 3, "ClientBrowserUser": 4,
    }  # fmt: skip
    for count, mix in zip(COUNTS, stable, strict=True):
        assert sum(mix.values()) == count
        if count == 10:
            assert mix == first_ten
    assert stable[COUNTS.index(20)] == {  # exactly the weights
        "AdminApiUser": 1, "AdminBrowserUser": 3, "ClientApiUser": 7, "ClientBrowserUser": 9,
    }  # fmt: skip
    # Locust's own dispatcher drifts: the same count ends up with another mix.
    assert any(m != first_ten for c, m in zip(COUNTS, result["locust"], strict=True) if c == 10)
