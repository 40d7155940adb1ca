"""Response headers that link past a reverse-proxy capture, straight to the target.

Apps build absolute links (`Location`, `Link`, `Content-Location`, Kinto's `Next-Page`)
from the Host header they receive. If the proxy sends the target's own address as Host,
those links name the target, and a client that follows one leaves the capture: its
requests are never recorded. `direct_link` finds such a header in one response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_DEFAULT_PORTS = {"http": 80, "https": 443}
# What may not follow the authority: more of a host name or a port.
_END = r"(?![\w.:-])"


@lru_cache(maxsize=16)
def _authority_pattern(host: str, port: int, scheme: str) -> re.Pattern[str]:
    name = f"[{host}]" if ":" in host else host  # IPv6 literal
    port_part = f":{port}"
    if _DEFAULT_PORTS.get(scheme) == port:
        port_part = f"(?::{port})?"  # http://target/ and http://target:80/ alike
    return re.compile(rf"//{re.escape(name)}{port_part}{_END}", re.IGNORECASE)


def direct_link(
    headers: Iterable[tuple[str, str]], host: str, port: int, scheme: str = "http"
) -> str | None:
    """The name of the first header whose value holds a URL to `host:port`; None if none.

    Any header counts (a URL may hide in `Link: <…>`, `Refresh: 0; url=…` or an app's own
    header), so this looks for `//host:port` anywhere in the value, not only at its start.
    """
    pattern = _authority_pattern(host.lower(), port, scheme)
    for name, value in headers:
        if "//" in value and pattern.search(value):
            return name
    return None


def bypass_warning(header: str, target: str) -> str:
    """Why links to the target are a problem, and what to do about it (one line)."""
    return (
        f"a response's {header} header links to the target ({target}) directly, not through this "
        "proxy: clients that follow it bypass the capture. The app builds links from the "
        "Host it receives: keep the client's Host (tracereplay capture does unless "
        "--rewrite-host; mitmproxy: --set keep_host_header=true) or set the app's public URL."
    )
