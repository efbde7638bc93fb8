"""The room's ordered stream over real websockets: what a page that was away gets back
(take-downs and unpins too), sockets that only watch, whose pages may open a socket, how many
sockets one viewer or address may hold, and frames that are not text."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streaming import admission, live_sockets
from tests.conftest import assign_hosts
from tests.streaming.live import TIMEOUT, _frame, _join, _live_session, _nothing_more, _send


def _open(live_server: str, event_id: int, query: str = "", origin: str | None = None,
          host: bool = False) -> Any:
    url = live_server.replace("http://", "ws://") + f"/ws/events/{event_id}" + \
        ("/host" if host else "") + (f"?{query}" if query else "")
    return connect(url, open_timeout=TIMEOUT, origin=origin)  # type: ignore[arg-type]


def _closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as cut:
        while True:
            ws.recv(timeout=TIMEOUT)
    assert cut.value.rcvd is not None
    return cut.value.rcvd.code, cut.value.rcvd.reason


def _post(client: Any, event_id: int, n: int) -> dict[str, Any]:
    """A comment of a viewer of its own, published at once (post-moderation), as its page saw
    it."""
    viewer = _join(client, event_id, f"观众{n}")
    with _open(client.live_server, event_id, f"token={viewer['viewer_token']}") as ws:
        _frame(ws)
        _send(ws, f"第{n}条", client_id=f"c{n}")  # once: a second send would be paced
        while True:
            got = _frame(ws)
            if got["type"] == "comment" and got["text"] == f"第{n}条":
                return got
            # The earlier viewers' comments may come first (in the backlog, or live when their
            # flush came after this socket went live).
            assert got["type"] == "comment", got


@pytest.fixture
def room_client(client: Any, live_server: str) -> Any:
    client.live_server = live_server
    return client


def test_a_page_that_was_away_gets_take_downs_and_unpins_in_order(room_client, staff, db,
                                                                  live_server):
    """The review's reproduction: a host took down an approved message and unpinned another
    while a page was away; reconnecting after its last seq it hears both, in order, and the
    stream's positions have no hole."""
    client = room_client
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    first, second = _post(client, event_id, 1), _post(client, event_id, 2)
    assert host.post(f"/api/comments/{first['id']}/moderation",
                     json={"action": "pin"}).status_code == 200
    # The page saw everything up to here, then its phone lost the network.
    with _open(live_server, event_id, f"after={second['seq']}") as ws:
        assert _frame(ws)["pinned"] == [first["id"]]
        replayed = _frame(ws)  # the pin came after seq 2
        assert (replayed["type"], replayed["pinned"]) == ("pinned", True)
        seen_pos = replayed["pos"]
    assert host.post(f"/api/comments/{second['id']}/moderation",
                     json={"action": "reject"}).status_code == 200
    assert host.post(f"/api/comments/{first['id']}/moderation",
                     json={"action": "unpin"}).status_code == 200
    with _open(live_server, event_id, f"after={second['seq']}&pos={seen_pos}") as ws:
        hello = _frame(ws)
        assert hello["pinned"] == [] and hello["reset"] is False
        assert hello["last_pos"] == seen_pos + 2
        assert _frame(ws) == {"type": "removed", "id": second["id"], "pos": seen_pos + 1}
        assert _frame(ws) == {"type": "pinned", "id": first["id"], "pinned": False,
                              "pos": seen_pos + 2}
        _nothing_more(ws, 0.3)
    # A client that knows only its seq (DESIGN.md's after=SEQ) gets them too, in order.
    with _open(live_server, event_id, f"after={second['seq']}") as ws:
        _frame(ws)
        assert [(f["type"], f.get("pinned")) for f in (_frame(ws) for _ in range(3))] == \
            [("pinned", True), ("removed", None), ("pinned", False)]
    # Over HTTP too (what a page re-reads when it finds a hole, and its 15 s check); a comment
    # taken down since replays as its removal, its text not shown again.
    changes = client.get(f"/api/events/{event_id}/changes", params={"after": 0}).json()
    assert changes["last_pos"] == seen_pos + 2
    assert [f["pos"] for f in changes["frames"]] == list(range(1, seen_pos + 3))
    assert [f["type"] for f in changes["frames"]] == \
        ["comment", "removed", "pinned", "removed", "pinned"]
    assert "第2条" not in json.dumps(changes, ensure_ascii=False)


