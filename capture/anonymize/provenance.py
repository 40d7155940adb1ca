"""What a trace says about how it was anonymized, and the check before adding rows to it.

A trace records its policy's hash and a keyed fingerprint of the pseudonym key (scrypt of
the key: slow to guess from, and never the key). `--append` refuses another key or another
policy: their pseudonyms would not match the trace's (one email, two pseudonyms).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from tracereplay.errors import UsageError
from tracereplay.trace import TraceMetadata, open_trace
from tracereplay.trace.store import scan_directory

from .policy import Policy

_SALT = b"tracereplay key fingerprint v1"


def key_fingerprint(key: bytes) -> str:
    """16 hex digits that tell two keys apart without revealing either (scrypt: slow to
    guess from, ~0.1 s a try)."""
    return hashlib.scrypt(key, salt=_SALT, n=2**13, r=8, p=1, dklen=8).hex()


def check_append(existing: TraceMetadata, policy_hash: str, fingerprint: str) -> None:
    """UsageError unless rows made with this policy and key may join `existing`'s."""
    if existing.policy_hash != policy_hash:
        raise UsageError(
            f"--append: the trace was anonymized with policy {existing.policy_hash or '(none)'}, "
            f"not {policy_hash}: pseudonyms would not match; use the same policy or a new --out"
        )
    if existing.key_fingerprint != fingerprint:
        told = "another key" if existing.key_fingerprint else "a key it did not record"
        raise UsageError(
            f"--append: the trace was anonymized with {told}: pseudonyms would not match; "
            "use the same --key-file / $TRACEREPLAY_KEY or a new --out"
        )


def trace_metadata(
    out: Path, source: str, policy: Policy, key: bytes, *, append: bool
) -> TraceMetadata:
    """The metadata of rows written into `out`; with `append`, checked against the trace
    already there (UsageError when its policy or key differs)."""
    fingerprint = key_fingerprint(key)
    if append and out.is_dir() and any(scan_directory(out)):
        check_append(open_trace(out).metadata, policy.hash, fingerprint)
    return TraceMetadata(
        source=source,
        capture_start=datetime.now(UTC),
        policy_hash=policy.hash,
        key_fingerprint=fingerprint,
    )
