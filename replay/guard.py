"""What keeps a Locust child of `tracereplay replay` from outliving its parent or leaking a
credential: a watchdog on the parent process, and a filter that blanks every --credentials
value in what Locust logs. Runs inside the Locust processes (gevent loaded).
"""

from __future__ import annotations

import logging
import os
import signal

from gevent import monkey

from .credentials import scrub

PARENT_POLL_S = 0.2
HARD_EXIT_AFTER_S = 5.0
"""After asking itself to stop (SIGTERM: Locust's own shutdown, writers closed), a child
whose parent is gone exits this much later whatever it is doing."""

_SECRETS: set[str] = set()


def watch_parent(parent_pid: int) -> None:
    """Stop this process when `parent_pid` is no longer its parent (killed, even with
    SIGKILL). An OS thread, not a greenlet: a busy gevent loop cannot delay it."""
    start_thread = monkey.get_original("_thread", "start_new_thread")
    sleep = monkey.get_original("time", "sleep")

    def watch() -> None:
        while os.getppid() == parent_pid:
            sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
        sleep(HARD_EXIT_AFTER_S)
        os._exit(128 + signal.SIGKILL)

    start_thread(watch, ())


def hide_secrets(secrets: frozenset[str]) -> None:
    """From now on, every log record of this process has `secrets` blanked (message and
    traceback), whichever handler writes it."""
    _SECRETS.update(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Scrub) for f in handler.filters):
            handler.addFilter(_Scrub())


class _Scrub(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        secrets = frozenset(_SECRETS)
        record.msg, record.args = scrub(record.getMessage(), secrets), ()
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, scrub(text, secrets)
        return True