def test_a_socket_without_token_watches_and_may_not_send(room_client, staff, db, live_server):
    """A citizen who only watches sees comments and the viewer count without a nickname; a
    frame from their socket is `join_required`. A cookie of another room's join watches too."""
    client = room_client
    event_id = _live_session(staff, db, moderation="post")
    other_room = _live_session(staff, db, moderation="post")
    elsewhere = _join(client, other_room, "别处")
    with _open(live_server, event_id) as watcher:
        hello = _frame(watcher)
        assert hello["type"] == "hello" and hello["viewer"] is None
        assert _frame(watcher, counts=True) == {"type": "viewers", "count": 1}
        said = _post(client, event_id, 1)
        got = _frame(watcher)
        assert (got["type"], got["id"]) == ("comment", said["id"])
        _send(watcher, "我也想说")
        assert _frame(watcher)["code"] == "join_required"
    url = live_server.replace("http://", "ws://") + f"/ws/events/{event_id}"
    with connect(url, open_timeout=TIMEOUT, additional_headers={
            "Cookie": f"kaifang_viewer={elsewhere['viewer_token']}"}) as ws:
        assert _frame(ws)["viewer"] is None


def test_sockets_of_another_origin_are_refused(room_client, staff, db, live_server, settings):
    """Both sockets take a page of KAIFANG_PUBLIC_URL's origin or of the address the request
    was made to; another port of the same host, another scheme or another site is refused
    (4403 `origin`); a client that sends no Origin (not a browser) is let in."""
    client = room_client
    event_id = _live_session(staff, db, moderation="post")
    port = int(live_server.rsplit(":", 1)[1])
    for origin in (f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}",
                   "https://evil.example", "http://[::1", "http://[abc]"):  # not even URLs
        for host in (False, True):
            with _open(live_server, event_id, origin=origin, host=host) as ws:
                assert _closed_with(ws) == (4403, "origin"), origin
    for origin in (live_server, settings.public_url, None):
        with _open(live_server, event_id, origin=origin) as ws:
            assert _frame(ws)["type"] == "hello", origin
    assert client.get("/healthz").status_code == 200


def test_one_viewer_holds_few_sockets_and_counts_once(room_client, staff, db, live_server,
                                                     monkeypatch):
    """A viewer token opens at most PER_VIEWER sockets on a process, an address at most
    PER_ADDRESS (4429 past either); the room counts viewers, not sockets."""
    monkeypatch.setattr(admission, "PER_ADDRESS", 7)
    client = room_client
    event_id = _live_session(staff, db, moderation="post")
    token = _join(client, event_id, "多开")["viewer_token"]
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(_open(live_server, event_id, f"token={token}"))
                   for _ in range(admission.PER_VIEWER)]
        for ws in sockets:
            assert _frame(ws)["type"] == "hello"
        assert _frame(sockets[-1], counts=True) == {"type": "viewers", "count": 1}
        with _open(live_server, event_id, f"token={token}") as extra:
            assert _closed_with(extra) == (4429, "too_many_sockets")
        for _ in range(2):
            assert _frame(stack.enter_context(_open(live_server, event_id)))["type"] == "hello"
        with _open(live_server, event_id) as extra:  # 5 + 2 from this address
            assert _closed_with(extra) == (4429, "too_many_sockets")


def test_a_binary_frame_closes_the_socket_with_1003(room_client, staff, db, live_server):
    client = room_client
    event_id = _live_session(staff, db, moderation="post")
    token = _join(client, event_id, "二进制")["viewer_token"]
    for query in (f"token={token}", ""):
        with _open(live_server, event_id, query) as ws:
            _frame(ws)
            ws.send(b"\x00\x01binary")
            assert _closed_with(ws)[0] == 1003


def test_closing_a_socket_that_is_already_closed_is_quiet():
    """A slow reader cut off (1013) may be gone by then: uvicorn answers a second close with
    RuntimeError ("websocket.close after websocket.close"), which must not become a
    traceback in the log."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    class Gone:
        closes = 0

        async def close(self, code: int = 1000, reason: str = "") -> None:
            self.closes += 1
            raise RuntimeError("Unexpected ASGI message 'websocket.close', after sending "
                               "'websocket.close' or response already completed.")

    gone = Gone()
    with ThreadPoolExecutor(1) as pool:  # Playwright may keep a loop running in this thread
        pool.submit(asyncio.run, live_sockets._close(gone, 1013)).result()  # type: ignore[arg-type]
    assert gone.closes == 1
