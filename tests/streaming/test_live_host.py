"""The hosts' side of the live room over real websockets: the console's socket (the queue as it
changes, on every process), replies shown as 官方回复, the room's rules (close and reopen, slow
mode, pre- and post-moderation while it runs), pins, per-address limits and a long backlog."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlmodel import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from events.models import AuditEntry
from events.timeutil import utcnow
from server.access_log import SocketLineFilter
from server.app import create_app
from server.cli import serve_log_config
from streaming import protocol, room, stream
from streaming.models import Viewer
from tests.conftest import REDIS_URL, assign_hosts, serve
from tests.helpers import registered
from tests.streaming.live import (
    TIMEOUT,
    _frame,
    _host_socket,
    _join,
    _live_session,
    _nothing_more,
    _send,
    _socket,
    approved_backlog,
)


def _actions(db, event_id):
    db.expire_all()
    return [entry.action for entry in db.exec(select(AuditEntry).where(
        AuditEntry.entity_id == event_id, AuditEntry.entity == "event")
        .order_by(AuditEntry.id))]


def test_the_hosts_queue_changes_at_once_for_every_host(client, staff, db, live_server):
    event_id = _live_session(staff, db)
    first, second = staff("host"), staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "居民")
    with _host_socket(live_server, event_id, first) as one, \
            _host_socket(live_server, event_id, second) as two, \
            _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        for host_ws in (one, two):
            hello = _frame(host_ws)
            assert hello["type"] == "hello" and hello["moderation"] == "pre" and hello["open"]
        _frame(ws)
        _send(ws, "路灯坏了", client_id="a")
        held = _frame(ws)
        for host_ws in (one, two):  # both queues show it, with whom to ban
            queued = _frame(host_ws)
            assert queued["type"] == "queued"
            assert (queued["message"]["id"], queued["message"]["text"],
                    queued["message"]["viewer_id"]) == (held["id"], "路灯坏了",
                                                        viewer["viewer_id"])
        assert first.post(f"/api/comments/{held['id']}/moderation",
                          json={"action": "approve"}).status_code == 200
        for host_ws in (one, two):  # it leaves every queue, and shows as approved
            got = [_frame(host_ws), _frame(host_ws)]
            assert {"type": "decided", "id": held["id"], "state": "approved"} in got
            assert any(frame["type"] == "comment" and frame["seq"] == 1 for frame in got)
        late = second.post(f"/api/comments/{held['id']}/moderation", json={"action": "approve"})
        assert late.status_code == 409 and late.json()["error"] == "already_handled"
        _nothing_more(two)


def test_the_host_socket_is_for_hosts_of_the_session_from_our_own_pages(client, staff, db,
                                                                        live_server):
    event_id = _live_session(staff, db)
    host = staff("host")
    assign_hosts(db, event_id)
    outsider = staff("editor", "health")
    for who, code in ((client, 4401), (outsider, 4403)):
        with _host_socket(live_server, event_id, who) as ws, \
                pytest.raises(ConnectionClosed) as cut:
            ws.recv(timeout=TIMEOUT)
        assert cut.value.rcvd is not None and cut.value.rcvd.code == code
    with _host_socket(live_server, event_id, host, origin="https://evil.example") as ws, \
            pytest.raises(ConnectionClosed) as cut:
        ws.recv(timeout=TIMEOUT)
    assert cut.value.rcvd is not None and cut.value.rcvd.reason == "origin"
    with _host_socket(live_server, event_id, host, origin=live_server) as ws:
        assert _frame(ws)["type"] == "hello"
        ws.send("{}")  # the host socket only listens
        assert _frame(ws)["code"] == protocol.BAD_MESSAGE


def test_a_host_reply_shows_as_the_units_answer_after_what_it_answers(client, staff, db,
                                                                      live_server):
    event_id = _live_session(staff, db)
    host = staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "提问人")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        hello = _frame(ws)
        _send(ws, "什么时候修路？", client_id="q", video_time=42.5)
        held = _frame(ws)
        replied = host.post(f"/api/comments/{held['id']}/replies",
                            json={"text": "下月开工 <b>谢谢</b>"})
        assert replied.status_code == 201, replied.text
        asked, answer = _frame(ws), _frame(ws)
    assert (asked["seq"], asked["id"], asked["kind"]) == (1, held["id"], "comment")
    assert (answer["seq"], answer["kind"], answer["reply_to"], answer["text"]) == \
        (2, "reply", held["id"], "下月开工 <b>谢谢</b>")
    assert answer["author"] and answer["author"] != hello["viewer"]["nickname"]
    assert answer["video_time"] == 42.5  # replayed right after the question
    assert "live.reply" in _actions(db, event_id)
    rejected = _join(client, event_id, "另一人")
    with _socket(live_server, event_id, rejected["viewer_token"]) as ws:
        _frame(ws), _frame(ws), _frame(ws)
        _send(ws, "无关内容", client_id="r")
        other = _frame(ws)
    host.post(f"/api/comments/{other['id']}/moderation", json={"action": "reject"})
    late = host.post(f"/api/comments/{other['id']}/replies", json={"text": "好"})
    assert late.status_code == 409
    citizen = client.post(f"/api/comments/{held['id']}/replies", json={"text": "冒充"})
    assert citizen.status_code == 401


def test_hosts_close_reopen_and_switch_the_room_while_it_runs(client, staff, db, live_server):
    event_id = _live_session(staff, db)
    host = staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "观众")
    assert client.get(f"/api/events/{event_id}/room").json() == {
        "open": True, "closed": False, "moderation": "pre", "slow_mode_s": 0}
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)
        closed = host.put(f"/api/events/{event_id}/room", json={"closed": True})
        assert closed.status_code == 200 and closed.json()["open"] is False
        assert _frame(ws) == {"type": "room", "open": False, "closed": True,
                              "moderation": "pre", "slow_mode_s": 0}
        _send(ws, "还能说吗", client_id="a")
        assert _frame(ws)["code"] == protocol.CLOSED
        host.put(f"/api/events/{event_id}/room", json={"closed": False, "moderation": "post"})
        assert _frame(ws)["moderation"] == "post"
        _send(ws, "现在直接发出", client_id="b")
        shown = _frame(ws)
        assert (shown["type"], shown["text"]) == ("comment", "现在直接发出")
    assert _actions(db, event_id).count("live.room") == 2
    for bad in ({"slow_mode_s": -1}, {"slow_mode_s": 10**6}, {"moderation": "none"}):
        assert host.put(f"/api/events/{event_id}/room", json=bad).status_code == 422
    assert staff("editor", "health").put(f"/api/events/{event_id}/room",
                                         json={"closed": True}).status_code == 403
    assert client.put(f"/api/events/{event_id}/room", json={"closed": True}).status_code == 401


def test_slow_mode_spaces_each_viewers_messages(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    assert host.put(f"/api/events/{event_id}/room",
                    json={"slow_mode_s": 30}).json()["slow_mode_s"] == 30
    viewer = db.get(Viewer, _join(client, event_id, "快嘴")["viewer_id"])
    start = utcnow()
    room.send(db, viewer, protocol.Sent("comment", "第一条", "1", None), now=start)
    with pytest.raises(Exception) as refused:  # 10 s later: still inside the 30 s
        room.send(db, viewer, protocol.Sent("comment", "第二条", "2", None),
                  now=start + timedelta(seconds=10))
    assert refused.value.code == protocol.RATE_LIMITED  # type: ignore[attr-defined]
    db.rollback()
    room.send(db, viewer, protocol.Sent("comment", "第二条", "2", None),
              now=start + timedelta(seconds=31))


def test_one_address_cannot_flood_the_room_under_many_nicknames(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    start = utcnow()
    viewers = [db.get(Viewer, _join(client, event_id, f"马甲{i}")["viewer_id"])
               for i in range(room.ADDRESS_MESSAGES + 1)]
    for number, viewer in enumerate(viewers[:-1]):
        room.send(db, viewer, protocol.Sent("comment", f"刷屏{number}", "", None),
                  now=start, sender_key="same")
    with pytest.raises(Exception) as refused:
        room.send(db, viewers[-1], protocol.Sent("comment", "再刷", "", None), now=start,
                  sender_key="same")
    assert refused.value.code == protocol.RATE_LIMITED  # type: ignore[attr-defined]
    db.rollback()
    room.send(db, viewers[-1], protocol.Sent("comment", "别处的人", "", None), now=start,
              sender_key="elsewhere")
    room.send(db, viewers[-1], protocol.Sent("comment", "十秒后", "", None),
              now=start + room.ADDRESS_WINDOW + timedelta(seconds=3), sender_key="same")
    db.commit()
    # Joining is limited per address too (the test client's address is always the same).
    for number in range(room.ADDRESS_JOINS - len(viewers)):
        _join(client, event_id, f"再来{number}")
    flooded = client.post(f"/api/events/{event_id}/viewers", json={"nickname": "还来"})
    assert flooded.status_code == 429 and flooded.json()["error"] == protocol.RATE_LIMITED


def test_pins_and_unpins_reach_the_room_and_a_late_comer_knows_them(client, staff, db,
                                                                    live_server):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "观众")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        assert _frame(ws)["pinned"] == []
        _send(ws, "置顶这条", client_id="p")
        message = _frame(ws)
        host.post(f"/api/comments/{message['id']}/moderation", json={"action": "pin"})
        assert _frame(ws) == {"type": "pinned", "id": message["id"], "pinned": True,
                              "pos": message["pos"] + 1}
    with _socket(live_server, event_id, viewer["viewer_token"], after=1) as ws:
        assert _frame(ws)["pinned"] == [message["id"]]
        assert _frame(ws)["pos"] == message["pos"] + 1  # the pin, replayed after seq 1
        host.post(f"/api/comments/{message['id']}/moderation", json={"action": "unpin"})
        assert _frame(ws) == {"type": "pinned", "id": message["id"], "pinned": False,
                              "pos": message["pos"] + 2}


def test_a_long_backlog_is_paged_and_a_late_comer_gets_the_last_page(client, staff, db,
                                                                     live_server):
    """More approved messages than one page: a page that opens the room gets the last
    LAST_PAGE of them and the seq to page back from; one that reconnects after a position
    gets what it missed, in order; one too far behind gets the last page again (`reset`)."""
    event_id = _live_session(staff, db, moderation="post")
    total = stream.LAST_PAGE + stream.REPLAY_MAX + 37
    approved_backlog(db, event_id, total)
    viewer = _join(client, event_id, "迟到者")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        hello = _frame(ws)
        assert (hello["last_seq"], hello["reset"]) == (total, True)
        first = total - stream.LAST_PAGE + 1
        assert hello["first_seq"] == first
        seqs = [_frame(ws)["seq"] for _ in range(stream.LAST_PAGE)]
        _nothing_more(ws, 0.3)
    assert seqs == list(range(first, total + 1))
    older = client.get(f"/api/events/{event_id}/comments", params={"before": first,
                                                                   "limit": 100}).json()
    assert [m["seq"] for m in older] == list(range(first - 100, first))
    behind = total - 300
    with _socket(live_server, event_id, viewer["viewer_token"], after=behind) as ws:
        assert _frame(ws)["reset"] is False
        assert [_frame(ws)["seq"] for _ in range(300)] == list(range(behind + 1, total + 1))
        _nothing_more(ws, 0.3)
    with _socket(live_server, event_id, viewer["viewer_token"], after=5) as ws:
        assert _frame(ws)["reset"] is True  # further behind than REPLAY_MAX: the last page
        assert _frame(ws)["seq"] == first


@pytest.mark.skipif(not REDIS_URL, reason="fan-out between processes needs KAIFANG_TEST_REDIS_URL")
def test_a_host_on_another_process_sees_the_queue_change(client, staff, db, settings,
                                                         live_server):
    event_id = _live_session(staff, db)
    host = staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "这边")
    with serve(create_app(settings)) as other_server, \
            _host_socket(other_server, event_id, host) as there, \
            _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(there), _frame(ws)
        _send(ws, "跨进程", client_id="x")
        held = _frame(ws)
        assert _frame(there)["message"]["id"] == held["id"]
        assert host.post(f"/api/comments/{held['id']}/moderation",
                         json={"action": "reject"}).status_code == 200
        frame = _frame(there)
        if frame["type"] == "removed":  # the room's word to the sender's page comes first
            assert frame == {"type": "removed", "id": held["id"]}
            frame = _frame(there)
        assert frame == {"type": "decided", "id": held["id"], "state": "rejected"}


def test_the_servers_log_of_a_socket_carries_no_viewer_token(client, staff, db, live_server):
    """Uvicorn writes every websocket it accepts with its query string: `kaifang serve`'s log
    configuration strips it (and the address) from those lines."""
    assert serve_log_config()["loggers"]["uvicorn.error"]["filters"] == ["no_capabilities"]
    event_id = _live_session(staff, db, moderation="post")
    token = _join(client, event_id, "观众")["viewer_token"]
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    server_log = logging.getLogger("uvicorn.error")
    screen = SocketLineFilter()
    server_log.addFilter(screen)
    server_log.addHandler(capture)
    level = server_log.level
    server_log.setLevel(logging.INFO)
    try:
        with _socket(live_server, event_id, token) as ws:
            _frame(ws)
    finally:
        server_log.removeHandler(capture)
        server_log.removeFilter(screen)
        server_log.setLevel(level)
    accepted = [line for line in lines if "WebSocket" in line]
    assert accepted == [f'- - "WebSocket /ws/events/{event_id}" [accepted]']
    assert not any(token in line or "127.0.0.1" in line for line in lines)


def test_a_viewer_with_a_ticket_shows_as_registered(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post", live=False)
    ticket = registered(client, event_id)
    other_session = _live_session(staff, db, moderation="post", live=False)
    foreign = registered(client, other_session, phone="13900000002")
    assert staff("admin").post(f"/api/events/{event_id}/status",
                               json={"status": "live"}).status_code == 200
    for token in (foreign["manage_token"], "forged.token", ticket["code"]):
        refused = client.post(f"/api/events/{event_id}/viewers",
                              json={"nickname": "冒名", "manage_token": token})
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_ticket"
    joined = client.post(f"/api/events/{event_id}/viewers",
                         json={"nickname": "报了名的", "manage_token": ticket["manage_token"]})
    assert joined.status_code == 201
    anonymous = _join(client, event_id, "路过的")
    with _socket(live_server, event_id, anonymous["viewer_token"]) as ws:
        assert _frame(ws)["viewer"]["registered"] is False
    with _socket(live_server, event_id, joined.json()["viewer_token"]) as ws:
        assert _frame(ws)["viewer"]["registered"] is True
        _send(ws, "我报名了", client_id="r")
        said = _frame(ws)
    assert said["registered"] is True and said["author"] == "报了名的"
    assert client.get(f"/api/events/{event_id}/comments").json()[0]["registered"] is True
    # The ticket's page leaves a cookie for the room (never the manage token itself).
    page = client.get(f"/tickets/{ticket['manage_token']}")
    cookie = page.cookies.get(room.ticket_cookie(event_id))
    assert cookie and ticket["manage_token"] not in cookie
    again = client.post(f"/api/events/{event_id}/viewers", json={"nickname": "从票面来"})
    assert again.status_code == 201
    with _socket(live_server, event_id, again.json()["viewer_token"]) as ws:
        assert _frame(ws)["viewer"]["registered"] is True
    client.delete(f"/api/registrations/{ticket['manage_token']}")
    cancelled = client.post(f"/api/events/{event_id}/viewers",
                            json={"nickname": "取消了", "manage_token": ticket["manage_token"]})
    assert cancelled.status_code == 422
    # A cancelled registration's cookie no longer counts, and does not stop the viewer joining.
    late = client.post(f"/api/events/{event_id}/viewers", json={"nickname": "取消后"})
    with _socket(live_server, event_id, late.json()["viewer_token"]) as ws:
        assert _frame(ws)["viewer"]["registered"] is False


def test_a_host_takes_down_a_message_the_room_already_sees(client, staff, db, live_server):
    """Post-moderation: published at once, and removable; a second host finds it handled."""
    event_id = _live_session(staff, db, moderation="post")
    first, second = staff("host"), staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "观众")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)
        _send(ws, "不当言论", client_id="x")
        shown = _frame(ws)
        taken = first.post(f"/api/comments/{shown['id']}/moderation", json={"action": "reject"})
        assert taken.status_code == 200
        assert _frame(ws) == {"type": "removed", "id": shown["id"], "pos": shown["pos"] + 1}
    again = second.post(f"/api/comments/{shown['id']}/moderation", json={"action": "reject"})
    assert again.status_code == 409 and again.json()["error"] == "already_handled"
    assert client.get(f"/api/events/{event_id}/comments").json() == []
    assert room.tally(db, event_id)["rejected"] == 1


def test_malformed_and_flooding_frames_get_an_error_and_the_socket_stays(client, staff, db,
                                                                          live_server):
    event_id = _live_session(staff, db, moderation="post")
    viewer = _join(client, event_id, "试探者")
    with _socket(live_server, event_id, viewer["viewer_token"], after=10**20) as ws:
        assert _frame(ws)["type"] == "hello"  # an `after` past any seq: nothing, no crash
        for bad in ("[" * 3000, '{"type":"comment","text":"\\ud800","client_id":"a"}',
                    '{"type":"comment","text":"hi","client_id":"\\u0000"}'):
            ws.send(bad)
            assert _frame(ws)["code"] == protocol.BAD_MESSAGE
        for _ in range(12):  # a flood: past the burst, refused before the database
            ws.send("{}")
        codes = [_frame(ws)["code"] for _ in range(12)]
        assert protocol.RATE_LIMITED in codes
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        assert _frame(ws)["type"] == "hello"  # still a viewer of the room
    url = live_server.replace("http://", "ws://") + f"/ws/events/{10**20}?token=x"
    with connect(url, open_timeout=TIMEOUT) as ws, pytest.raises(ConnectionClosed) as cut:
        ws.recv(timeout=TIMEOUT)
    assert cut.value.rcvd is not None and cut.value.rcvd.code == 4404


def test_one_address_cannot_flood_the_questions_either(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    asked = []
    for number in range(room.ADDRESS_MESSAGES + 1):
        token = _join(client, event_id, f"提问{number}")["viewer_token"]
        asked.append(client.post(f"/api/events/{event_id}/questions",
                                 json={"text": f"问题{number}", "viewer_token": token}))
    assert [a.status_code for a in asked[:-1]] == [201] * room.ADDRESS_MESSAGES
    assert asked[-1].status_code == 429 and asked[-1].json()["error"] == protocol.RATE_LIMITED
