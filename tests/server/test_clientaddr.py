"""Who the client is behind a proxy: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.clientaddr import TrustedProxies, client_address
from tests.conftest import PASSWORD, make_user

DEFAULT = TrustedProxies("127.0.0.1")


@pytest.mark.parametrize("peer, forwarded, trusted, expected", [
    ("127.0.0.1", "203.0.113.7", DEFAULT, "203.0.113.7"),
    # The right-most hop that is not a trusted proxy: what the client put first is not trusted.
    ("127.0.0.1", "6.6.6.6, 203.0.113.7", DEFAULT, "203.0.113.7"),
    ("127.0.0.1", "203.0.113.7, 10.0.0.2", TrustedProxies("127.0.0.1, 10.0.0.0/8"),
     "203.0.113.7"),
    # From anyone else the header is the client's own claim: the peer counts.
    ("198.51.100.9", "203.0.113.7", DEFAULT, "198.51.100.9"),
    ("127.0.0.1", None, DEFAULT, "127.0.0.1"),
    ("::1", "2001:db8::5", TrustedProxies("::1"), "2001:db8::5"),
    ("10.1.2.3", "203.0.113.7", TrustedProxies("*"), "203.0.113.7"),
    (None, "203.0.113.7", DEFAULT, "unknown"),
])
def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy(peer, forwarded, trusted,
                                                                    expected):
    assert client_address(peer, forwarded, trusted) == expected


@pytest.mark.parametrize("host, trusted", [
    ("10.200.3.4", True), ("11.0.0.1", False), ("127.0.0.1", True),
    # However an address is written, it is the same address.
    ("0:0:0:0:0:0:0:1", True), ("fd12::5", True), ("fe80::1%eth0", False),
    ("010.1.1.1", False), ("256.1.1.1", False), ("::ffff:10.0.0.1", False), ("nginx", True),
    ("proxy", False),
])
def test_a_trusted_proxy_is_recognised_however_its_address_is_written(host, trusted):
    assert (host in TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8, nginx")) is trusted


def test_behind_a_trusted_proxy_sign_in_failures_count_per_citizen(settings, db):
    make_user(db, "jiaowei.editor", "editor", "education")
    app = create_app(settings.model_copy(update={"trusted_proxies": "testclient"}))
    with TestClient(app) as proxy:
        def sign_in(via: str, password: str) -> int:
            return proxy.post("/api/session", headers={"X-Forwarded-For": via},
                              json={"username": "jiaowei.editor", "password": password}
                              ).status_code

        for _ in range(settings.login_max_failures):
            assert sign_in("203.0.113.66", "guess") == 401
        assert sign_in("203.0.113.66", PASSWORD) == 429
        # Someone else behind the same proxy is not locked out by that address.
        assert sign_in("198.51.100.7", PASSWORD) == 200
