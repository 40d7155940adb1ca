"""mitmproxy flow dumps (`mitmdump -w`) as `Exchange`s: HTTP flows only, streamed.

Owns reading a dump through mitmproxy's own reader and turning its failures into one-line errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from mitmproxy import http
from mitmproxy.exceptions import FlowReadException
from mitmproxy.io import FlowReader

from tracereplay.capture.exchange import Exchange, exchange_from_flow
from tracereplay.capture.importers.detect import read_head, sniff_format
from tracereplay.errors import UsageError

# FlowReader wraps what tnetstring parsing raises, but a well-formed tnetstring that is
# not a flow's state reaches mitmproxy's migration and set_state code, which fail with
# whatever they index or look up first.
_READ_ERRORS = (FlowReadException, ValueError, TypeError, KeyError, IndexError, AttributeError)


def iter_mitm(path: Path, *, on_skip: Callable[[str], None] | None = None) -> Iterator[Exchange]:
    """Every HTTP flow of the dump at `path` as an `Exchange`, in file order.

    TCP, UDP and DNS flows are skipped and reported to `on_skip` ("tcp flow", ...). A
    WebSocket flow is kept as its HTTP handshake; its messages are not HTTP exchanges. A
    flow saved before any response or error came (mitmdump stopped mid-request) gets the
    error "no response", as a HAR entry without one does. A file that is not a dump, or
    one cut short, is a `UsageError` naming the file and the index of the flow that failed.
    """
    head = read_head(path, 16)
    if not head:
        return  # mitmdump -w that saw no traffic writes an empty file
    if sniff_format(head) != "mitm":
        raise UsageError(f"{path}: not a mitmproxy flow dump")
    with path.open("rb") as handle:
        flows = iter(FlowReader(handle).stream())
        index = 0
        while True:
            try:
                flow = next(flows)
            except StopIteration:
                return
            except _READ_ERRORS as exc:
                raise UsageError(_read_error(path, index, exc)) from None
            index += 1
            if not isinstance(flow, http.HTTPFlow):
                if on_skip is not None:
                    on_skip(f"{flow.type} flow")
                continue
            exchange = exchange_from_flow(flow)
            if exchange.status is None and exchange.error is None:
                exchange.error = "no response"
            yield exchange


def _read_error(path: Path, index: int, exc: Exception) -> str:
    if isinstance(exc, FlowReadException):
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
    else:
        reason = "not a flow's state"
    if index == 0:
        return f"{path}: not a mitmproxy flow dump ({reason})"
    return f"{path}: flow {index}: truncated or corrupt ({reason})"
