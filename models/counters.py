"""Counter-based random numbers for synthesis: the k-th number of session i is a fixed
integer hash of (seed, stream, i, k), computed on uint64 numpy arrays.

A session's key is SplitMix64's output for the counter i under the (seed, stream) key;
its k-th number is the (k+1)-th output of a SplitMix64 generator started at that key
(state + (k+1)·golden ratio, then the finalizer of Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", 2014). So a chunk of sessions draws all its numbers at
once, and one session drawn alone (a replay worker's) gets the same ones: nothing depends
on the sessions drawn before. The top 53 bits make a float in [0, 1)
(tests/models/test_counters.py checks uniformity with a KS test).
"""

from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1
_FLOAT = 2.0**-53

# Streams: one per kind of number, so adding draws to one leaves the others as they were.
STRATUM = 1
"""k=0: the session's place in its stratum; k=1: its tempo (behaviors without a table)."""
SLICES = 2
"""Per block of sessions (models/strata.py): the order of its slices."""
WALK = 3
"""k=step: the endpoint drawn at that step."""
PAUSE = 4
"""k=step·candidates + candidate: the pauses."""
VALUES = 5
"""k=parameter·VALUE_WORDS + word: path-parameter values."""
PICKS = 6
"""k=2·step (query) and 2·step+1 (body): the request's entry of its endpoint's pools."""
VALUE_WORDS = 64
"""64-bit words a path-parameter value may use (a hex value: 16 characters a word)."""


def _mix_int(z: int) -> int:
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer of each uint64 in `z` (a new array)."""
    z = z ^ (z >> np.uint64(30))
    z *= np.uint64(_M1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_M2)
    z ^= z >> np.uint64(31)
    return z


def session_keys(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """Each session's key for `stream` (uint64), from (seed, stream, index) alone."""
    base = _mix_int(_mix_int(seed * GOLDEN + stream) + stream * GOLDEN)
    counters = np.asarray(index, dtype=np.uint64) * np.uint64(GOLDEN)
    counters += np.uint64(base)
    return mix(counters)


def words(keys: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """The k-th 64-bit number of each key (`keys` and `k` broadcast together)."""
    keys = np.asarray(keys, dtype=np.uint64)
    if isinstance(k, int):  # a Python int: no numpy scalar arithmetic (it warns on wrap)
        return mix(keys + np.uint64(((k + 1) * GOLDEN) & _MASK))
    steps = np.asarray(k, dtype=np.uint64) + np.uint64(1)
    steps *= np.uint64(GOLDEN)
    return mix(keys + steps)


def uniforms(keys: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """The k-th number of each key as a float64 in [0, 1) (its top 53 bits)."""
    return (words(keys, k) >> np.uint64(11)).astype(np.float64) * _FLOAT
