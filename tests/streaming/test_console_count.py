"""The console's count of who watches shows at once: the host socket says how many watch when
it opens, not only when someone next joins or leaves (the page showed "–" until then)."""

from __future__ import annotations

from tests.conftest import assign_hosts
from tests.streaming.live import _frame, _host_socket, _join, _live_session, _socket


def test_the_host_socket_says_how_many_watch_when_it_opens(client, staff, db, live_server):
    event_id = _live_session(staff, db)
    host = staff("host")
    assign_hosts(db, event_id)
    with _host_socket(live_server, event_id, host) as empty:
        assert _frame(empty)["type"] == "hello"
        assert _frame(empty, counts=True) == {"type": "viewers", "count": 0}
    viewer = _join(client, event_id, "居民")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)  # in the room
        with _host_socket(live_server, event_id, host) as console:
            assert _frame(console)["type"] == "hello"
            assert _frame(console, counts=True) == {"type": "viewers", "count": 1}
