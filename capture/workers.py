"""The anonymizing worker process of a capture, and the session keys given back in order.

A worker turns `Exchange`s into rows with the anonymizer, a pure function of (policy, key);
the one thing that depends on earlier exchanges — which session a credential belongs to,
e.g. a token handed out by a login — is decided in the recorder, in submission order, by
`SessionOrder`, so rows anonymized by different workers still share their sessions.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Protocol

from tracereplay.trace import TraceRecord

from .anonymize.policy import Policy
from .exchange import Exchange, anonymizing

WORKER_NICENESS = 19
"""Workers yield the CPU to the proxy: a busy capture leaves exchanges out, never slows traffic."""

PARENT_POLL_S = 0.5
"""How often a worker checks that its capture is still there (see `_exit_with_parent`)."""

Credential = tuple[str, str]


@dataclass(frozen=True)
class Anonymized:
    """What a worker sends back for exchange `seq`: its row, or why there is none."""

    seq: int
    record: TraceRecord | None
    carried: Sequence[Credential] = ()
    """Credentials the (anonymized) request carries, strongest first."""
    yielded: Sequence[Credential] = ()
    """Credentials the (anonymized) response hands out."""
    client_addr: str | None = None
    error: str | None = None
    """Type name of the exception that stopped anonymizing (never its message)."""


class WorkerSpec(Protocol):
    """Picklable: builds, inside a worker process, the function that anonymizes."""

    def build(self) -> Callable[[int, Exchange], Anonymized]: ...


@dataclass(frozen=True)
class AnonymizerSpec:
    """The capture's anonymizer: policy and key (the key crosses a pipe, never a disk)."""

    policy: Policy
    key: bytes

    def __repr__(self) -> str:
        return "AnonymizerSpec(key=<hidden>)"

    def build(self) -> Callable[[int, Exchange], Anonymized]:
        from .anonymize.record import Anonymizer
        from .anonymize.sessions import request_credentials, response_credentials

        policy = self.policy
        to_record = anonymizing(Anonymizer(policy, self.key).record)

        def anonymize(seq: int, ex: Exchange) -> Anonymized:
            record = to_record(ex)
            carried = request_credentials(policy, record.req_headers, record.req_body)
            ok = record.status is not None and record.status < 400
            yielded = response_credentials(policy, record.resp_headers, record.resp_body)
            return Anonymized(seq, record, carried, yielded if ok else (), ex.client_addr)

        return anonymize

    def session_order(self) -> SessionOrder:
        return SessionOrder(self.key)


class SessionOrder:
    """Gives rows their session key in submission order (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        from .anonymize.pseudonyms import Pseudonymizer
        from .anonymize.sessions import SessionTracker, Sighting

        self._tracker = SessionTracker(Pseudonymizer(key))
        self._sighting = Sighting.of

    def apply(self, result: Anonymized) -> TraceRecord:
        assert result.record is not None
        record = result.record
        session = self._tracker.session_for(
            result.carried, result.yielded, result.client_addr, self._sighting(record)
        )
        if session == record.session:
            return record
        return replace(record, session=session)


def _exit_with_parent(parent: int) -> None:
    """End this process as soon as `parent` is no longer its parent (it died).

    The pipe's EOF ends an idle worker; one stuck inside an exchange never reads it. So a
    timer signal runs a check in the main thread every `PARENT_POLL_S`: the thread that
    holds the GIL runs signal handlers at once, where a watching thread could wait long for
    it at nice 19 on a busy machine. Not prctl(PR_SET_PDEATHSIG): that fires when the
    parent *thread* that started the worker ends, and the recorder starts replacement
    workers from its collector thread. (A worker stuck inside C code that holds the GIL
    would not run the check; the capture's own process group stop still reaches it.)
    """

    def check(signum: int, frame: object) -> None:
        if os.getppid() != parent:
            os._exit(1)  # nothing to flush: results only ever go to the parent

    signal.signal(signal.SIGALRM, check)
    signal.setitimer(signal.ITIMER_REAL, PARENT_POLL_S, PARENT_POLL_S)


def worker_main(spec: WorkerSpec, tasks: Connection, results: Connection, parent: int) -> None:
    """A worker process: anonymize the batches `tasks` brings (lists of `(seq, Exchange)`)
    until it ends (None or EOF); each batch's results go back as one list.

    Ignores SIGINT/SIGTERM (Ctrl-C reaches the whole process group; the recorder drains
    the workers itself) and exits when the parent's end of `tasks` closes or the process
    `parent` (the capture that started it) dies, so a capture killed with SIGKILL leaves
    no worker behind, even one stuck mid-exchange.
    """
    _exit_with_parent(parent)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    anonymize = spec.build()
    while True:
        try:
            batch = tasks.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        done = [_anonymize_one(anonymize, seq, exchange) for seq, exchange in batch]
        try:
            results.send(done)  # the batch's rows in one message: one wake-up in the parent
        except (OSError, EOFError):  # the capture is gone
            return


def _anonymize_one(
    anonymize: Callable[[int, Exchange], Anonymized], seq: int, exchange: Exchange
) -> Anonymized:
    try:
        return anonymize(seq, exchange)
    except Exception as exc:
        # Never the raw exchange, nor the message (it could quote raw data).
        return Anonymized(seq, None, error=type(exc).__name__)
