"""`python -m tracereplay.demo.traffic ARGS`: `tracereplay demo-traffic ARGS` in a process
of its own (what `launch.py` starts, so the caller never loads gevent)."""

from __future__ import annotations

import sys

from tracereplay.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo-traffic", *sys.argv[1:]]))
