"""Citizens' questions with votes, and the hosts' handling of them: the window, pre- and
post-moderation, votes (once each, also under concurrency and over the socket), the host
actions and their audit, who may act, bad input, and a question asked in the room's chat."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import event as sa_event
from sqlmodel import Session, select

from events.models import AuditEntry, Event, EventStatus
from server.db import get_engine
from streaming import questions
from streaming.models import LiveRoom, Viewer
from tests.conftest import assign_hosts, event_body, publish
from tests.streaming.live import (
    _ask,
    _frame,
    _frame_of,
    _join,
    _live_session,
    _nothing_more,
    _socket,
    _vote,
)

SCRIPT = "<script>alert(1)</script> 学区划片什么时候公布？"


def _public(client, event_id, sort="votes"):
    answer = client.get(f"/api/events/{event_id}/questions", params={"sort": sort})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _moderate(host, question_id, action, **extra):
    return host.post(f"/api/questions/{question_id}/moderation", json={"action": action, **extra})


def _cast(client, question_id, token):
    return client.post(f"/api/questions/{question_id}/votes", json={"viewer_token": token})


def _audited(db, prefix="question."):
    db.expire_all()
    return [entry.action for entry in db.exec(select(AuditEntry).order_by(AuditEntry.id))
            if entry.action.startswith(prefix)]


def test_pre_moderation_holds_a_question_until_a_host_approves_it(client, staff, db):
    event_id = _live_session(staff, db, moderation="pre")
    host, admin = staff("host"), staff("admin")
    assign_hosts(db, event_id)
    token = _join(client, event_id, "张阿姨")["viewer_token"]
    asked = _ask(client, event_id, token, "  停车难怎么解决？  ")
    assert asked.status_code == 201, asked.text
    question = asked.json()
    assert (question["state"], question["text"], question["author"], question["votes"]) == \
        ("held", "停车难怎么解决？", "张阿姨", 0)
    assert _public(client, event_id) == []  # the public does not see it yet
    assert client.get(f"/api/events/{event_id}/questions",
                      params={"state": "held"}).status_code == 404
    queue = host.get(f"/api/events/{event_id}/questions", params={"state": "held"}).json()
    assert [q["id"] for q in queue] == [question["id"]]

    approved = _moderate(host, question["id"], "approve")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert [q["text"] for q in _public(client, event_id)] == ["停车难怎么解决？"]
    for late in ("approve", "reject"):  # another host decided first
        twice = _moderate(admin, question["id"], late)
        assert (twice.status_code, twice.json()["error"]) == (409, "already_handled")

    rejected = _ask(client, event_id, _join(client, event_id, "广告")["viewer_token"], "加微信")
    assert _moderate(host, rejected.json()["id"], "reject").json()["state"] == "rejected"
    assert [q["author"] for q in _public(client, event_id)] == ["张阿姨"]
    assert _audited(db) == ["question.approve", "question.reject"]


def test_post_moderation_publishes_at_once_and_markup_stays_text(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    token = _join(client, event_id, "<b>老王</b>")["viewer_token"]
    asked = _ask(client, event_id, token, SCRIPT)
    assert (asked.status_code, asked.json()["state"]) == (201, "approved")
    listed = _public(client, event_id)
    assert [(q["text"], q["author"]) for q in listed] == [(SCRIPT, "<b>老王</b>")]
    assert set(listed[0]) >= {"id", "text", "author", "votes", "state", "answer",
                              "answered_at_video_time"}
    page = client.get(f"/events/{event_id}/live").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 学区划片" in page
    assert "<script>alert(1)</script>" not in page
    # The second question of the same viewer within 2 s is refused, as a second comment is.
    again = _ask(client, event_id, token, "还有一个问题")
    assert (again.status_code, again.json()["error"]) == (429, "rate_limited")
    too_long = _ask(client, event_id, _join(client, event_id, "乙")["viewer_token"], "长" * 301)
    assert (too_long.status_code, too_long.json()["error"]) == (422, "too_long")


def test_questions_are_taken_from_publication_until_the_end(client, staff, db):
    admin = staff("admin")
    now = datetime.now(UTC)
    draft = admin.post("/api/events", json=event_body(
        db, kind="chief_dialogue", mode="online", venue="", address="", moderation="post",
        starts_at=(now + timedelta(days=3)).isoformat(),
        ends_at=(now + timedelta(days=3, hours=2)).isoformat(),
        registration_opens_at=(now - timedelta(days=1)).isoformat(),
        registration_closes_at=(now + timedelta(days=2)).isoformat())).json()["id"]
    # Unpublished, the session does not exist for the public: nobody can join or ask.
    assert client.post(f"/api/events/{draft}/viewers",
                       json={"nickname": "早鸟"}).status_code == 404
    assert _ask(client, draft, "x", "能问吗").status_code == 404
    publish(admin, draft)
    token = _join(client, draft, "早鸟")["viewer_token"]
    # Collected before the session: three days ahead, the question is taken.
    early = _ask(client, draft, token, "老旧小区加装电梯的补贴标准？")
    assert (early.status_code, early.json()["state"]) == (201, "approved")

    found = db.get(LiveRoom, draft) or LiveRoom(event_id=draft)
    found.closed = True  # a host closed the room
    db.add(found)
    db.commit()
    other = _join(client, draft, "晚到")["viewer_token"]
    closed = _ask(client, draft, other, "还能问吗")
    assert (closed.status_code, closed.json()["error"]) == (409, "questions_closed")
    assert _cast(client, early.json()["id"], other).json()["error"] == "questions_closed"
    found.closed = False
    db.add(found)
    db.commit()
    assert _ask(client, draft, other, "还能问吗").status_code == 201

    late = _join(client, draft, "事后")["viewer_token"]
    session = db.get(Event, draft, populate_existing=True)
    session.ends_at = now - timedelta(minutes=1)  # its end has passed, still `published`
    db.add(session)
    db.commit()
    ended = _ask(client, draft, late, "结束了吗")
    assert (ended.status_code, ended.json()["error"]) == (409, "questions_closed")
    session.ends_at, session.status = now + timedelta(hours=1), EventStatus.ended
    db.add(session)
    db.commit()
    ended = _ask(client, draft, late, "结束了吗")
    assert (ended.status_code, ended.json()["error"]) == (409, "questions_closed")
    assert len(_public(client, draft)) == 2  # the list stays, for the answers


def test_votes_count_once_and_sort_the_list(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    tokens = [_join(client, event_id, name)["viewer_token"] for name in ("甲", "乙", "丙")]
    ids = [_ask(client, event_id, token, f"问题{n}").json()["id"]
           for n, token in enumerate(tokens)]
    for question_id, voters in ((ids[1], tokens[:2]), (ids[2], tokens[:1])):
        for token in voters:
            voted = _cast(client, question_id, token)
            assert voted.status_code == 201, voted.text
    again = _cast(client, ids[1], tokens[0])
    assert (again.status_code, again.json()["error"]) == (409, "already_voted")
    by_votes = _public(client, event_id)
    assert [(q["id"], q["votes"]) for q in by_votes] == [(ids[1], 2), (ids[2], 1), (ids[0], 0)]
    assert [q["id"] for q in _public(client, event_id, "new")] == ids[::-1]
    # Ties: the older first.
    fourth = _ask(client, event_id, _join(client, event_id, "丁")["viewer_token"], "问题3")
    assert _cast(client, fourth.json()["id"], tokens[2]).status_code == 201
    assert [q["id"] for q in _public(client, event_id)] == [ids[1], ids[2], fourth.json()["id"],
                                                           ids[0]]
    # The viewer cookie names the viewer too (the last join of this client: 丁).
    by_cookie = client.post(f"/api/questions/{ids[0]}/votes")
    assert by_cookie.status_code == 201 and by_cookie.json()["votes"] == 1
    assert {q["id"]: q["voted"] for q in _public(client, event_id)}[ids[0]] is True
    assert client.get(f"/api/events/{event_id}/questions",
                      params={"sort": "loudest"}).status_code == 422


def test_two_votes_at_once_count_once(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    asker = _join(client, event_id, "甲")["viewer_token"]
    question_id = _ask(client, event_id, asker, "并发投票").json()["id"]
    token = _join(client, event_id, "乙")["viewer_token"]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def vote() -> None:
        with httpx.Client(base_url=live_server, timeout=10) as http:
            start.wait()
            statuses.append(http.post(f"/api/questions/{question_id}/votes",
                                      json={"viewer_token": token}).status_code)

    threads = [threading.Thread(target=vote) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
    assert _public(client, event_id)[0]["votes"] == 1


def test_a_vote_over_the_socket_reaches_the_room(client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    other_room = _live_session(staff, db, moderation="post")
    foreign = _ask(client, other_room, _join(client, other_room, "外")["viewer_token"], "别处")
    asker, voter = _join(client, event_id, "甲"), _join(client, event_id, "乙")
    question_id = _ask(client, event_id, asker["viewer_token"], "能投票吗").json()["id"]
    with _socket(live_server, event_id, asker["viewer_token"]) as a, \
            _socket(live_server, event_id, voter["viewer_token"]) as b:
        _frame(a), _frame(b)
        _vote(b, question_id)
        for ws in (a, b):  # the count, in the room's batch of vote counts
            assert _frame_of(ws, "votes")["counts"] == {str(question_id): 1}
        _vote(b, question_id)
        assert _frame(b) == {"type": "error", "code": "already_voted",
                             "message": "you have voted for this question already"}
        for bad in (foreign.json()["id"], 2**31 - 1, 0, "1"):
            _vote(b, bad)
            got = _frame(b)
            assert (got["type"], got["code"]) == ("error", "bad_message"), bad
        _nothing_more(a)
    assert _public(client, event_id)[0]["votes"] == 1


def test_host_actions_answering_merge_and_the_official_answer(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    tokens = [_join(client, event_id, name)["viewer_token"] for name in ("甲", "乙", "丙")]
    q1, q2, q3 = (_ask(client, event_id, token, f"问题{n}").json()["id"]
                  for n, token in enumerate(tokens))
    for question_id, token in ((q1, tokens[0]), (q3, tokens[0]), (q3, tokens[1])):
        assert _cast(client, question_id, token).status_code == 201

    assert _moderate(host, q1, "shortlist").json()["state"] == "shortlisted"
    assert _moderate(host, q1, "answering").json()["state"] == "answering"
    assert _moderate(host, q2, "answering").json()["state"] == "answering"
    states = {q["id"]: q["state"] for q in _public(client, event_id)}
    assert states == {q1: "shortlisted", q2: "answering", q3: "approved"}  # one at a time
    answered = _moderate(host, q2, "answered", video_time=65.5)
    assert answered.json()["state"] == "answered"
    assert answered.json()["answered_at_video_time"] == 65.5
    late = _moderate(staff("admin"), q2, "answered")
    assert (late.status_code, late.json()["error"]) == (409, "already_handled")
    closed = _cast(client, q2, tokens[2])
    assert (closed.status_code, closed.json()["error"]) == (409, "not_votable")

    # q3 joins q1: its voters with it, 甲 (who voted for both) counted once.
    for wrong in ({}, {"into": q3}, {"into": 999_999}):
        refused = _moderate(host, q3, "merge", **wrong)
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_target"), wrong
    merged = _moderate(host, q3, "merge", into=q1)
    assert (merged.json()["state"], merged.json()["merged_into"]) == ("merged", q1)
    listed = {q["id"]: q for q in _public(client, event_id)}
    assert q3 not in listed and listed[q1]["votes"] == 2
    assert _cast(client, q1, tokens[1]).json()["error"] == "already_voted"
    assert _cast(client, q3, tokens[2]).status_code == 404  # no longer on the list

    written = host.put(f"/api/questions/{q1}/answer",
                       json={"text": "补贴标准见区住建委<a>通知</a>。"})
    assert written.status_code == 200, written.text
    listed = {q["id"]: q for q in _public(client, event_id)}
    assert (listed[q1]["answer"], listed[q1]["state"]) == ("补贴标准见区住建委<a>通知</a>。",
                                                          "answered")
    assert host.put(f"/api/questions/{q1}/answer", json={"text": "  "}).status_code == 422
    unknown = _moderate(host, q1, "delete")
    assert (unknown.status_code, unknown.json()["error"]) == (422, "invalid")
    assert _audited(db) == ["question.shortlist", "question.answering", "question.answering",
                            "question.answered", "question.merge", "question.answer"]


def test_who_may_act_and_bad_input_are_4xx(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    other_room = _live_session(staff, db, moderation="post")
    token = _join(client, event_id, "甲")["viewer_token"]
    question_id = _ask(client, event_id, token, "问题").json()["id"]
    stranger = staff("editor", "civil-affairs")
    assert _moderate(stranger, question_id, "shortlist").status_code == 403
    assert stranger.put(f"/api/questions/{question_id}/answer",
                        json={"text": "答"}).status_code == 403
    assert staff("host").post(f"/api/questions/{question_id}/moderation",
                              json={"action": "shortlist"}).status_code == 403  # not assigned
    assert client.post(f"/api/questions/{question_id}/moderation",
                       json={"action": "approve"}).status_code == 401
    editor = staff("editor", "education")
    assert _moderate(editor, question_id, "shortlist").status_code == 200

    client.cookies.clear()
    for body in ({}, {"viewer_token": "forged.token"},
                 {"viewer_token": _join(client, other_room, "乙")["viewer_token"]}):
        client.cookies.clear()
        refused = client.post(f"/api/questions/{question_id}/votes", json=body)
        assert (refused.status_code, refused.json()["error"]) == (401, "bad_token"), body
        asked = client.post(f"/api/events/{event_id}/questions", json={"text": "x", **body})
        assert asked.status_code == 401, body
    for path in (f"/api/questions/{2**31}/votes", "/api/questions/0/votes",
                 "/api/questions/99999999999999999999/votes"):
        assert client.post(path, json={"viewer_token": token}).status_code == 422
    assert client.post("/api/questions/123456/votes",
                       json={"viewer_token": token}).status_code == 404
    assert _moderate(editor, 2**31, "approve").status_code == 422
    assert _moderate(editor, question_id, "merge", into=2**31).status_code == 422
    foreign = _ask(client, other_room, _join(client, other_room, "丙")["viewer_token"], "别处")
    wrong_room = _moderate(editor, question_id, "merge", into=foreign.json()["id"])
    assert (wrong_room.status_code, wrong_room.json()["error"]) == (422, "invalid_target")

    # A banned viewer asks and votes no more, and their questions leave the list.
    viewer_id = _join(client, event_id, "广告")
    assert _ask(client, event_id, viewer_id["viewer_token"], "广告问题").status_code == 201
    banned = editor.post(f"/api/events/{event_id}/bans",
                         json={"viewer_id": viewer_id["viewer_id"], "reason": "广告"})
    assert banned.status_code == 201, banned.text
    refused = _cast(client, question_id, viewer_id["viewer_token"])
    assert (refused.status_code, refused.json()["error"]) == (403, "banned")
    assert [q["author"] for q in _public(client, event_id)] == ["甲"]


def test_a_question_in_the_chat_is_a_question_and_decisions_keep_both_in_step(
        client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="pre")
    host, admin = staff("host"), staff("admin")
    assign_hosts(db, event_id)
    viewer = _join(client, event_id, "张阿姨")
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        _frame(ws)
        ws.send(json.dumps({"type": "question", "text": SCRIPT, "client_id": "q-1"}))
        held = _frame(ws)
        assert held["type"] == "held"
        queue = host.get(f"/api/events/{event_id}/questions", params={"state": "held"}).json()
        assert [(q["message_id"], q["text"]) for q in queue] == [(held["id"], SCRIPT)]
        # Approved as a question: the chat shows it, with its seq, and the list has it.
        assert _moderate(host, queue[0]["id"], "approve").status_code == 200
        comment = _frame_of(ws, "comment")
        assert (comment["kind"], comment["seq"], comment["text"]) == ("question", 1, SCRIPT)
        assert [q["id"] for q in _public(client, event_id)] == [queue[0]["id"]]
        twice = admin.post(f"/api/comments/{held['id']}/moderation", json={"action": "approve"})
        assert (twice.status_code, twice.json()["error"]) == (409, "already_handled")

    # Approved in the chat's queue: the question follows.
    second = _join(client, event_id, "老赵")
    with _socket(live_server, event_id, second["viewer_token"]) as ws:
        _frame(ws)
        ws.send(json.dumps({"type": "question", "text": "第二个问题", "client_id": "q-2"}))
        message_id = _frame_of(ws, "held")["id"]
        ws.send(json.dumps({"type": "question", "text": "x" * 10, "client_id": "q-3"}))
        assert _frame(ws)["code"] == "rate_limited"  # one row, not two, for the refused one
    assert admin.post(f"/api/comments/{message_id}/moderation",
                      json={"action": "approve"}).status_code == 200
    listed = {q["message_id"]: q for q in _public(client, event_id)}
    assert listed[message_id]["state"] == "approved"
    late = _moderate(host, listed[message_id]["id"], "approve")
    assert (late.status_code, late.json()["error"]) == (409, "already_handled")

    # Rejected as a question: the chat's queue no longer holds it.
    third = _join(client, event_id, "小李")
    with _socket(live_server, event_id, third["viewer_token"]) as ws:
        _frame(ws)
        ws.send(json.dumps({"type": "question", "text": "第三个", "client_id": "q-4"}))
        third_message = _frame_of(ws, "held")["id"]
    held_questions = host.get(f"/api/events/{event_id}/questions",
                              params={"state": "held"}).json()
    assert _moderate(host, held_questions[0]["id"], "reject").status_code == 200
    queue = host.get(f"/api/events/{event_id}/comments", params={"state": "held"}).json()
    assert third_message not in [m["id"] for m in queue]
    all_questions = host.get(f"/api/events/{event_id}/questions",
                             params={"state": "all"}).json()
    assert len(all_questions) == 3


def test_the_list_shows_a_vote_and_its_count_together(client, staff, db, settings):
    """A vote committed while the list is read: the viewer's pressed button and the count come
    from one moment (the browser showed a pressed button beside 0)."""
    event_id = _live_session(staff, db, moderation="post")
    question_id = _ask(client, event_id, _join(client, event_id, "甲")["viewer_token"],
                       "同一时刻").json()["id"]
    token = _join(client, event_id, "乙")["viewer_token"]
    viewer_id = db.exec(select(Viewer.id).where(Viewer.event_id == event_id,
                                                Viewer.nickname == "乙")).one()
    engine = get_engine(settings.sqlalchemy_url)
    voted_between: list[int] = []
    reading = threading.get_ident()

    def vote_in_between(conn, cursor, statement, *_: object) -> None:
        # After the reader's first statement only (the app's own statements pass through).
        if threading.get_ident() == reading and not voted_between and "FROM question" in statement:
            voted_between.append(0)
            voted_between[0] = _cast(client, question_id, token).status_code

    sa_event.listen(engine, "after_cursor_execute", vote_in_between)
    try:
        with Session(engine) as reader:
            listed = questions.listed(reader, event_id, viewer_id=viewer_id)
    finally:
        sa_event.remove(engine, "after_cursor_execute", vote_in_between)
    assert voted_between == [201]
    assert [(q["voted"], q["votes"]) for q in listed] in ([(False, 0)], [(True, 1)])
    assert _public(client, event_id)[0]["votes"] == 1
