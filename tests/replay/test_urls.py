"""The one outgoing-URL constructor: --host + a checked path; every form that could reach
another host is refused, and whatever is accepted parses to --host in the HTTP client too."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracereplay.replay.urls import (
    UnsafeUrlError,
    check_method,
    check_path,
    check_query,
    outgoing_url,
    parse_origin,
)

ORIGIN = parse_origin("http://127.0.0.1:8000")
# The replay's HTTP client reads URLs with geventhttpclient's parser; it is asked in a child
# process, as gevent must not be imported into the test process (see the demo's tests).
_CLIENT_PARSE = (
    "import json, sys\n"
    "from geventhttpclient.url import URL\n"
    "print(json.dumps([[u.scheme, u.host, u.port] for u in map(URL, json.load(sys.stdin))]))"
)


def client_origins(urls: list[str]) -> list[tuple[str, str, int]]:
    """(scheme, host, port) of each URL as geventhttpclient reads it."""
    done = subprocess.run([sys.executable, "-c", _CLIENT_PARSE], input=json.dumps(urls),
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return [tuple(item) for item in json.loads(done.stdout)]  # type: ignore[misc]


OTHER = "127.0.0.1:18003"
# Each of these, sent by a naive "base + path", reaches OTHER or leaves the path.
UNSAFE_PATHS = [
    f"http://{OTHER}/api/items",
    f"HTTP://{OTHER}/api/items",
    f"hTtPs://{OTHER}/api/items",
    f"@{OTHER}/api/items",
    f":@{OTHER}/api/items",
    f"//{OTHER}/api/items",
    f"/\\{OTHER}/api/items",
    f"\\\\{OTHER}/api/items",
    f"/%2F{OTHER}/api/items",
    f"/%2f%2F{OTHER}/api/items",
    f"/%252F{OTHER}/api/items",
    f"/%5C{OTHER}/api/items",
    f" /api/items@{OTHER}",
    f"/api/items\r\nHost: {OTHER}",
    f"/api/items\tx@{OTHER}",
    "api/items",
    "",
    None,
    42,
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_paths_are_refused_naming_where(path: object) -> None:
    with pytest.raises(UnsafeUrlError, match="endpoint 'GET x': template"):
        check_path(path, "endpoint 'GET x': template")


@pytest.mark.parametrize(
    "path",
    ["/", "/api/v1/clients/", "/api/items/{item_id}", "/files/my%20doc", "/users/@me",
     "/a/http://b", "/caf\u00e9", "/x;y=1", "/api/items%2F3"],
)  # fmt: skip
def test_plain_paths_pass_and_stay_on_the_host(path: str) -> None:
    assert check_path(path, "t") == path
    url = outgoing_url(ORIGIN, path, "a=1&b=%2F")
    assert url.text == f"http://127.0.0.1:8000{path}?a=1&b=%2F"
    assert client_origins([url.text]) == [("http", "127.0.0.1", 8000)]


def test_outgoing_url_refuses_what_check_path_refuses() -> None:
    for path in UNSAFE_PATHS:
        with pytest.raises(UnsafeUrlError):
            outgoing_url(ORIGIN, path, None)  # type: ignore[arg-type]
    with pytest.raises(UnsafeUrlError, match="control character"):
        outgoing_url(ORIGIN, "/x", "a=1\r\nHost: evil")


_URLISH = st.sampled_from(["/", "//", "@", ":", "\\", "%2F", "%5c", "http://", "HTTP:", "?", "#",
                           "127.0.0.1:18003", "\r\n", "\t", " "])  # fmt: skip


_PIECES = st.lists(st.one_of(_URLISH, st.text(string.ascii_letters + "%:@/._-", max_size=6),
                            st.text(max_size=3)), max_size=8).map("".join)  # fmt: skip
_PATHS = _PIECES | _PIECES.map(lambda text: "/" + text)  # half of them look like paths


def test_whatever_is_accepted_goes_to_the_host() -> None:
    """Property: any text either is refused, or becomes a URL that both urllib and the
    replay's HTTP client (geventhttpclient) read as --host."""
    accepted: list[str] = []

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(_PATHS, st.text(max_size=20))
    def check(path: str, query: str) -> None:
        try:
            url = outgoing_url(ORIGIN, path, query)
        except UnsafeUrlError:
            return
        parts = urlsplit(url.text)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", 8000)
        assert url.text.startswith("http://127.0.0.1:8000/")
        accepted.append(url.text)

    check()
    assert len(accepted) >= 30  # the property was tried on URLs, not only on refusals
    assert set(client_origins(accepted)) == {("http", "127.0.0.1", 8000)}


@pytest.mark.parametrize(
    ("host", "says"),
    [("ftp://x", "want an http(s)"), ("http://u:p@127.0.0.1:1", "no user or password"),
     ("http://127.0.0.1:1/api", "no path"), ("http://127.0.0.1:99999", "not a URL"),
     ("127.0.0.1:8000", "want an http(s)"), ("http://", "want an http(s)"),
     ("http://127.0.0.1:1?x=1", "no path")],
)  # fmt: skip
def test_bad_host_is_refused(host: str, says: str) -> None:
    with pytest.raises(UnsafeUrlError) as raised:
        parse_origin(host)
    assert says in str(raised.value)


def test_origin_keeps_the_given_base() -> None:
    origin = parse_origin("HTTPS://Example.test/")
    assert (origin.scheme, origin.host, origin.port) == ("https", "example.test", 443)
    assert outgoing_url(origin, "/x").text == "https://Example.test/x"


def test_methods_and_queries() -> None:
    assert check_method("PATCH", "t") == "PATCH"
    for bad in ("GET /x HTTP/1.1\r\nHost: evil", "", "GE T", None):
        with pytest.raises(UnsafeUrlError):
            check_method(bad, "t")
    assert check_query("", "t") is None and check_query(None, "t") is None
    assert check_query("a=b c", "t") == "a=b c"
