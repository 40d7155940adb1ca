"""The capture proxy loads only the mitmproxy addons it needs (run.proxy_addons)."""

from __future__ import annotations

from tracereplay.capture.run import proxy_addons


def _names() -> set[str]:
    return {type(addon).__name__ for addon in proxy_addons()}


def test_the_refusal_of_non_local_clients_and_the_proxy_server_stay() -> None:
    assert {"Core", "Block", "Proxyserver", "NextLayer", "TlsConfig"} <= _names()


def test_nothing_that_replays_rewrites_or_saves_flows_is_loaded() -> None:
    left_out = {
        "ClientPlayback",
        "ServerPlayback",
        "MapRemote",
        "MapLocal",
        "ModifyBody",
        "ModifyHeaders",
        "StickyCookie",
        "StickyAuth",
        "Save",
        "SaveHar",
        "ScriptLoader",
    }
    assert not (left_out & _names())
