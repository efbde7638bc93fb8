"""The live room over real websockets (uvicorn on a port, the websockets client): the order,
nothing lost on reconnect, pre- and post-moderation, bans, and bad frames."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed

from server.app import create_app
from streaming import protocol
from tests.conftest import REDIS_URL, assign_hosts, serve
from tests.streaming.live import (
    TIMEOUT,
    _frame,
    _join,
    _live_session,
    _nothing_more,
    _send,
    _socket,
)


def test_post_moderation_reaches_every_viewer_in_order(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    first, second = _join(client, event_id, "老王"), _join(client, event_id, "小李")
    with _socket(live_server, event_id, first["viewer_token"]) as a, \
            _socket(live_server, event_id, second["viewer_token"]) as b:
        hello = _frame(a)
        assert (hello["type"], hello["moderation"], hello["last_seq"]) == ("hello", "post", 0)
        assert hello["viewer"]["nickname"] == "老王"
        _frame(b)
        _send(a, "<script>alert(1)</script> 电梯什么时候装？", video_time=12.5)
        for ws in (a, b):
            got = _frame(ws)
            assert (got["type"], got["seq"], got["author"], got["video_time"]) == \
                ("comment", 1, "老王", 12.5)
            assert got["text"] == "<script>alert(1)</script> 电梯什么时候装？"  # text, as sent
        _send(a, "太快了", client_id="c2")
        assert _frame(a) == {"type": "error", "code": "rate_limited",
                             "message": "wait a moment before the next message",
                             "retry_after_s": 2}  # the page says how long
        _send(b, "第二条")
        assert [_frame(ws)["seq"] for ws in (a, b)] == [2, 2]


def test_pre_moderation_holds_until_a_host_approves_and_a_reconnect_misses_nothing(
        client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="pre")
    host = staff("host")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "张阿姨")
    token = viewer["viewer_token"]
    with _socket(live_server, event_id, token) as ws:
        assert _frame(ws)["moderation"] == "pre"
        _send(ws, "停车难怎么解决？", client_id="q-1")
        held = _frame(ws)
        assert held["type"] == "held" and held["client_id"] == "q-1"
        queue = host.get(f"/api/events/{event_id}/comments", params={"state": "held"}).json()
        assert [m["id"] for m in queue] == [held["id"]]
        assert client.get(f"/api/events/{event_id}/comments").json() == []  # not yet public
        approved = host.post(f"/api/comments/{held['id']}/moderation", json={"action": "approve"})
        assert approved.status_code == 200 and approved.json()["seq"] == 1
        got = _frame(ws)
        assert (got["type"], got["seq"], got["text"]) == ("comment", 1, "停车难怎么解决？")
        twice = staff("admin").post(f"/api/comments/{held['id']}/moderation",
                                    json={"action": "approve"})
        assert (twice.status_code, twice.json()["error"]) == (409, "already_handled")
    # The phone dropped its connection; meanwhile a second message was approved.
    other = _join(client, event_id, "老赵")
    with _socket(live_server, event_id, other["viewer_token"]) as ws2:
        assert _frame(ws2)["last_seq"] == 1
        assert _frame(ws2)["seq"] == 1  # the backlog, from the start
        _send(ws2, "谢谢解答")
        second = _frame(ws2)
        assert second["type"] == "held"
    again = host.post(f"/api/comments/{second['id']}/moderation", json={"action": "approve"})
    assert again.status_code == 200, (second, again.text)
    with _socket(live_server, event_id, token, after=1) as ws:
        assert _frame(ws)["last_seq"] == 2
        assert _frame(ws)["seq"] == 2
        _nothing_more(ws)
    with _socket(live_server, event_id, token, after=0) as ws:
        _frame(ws)
        assert [_frame(ws)["seq"], _frame(ws)["seq"]] == [1, 2]
    listed = client.get(f"/api/events/{event_id}/comments", params={"after": 1}).json()
    assert [m["seq"] for m in listed] == [2]


def test_a_reconnect_with_after_gets_only_what_it_missed(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    writer = _join(client, event_id, "甲")
    with _socket(live_server, event_id, writer["viewer_token"]) as ws:
        _frame(ws)
        for n in range(3):
            _send(ws, f"第{n}条", client_id=str(n))
            assert _frame(ws)["seq"] == n + 1
            db.execute(text("UPDATE viewer SET last_message_at = NULL"))  # past the limit
            db.commit()
    reader = _join(client, event_id, "乙")
    with _socket(live_server, event_id, reader["viewer_token"], after=1) as ws:
        assert _frame(ws)["last_seq"] == 3
        assert [_frame(ws)["seq"], _frame(ws)["seq"]] == [2, 3]
        _nothing_more(ws)  # nothing twice


def test_bad_frames_keep_the_socket_usable(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    viewer = _join(client, event_id, "丙")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)
        for bad in ("not json", "[]", json.dumps({"type": "shout", "text": "x"}),
                    json.dumps({"type": "comment", "text": 5}),
                    json.dumps({"type": "comment", "text": "x", "video_time": "soon"})):
            ws.send(bad)
            got = _frame(ws)
            assert (got["type"], got["code"]) == ("error", protocol.BAD_MESSAGE)
        ws.send(json.dumps({"type": "comment", "text": "长" * 301, "client_id": "x"}))
        assert _frame(ws)["code"] == protocol.TOO_LONG
        _send(ws, "还能说话")
        assert _frame(ws)["seq"] == 1


def test_forged_or_foreign_tokens_and_closed_rooms(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    other_room = _live_session(staff, db, moderation="post")
    foreign = _join(client, other_room, "丁")["viewer_token"]
    for token in ("forged.token.value", foreign):
        with _socket(live_server, event_id, token) as ws, pytest.raises(ConnectionClosed) as cut:
            ws.recv(timeout=TIMEOUT)
        assert cut.value.rcvd is not None and cut.value.rcvd.code == 4401
    not_live = _live_session(staff, db, moderation="post", live=False)
    viewer = _join(client, not_live, "戊")
    with _socket(live_server, not_live, viewer["viewer_token"]) as ws:
        _frame(ws)
        _send(ws, "有人吗")
        assert _frame(ws)["code"] == protocol.CLOSED


def test_a_banned_viewer_disappears_everywhere(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    troll = _join(client, event_id, "捣乱者")
    watcher = _join(client, event_id, "观众")
    with _socket(live_server, event_id, troll["viewer_token"]) as bad, \
            _socket(live_server, event_id, watcher["viewer_token"]) as good:
        _frame(bad), _frame(good)
        _send(bad, "广告广告")
        message = _frame(good)
        _frame(bad)
        banned = host.post(f"/api/events/{event_id}/bans",
                           json={"viewer_id": troll["viewer_id"], "reason": "发布广告"})
        assert banned.status_code == 201 and banned.json()["removed"] == [message["id"]]
        for ws in (good, bad):
            assert _frame(ws) == {"type": "removed", "id": message["id"],
                                  "pos": message["pos"] + 1}
        db.execute(text("UPDATE viewer SET last_message_at = NULL"))
        db.commit()
        _send(bad, "再发一条", client_id="again")
        assert (_frame(bad)["code"]) == protocol.BANNED
    assert client.get(f"/api/events/{event_id}/comments").json() == []
    editor = staff("editor", "health")
    refused = editor.post(f"/api/events/{event_id}/bans",
                          json={"viewer_id": watcher["viewer_id"], "reason": "x"})
    assert refused.status_code == 403


@pytest.mark.skipif(not REDIS_URL, reason="fan-out between processes needs KAIFANG_TEST_REDIS_URL")
def test_two_app_processes_share_every_message_through_redis(client, staff, db, settings,
                                                             live_server):
    """A second app (its own broker, its own server) on the same database and Redis: a message
    sent to one reaches the viewers of the other, and a host's decision on one reaches both."""
    event_id = _live_session(staff, db, moderation="pre")
    host = staff("host")
    assign_hosts(db, event_id)
    second = create_app(settings)
    assert second.state.broker is not client.app.state.broker
    with serve(second) as other_server:
        here, there = _join(client, event_id, "这边"), _join(client, event_id, "那边")
        with _socket(live_server, event_id, here["viewer_token"]) as a, \
                _socket(other_server, event_id, there["viewer_token"]) as b:
            _frame(a), _frame(b)
            counts = []
            while 2 not in counts:  # one viewer on each process: the room counts both
                counts.append(_frame(a, counts=True).get("count"))
            _send(b, "从另一个进程发来", client_id="x")
            held = _frame(b)
            assert held["type"] == "held"
            assert host.post(f"/api/comments/{held['id']}/moderation",
                             json={"action": "approve"}).status_code == 200
            for ws in (a, b):
                got = _frame(ws)
                assert (got["seq"], got["text"]) == (1, "从另一个进程发来")


