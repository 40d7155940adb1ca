"""Cookie header text: the (name, value) pairs of a Cookie header or of a Set-Cookie's
first part, as the model (finding correlations) and the replay (its cookie jar) read them.

The capture's anonymizer has its own splitter (capture/anonymize/headers.py): it rewrites
a header part by part and must keep even the parts that are not name=value.
"""

from __future__ import annotations

from collections.abc import Iterator


def cookie_pairs(header: str, *, unquote: bool = False) -> Iterator[tuple[str, str]]:
    """Each `name=value` of `header` (";"-separated), stripped; parts without a name or
    an "=" are skipped. `unquote` also drops the double quotes around a value
    (RFC 6265 allows them; the value a client sends back is what is inside)."""
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            value = value.strip()
            yield name.strip(), value.strip('"') if unquote else value
