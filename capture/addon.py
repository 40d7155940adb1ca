"""`TraceCapture`: the mitmproxy addon that records every exchange into an anonymized trace.

Use it embedded (`tracereplay capture`) or in your own mitmproxy:
    mitmdump -s capture/addon.py --set tracereplay_out=traces/NAME [--set tracereplay_policy=FILE]
Absolute imports only: mitmproxy loads this file as a script, outside its package.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from mitmproxy import ctx, exceptions, flowfilter, http
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy.mode_specs import ReverseMode

from tracereplay.capture.anonymize.policy import Policy, load_policy
from tracereplay.capture.anonymize.provenance import trace_metadata
from tracereplay.capture.anonymize.pseudonyms import load_key
from tracereplay.capture.exchange import exchange_from_flow
from tracereplay.capture.links import bypass_warning, direct_link
from tracereplay.capture.recorder import (
    DEFAULT_MAX_BACKLOG_BYTES,
    Recorder,
    RecorderStats,
    backlog_bytes,
)
from tracereplay.capture.workers import AnonymizerSpec
from tracereplay.errors import TraceReplayError
from tracereplay.trace import DEFAULT_FLUSH_INTERVAL_S, open_writer
from tracereplay.units import parse_size_bytes

logger = logging.getLogger(__name__)

KEY_ENV = "TRACEREPLAY_KEY"
_OPTIONS = (
    "tracereplay_out",
    "tracereplay_policy",
    "tracereplay_key_file",
    "tracereplay_flush_ms",
    "tracereplay_append",
    "tracereplay_filter",
    "tracereplay_workers",
    "tracereplay_max_backlog",
)
_SEEN = "tracereplay.recorded"


class TraceCapture:
    """Records each completed exchange and each transport error as one trace row."""

    def __init__(self) -> None:
        self.recorder: Recorder | None = None
        self.policy: Policy | None = None
        self.key_source = ""
        self.final_stats: RecorderStats | None = None
        self.direct_links = 0
        """Recorded responses with a header linking to the target directly (reverse mode)."""
        self.direct_link_header: str | None = None
        self._filter: flowfilter.TFilter | None = None
        self._lock = threading.Lock()

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "tracereplay_out", str | None, None,  # type: ignore[arg-type]  # mitmproxy takes Optional[str]
            "Trace directory to record into (traces/NAME); nothing is recorded without it.",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_policy", str | None, None,  # type: ignore[arg-type]  # mitmproxy takes Optional[str]
            "Anonymization policy (TOML); default: tracereplay's built-in policy.",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_key_file", str | None, None,  # type: ignore[arg-type]  # mitmproxy takes Optional[str]
            f"File holding the pseudonym key; default: ${KEY_ENV}, else a random key "
            "for this capture only.",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_flush_ms", int, round(DEFAULT_FLUSH_INTERVAL_S * 1000),
            "Milliseconds between writes of buffered rows to disk (at most this much is "
            "lost if the process is killed).",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_append", bool, False,
            "Add rows to an existing trace instead of refusing to touch it.",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_filter", str | None, None,  # type: ignore[arg-type]  # mitmproxy takes Optional[str]
            "Record only the flows matching this mitmproxy filter expression.",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_workers", int, 0,
            "Anonymizing worker processes; 0: the usable cores less one (at least one).",
        )  # fmt: skip
        loader.add_option(
            "tracereplay_max_backlog", str, f"{DEFAULT_MAX_BACKLOG_BYTES // 2**20}MiB",
            "Exchanges waiting to be anonymized may hold this much (e.g. 64MiB); beyond "
            "it, exchanges are left out and counted, so the proxy never slows down.",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        if not any(name in updated for name in _OPTIONS):
            return
        opts = ctx.options
        if opts.tracereplay_flush_ms <= 0:
            raise exceptions.OptionsError("tracereplay_flush_ms must be > 0")
        if opts.tracereplay_workers < 0:
            raise exceptions.OptionsError("tracereplay_workers must be >= 0")
        try:
            max_backlog = parse_size_bytes(opts.tracereplay_max_backlog)
        except TraceReplayError as exc:
            raise exceptions.OptionsError(f"tracereplay_max_backlog: {exc}") from None
        try:
            self._filter = (
                flowfilter.parse(opts.tracereplay_filter) if opts.tracereplay_filter else None
            )
        except ValueError as exc:
            raise exceptions.OptionsError(f"tracereplay_filter: {exc}") from None
        if not opts.tracereplay_out:
            if self.recorder is None:
                logger.warning("tracereplay: set tracereplay_out to record a trace")
            return
        try:
            self.start(
                Path(opts.tracereplay_out),
                policy_file=Path(opts.tracereplay_policy) if opts.tracereplay_policy else None,
                key_file=Path(opts.tracereplay_key_file) if opts.tracereplay_key_file else None,
                flush_interval_s=opts.tracereplay_flush_ms / 1000,
                append=opts.tracereplay_append,
                workers=opts.tracereplay_workers or None,
                max_backlog_bytes=max_backlog,
            )
        except TraceReplayError as exc:
            raise exceptions.OptionsError(str(exc)) from None

    def start(
        self,
        out: Path,
        *,
        policy_file: Path | None = None,
        key_file: Path | None = None,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        append: bool = False,
        workers: int | None = None,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        """Open the trace (closing any previous one); raises TraceReplayError on bad input."""
        policy = load_policy(policy_file)
        key, self.key_source = load_key(KEY_ENV, key_file)
        metadata = trace_metadata(out, "capture", policy, key, append=append)
        writer = open_writer(out, metadata, append=append, flush_interval_s=flush_interval_s)
        if self.key_source == "random":  # after the checks: a refused --out is one line
            logger.warning(
                "tracereplay: no key in $%s or a key file: pseudonyms are random for this "
                "capture and will not match another capture's",
                KEY_ENV,
            )
        spec = AnonymizerSpec(policy, key)
        try:
            recorder = Recorder(
                spec,
                writer,
                order=spec.session_order().apply,
                workers=workers,
                max_backlog_bytes=max_backlog_bytes,
            )
        except BaseException:
            writer.close()
            raise
        with self._lock:
            previous, self.recorder = self.recorder, recorder
            self.policy = policy
        if previous is not None:
            self.final_stats = previous.close()

    def stats(self) -> RecorderStats | None:
        recorder = self.recorder
        return recorder.stats() if recorder is not None else None

    # -- hooks: copy what a row needs, hand it over, let the flow go ------------------
    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if not flow.metadata.get(_SEEN):  # an error after the response was recorded
            self._record(flow)

    def _record(self, flow: http.HTTPFlow) -> None:
        recorder = self.recorder
        if recorder is None or (self._filter is not None and not self._filter(flow)):
            return
        flow.metadata[_SEEN] = True
        request, response = flow.request, flow.response
        bodies, headers = len(request.raw_content or b""), len(request.headers)
        if response is not None:
            bodies += len(response.raw_content or b"")
            headers += len(response.headers)
        size = backlog_bytes(bodies, len(request.path), headers)
        recorder.offer(size, lambda: exchange_from_flow(flow), flow.error is not None)
        mode = flow.client_conn.proxy_mode
        if response is not None and isinstance(mode, ReverseMode):
            self._check_links(response, mode)

    def _check_links(self, response: http.Response, mode: ReverseMode) -> None:
        """Count a response that links clients past the proxy; say so the first time."""
        host, port = mode.address
        name = direct_link(response.headers.items(multi=True), host, port, mode.scheme)
        if name is None:
            return
        self.direct_links += 1
        if self.direct_link_header is None:
            self.direct_link_header = name
            logger.warning("tracereplay: %s", bypass_warning(name, f"{host}:{port}"))

    def done(self) -> None:
        self.close()

    def close(self) -> RecorderStats | None:
        """Write everything recorded so far and close the trace."""
        with self._lock:
            recorder, self.recorder = self.recorder, None
        if recorder is not None:
            self.final_stats = recorder.close()
            if self.direct_link_header is not None:
                logger.warning(
                    "tracereplay: responses linking to the target directly: %d (first in "
                    "%s); requests that followed them went around the capture",
                    self.direct_links,
                    self.direct_link_header,
                )
        return self.final_stats


addons = [TraceCapture()]