def test_blocked_words_are_refused_and_the_office_keeps_the_list(client, staff, db,
                                                                 live_server):
    event_id = _live_session(staff, db, moderation="post")
    admin = staff("admin")
    kept = admin.put("/api/live/blocked-words", json={"words": ["赌博", " 代开发票 ", "赌博"]})
    assert kept.status_code == 200 and kept.json() == {"words": ["代开发票", "赌博"]}
    assert staff("editor", "education").put("/api/live/blocked-words",
                                            json={"words": []}).status_code == 403
    viewer = _join(client, event_id, "路人")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)
        _send(ws, "专业代开发票，联系我")
        assert _frame(ws)["code"] == protocol.BLOCKED_WORD
        _send(ws, "请问办理流程？", client_id="ok")
        assert _frame(ws)["seq"] == 1
    assert admin.get("/api/live/blocked-words").json() == {"words": ["代开发票", "赌博"]}


def test_the_unit_exports_the_room_for_its_minutes(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="pre")
    host = staff("host")
    assign_hosts(db, event_id)
    ids = []
    for n, words in enumerate(["=HYPERLINK(\"http://evil\")", "第二条意见", "第三条"]):
        viewer = _join(client, event_id, f"市民{n}")
        with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
            _frame(ws)
            for _ in range(n):
                _frame(ws)  # the backlog so far
            _send(ws, words, client_id=str(n), video_time=10.0 * n)
            ids.append(_frame(ws)["id"])
        action = "reject" if n == 2 else "approve"
        host.post(f"/api/comments/{ids[-1]}/moderation", json={"action": action})
    export = staff("editor", "education").get(f"/api/events/{event_id}/comments.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert rows[:2] == [["已通过", "未通过", "待审核", "已移除"], ["2", "1", "0", "0"]]
    assert [row[:5] for row in rows[4:]] == [
        ["1", "comment", "市民0", "'=HYPERLINK(\"http://evil\")", "0.0"],  # never a formula
        ["2", "comment", "市民1", "第二条意见", "10.0"]]
    assert host.get(f"/api/events/{event_id}/comments.csv").status_code == 403


def test_the_room_says_how_many_watch(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    first, second = _join(client, event_id, "一"), _join(client, event_id, "二")
    with _socket(live_server, event_id, first["viewer_token"]) as a:
        assert _frame(a, counts=True)["type"] == "hello"
        assert _frame(a, counts=True) == {"type": "viewers", "count": 1}
        with _socket(live_server, event_id, second["viewer_token"]) as b:
            assert _frame(a, counts=True) == {"type": "viewers", "count": 2}
            assert _frame(b, counts=True)["type"] == "hello"
        assert _frame(a, counts=True) == {"type": "viewers", "count": 1}


def test_a_server_restart_loses_nothing(client, staff, db, settings):
    """The messages are rows: a page that reconnects to a restarted server with after= gets
    what was approved before the restart and while it was down, in order, once."""
    event_id = _live_session(staff, db, moderation="post")
    viewer = _join(client, event_id, "老用户")
    with serve(create_app(settings)) as first, \
            _socket(first, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)
        _send(ws, "重启前的留言", client_id="a")
        assert _frame(ws)["seq"] == 1
    # While it is down another process of the same service takes a message.
    other = _join(client, event_id, "另一人")
    with serve(create_app(settings)) as second, \
            _socket(second, event_id, other["viewer_token"]) as ws:
        _frame(ws), _frame(ws)
        _send(ws, "停机时的留言", client_id="b")
        assert _frame(ws)["seq"] == 2
    with serve(create_app(settings)) as restarted, \
            _socket(restarted, event_id, viewer["viewer_token"], after=1) as ws:
        hello = _frame(ws)
        assert hello["last_seq"] == 2
        got = _frame(ws)
        assert (got["seq"], got["text"]) == (2, "停机时的留言")
        _nothing_more(ws)


@pytest.mark.skipif(not REDIS_URL, reason="counts over processes need KAIFANG_TEST_REDIS_URL")
def test_a_process_that_died_stops_counting_its_viewers(client, staff, db, live_server):
    """A process that crashed left its count in Redis: without its heartbeat it counts no more."""
    import redis

    event_id = _live_session(staff, db, moderation="post")
    from streaming.broker import RedisBroker

    store = redis.Redis.from_url(REDIS_URL)
    names = RedisBroker(REDIS_URL)  # the keys are namespaced by the database number
    store.hset(f"{names.viewers_prefix}{event_id}", "a-process-that-died", 40)
    store.hset(f"{names.viewers_prefix}{event_id}", "a-process-alive", 2)
    store.set(f"{names.alive_prefix}a-process-alive", 1, ex=30)
    viewer = _join(client, event_id, "观众")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws, counts=True)
        assert _frame(ws, counts=True) == {"type": "viewers", "count": 3}
