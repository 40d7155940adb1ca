"""`Protection.protects` decides once per (endpoint, method) and per protection: the same
answers as the rule it keeps (replay/ownership.py)."""

from __future__ import annotations

from tracereplay.replay.ownership import DEFAULT_PROTECTED, Protection

LOGIN = "POST /auth/login"
CONFIGURE = "POST /clients/{client_id}/configure"
SYNC = "POST /clients/{client_id}/sync"
PUT = "PUT /clients/{client_id}"


def test_protects_is_kept_per_endpoint_method_and_protection() -> None:
    default = Protection(stores_body=frozenset({CONFIGURE}), auth_endpoints=frozenset({LOGIN}))
    posts = Protection(methods=frozenset({"POST"}), auth_endpoints=frozenset({LOGIN}))
    for _ in range(2):  # the second round answers from what the first decided
        assert default.protects(PUT, "PUT") and default.protects(PUT, "put")
        assert default.protects(CONFIGURE, "POST")  # stores its body: an update
        assert not default.protects(SYNC, "POST")  # an action: live ids, not protected
        assert not default.protects(PUT, "GET")  # same endpoint, another method
        assert not default.protects(LOGIN, "POST") and not posts.protects(LOGIN, "POST")
        assert posts.protects(SYNC, "POST")  # --protect POST, the same endpoint
        assert not posts.protects(PUT, "PUT")
    assert default.methods == DEFAULT_PROTECTED
    assert default == Protection(
        stores_body=frozenset({CONFIGURE}), auth_endpoints=frozenset({LOGIN})
    )
