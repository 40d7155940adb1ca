"""Fixtures for the sandbox target tests: an API client and signed-in sessions.

The target itself (`sandbox_target`) comes from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.demo.target_api import Session, api_client, sign_in
from tests.servers import SandboxTarget


@pytest.fixture(scope="session")
def http(sandbox_target: SandboxTarget) -> Iterator[httpx.Client]:
    """A cookie-less client for the shared target (paths relative to its root)."""
    with api_client(sandbox_target) as client:
        yield client


@pytest.fixture(scope="session")
def admin(sandbox_target: SandboxTarget, http: httpx.Client) -> Session:
    """The first admin, signed in with a bearer token."""
    return sign_in(http, sandbox_target.account("admin"))


@pytest.fixture(scope="session")
def client_user(sandbox_target: SandboxTarget, http: httpx.Client) -> Session:
    """The first client user (bound to one client), signed in with a bearer token."""
    return sign_in(http, sandbox_target.account("client"))
