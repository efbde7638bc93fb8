"""An answer for every question (issue 18): PUT /api/questions/{id}/answer after the session —
the moment of the recording, a written reply, a suggestion's outcome and its reason — its
refusals (nothing changed), the public list's fields, the per-session stats the compliance
report reads (events.question_stats), the overdue questions and their one reminder."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from events import question_stats
from events.models import AuditEntry, OutboxMessage
from streaming import answers
from tests.conftest import assign_hosts
from tests.frontend.archive_sessions import held
from tests.streaming.answering import add_question, ends_of, fresh_question
from tests.streaming.live import _ask, _frame, _frame_of, _join, _live_session, _socket

REASON = "<b>该路段</b>已纳入明年市政规划，暂不单独立项。"


def _put(user, question_id, **body):
    return user.put(f"/api/questions/{question_id}/answer", json=body)


def _listed(client, event_id):
    answer = client.get(f"/api/events/{event_id}/questions")
    assert answer.status_code == 200, answer.text
    return {q["id"]: q for q in answer.json()}


def test_after_the_session_staff_give_the_moment_a_written_reply_and_an_outcome(
        client, staff, db):
    event_id = held(db, "停车难专题会议开放", days_ago=3, duration_s=754.0)
    first = add_question(db, event_id, "小区停车位何时增加？")
    second = add_question(db, event_id, "建议在学校门口设即停即走车位")
    editor = staff("editor", "education")

    moment = _put(editor, first, at_s=95)
    assert moment.status_code == 200, moment.text
    assert (moment.json()["state"], moment.json()["answered_at_video_time"],
            moment.json()["answer"], moment.json()["outcome"]) == ("answered", 95.0, "", None)

    refused = _put(editor, second, text="经研究，暂不设置。", outcome="not_adopted")
    assert (refused.status_code, refused.json()["error"], refused.json()["field"]) == \
        (422, "reason_required", "reason")
    decided = _put(editor, second, text="经研究，暂不设置。", outcome="not_adopted", reason=REASON)
    assert decided.status_code == 200, decided.text
    listed = _listed(client, event_id)
    assert (listed[second]["state"], listed[second]["answer"], listed[second]["outcome"],
            listed[second]["outcome_reason"]) == ("answered", "经研究，暂不设置。", "not_adopted",
                                                  REASON)
    assert (listed[first]["outcome"], listed[first]["outcome_reason"]) == (None, "")
    assert set(listed[first]) >= {"id", "text", "author", "votes", "state", "answer",
                                  "answered_at_video_time", "outcome", "outcome_reason"}

    # Later: the outcome changes, the moment is added, the written reply is kept.
    again = _put(staff("admin"), second, outcome="partly_adopted", at_s=700.5)
    assert again.status_code == 200, again.text
    assert (again.json()["answer"], again.json()["outcome"], again.json()["outcome_reason"],
            again.json()["answered_at_video_time"]) == ("经研究，暂不设置。", "partly_adopted", "",
                                                        700.5)
    db.expire_all()
    audited = [entry for entry in db.exec(select(AuditEntry).order_by(AuditEntry.id))
               if entry.action == "question.answer"]
    assert len(audited) == 3
    assert '"outcome": ["not_adopted", "partly_adopted"]' in audited[-1].changes


def test_bad_answers_are_refused_and_change_nothing(client, staff, db):
    event_id = held(db, "背街小巷整治会议开放", days_ago=3, duration_s=600.0)
    unrecorded = held(db, "无录像的会议", days_ago=3, recording=False)
    question_id = add_question(db, event_id, "胡同什么时候整治？")
    bare = add_question(db, unrecorded, "有录像吗？")
    hidden = {state: add_question(db, event_id, f"{state}的问题", state=state)
              for state in ("held", "rejected", "merged")}
    editor = staff("editor", "education")

    for body, status, code, field in (
            ({"text": "答", "outcome": "not_adopted"}, 422, "reason_required", "reason"),
            ({"text": "答", "outcome": "not_adopted", "reason": "  "}, 422, "reason_required",
             "reason"),
            ({"text": "答", "outcome": "rejected", "reason": "x"}, 422, "invalid", "outcome"),
            ({"text": "答", "reason": "没有结论的理由"}, 422, "invalid", "outcome"),
            ({"at_s": 600.1}, 422, "beyond_recording", "at_s"),
            ({"at_s": -1}, 422, "invalid", "at_s"),
            ({"text": "答", "at_s": 10_000}, 422, "beyond_recording", "at_s"),
            ({}, 422, "answer_required", "text"),
            ({"outcome": "adopted"}, 422, "answer_required", "text"),
            ({"text": "   "}, 422, "empty", "text")):
        refused = _put(editor, question_id, **body)
        assert (refused.status_code, refused.json()["error"], refused.json().get("field")) == \
            (status, code, field), body
    no_recording = _put(editor, bare, at_s=5)
    assert (no_recording.status_code, no_recording.json()["error"],
            no_recording.json()["field"]) == (422, "no_recording", "at_s")
    for state, hidden_id in hidden.items():
        refused = _put(editor, hidden_id, text="答", outcome="adopted")
        assert (refused.status_code, refused.json()["error"]) == (409, "invalid_state"), state
    stranger = _put(staff("editor", "civil-affairs"), question_id, text="答", at_s=5)
    assert (stranger.status_code, stranger.json()["error"]) == (403, "forbidden")
    assert _put(client, question_id, text="答").status_code == 401

    for still in (question_id, bare, *hidden.values()):
        row = fresh_question(db, still)
        assert (row.answer, row.answered_at_video_time, row.outcome, row.outcome_reason,
                row.answered_at) == ("", None, "", "", None)
    assert fresh_question(db, question_id).state == "approved"
    assert not [entry for entry in db.exec(select(AuditEntry))
                if entry.action == "question.answer"]


def _mixed_session(db):
    """A session (ended ~2 days ago) with one question of each kind."""
    event_id = held(db, "养老服务驿站建设会议开放", days_ago=2, duration_s=3600.0)
    ends = ends_of(db, event_id)
    starts = ends - timedelta(hours=2)
    ids = {
        "open": add_question(db, event_id, "驿站收费标准？"),
        "moment": add_question(db, event_id, "驿站开放时间？", state="answered",
                               answered_at=ends + timedelta(days=1),
                               answered_at_video_time=100.0),
        "marked": add_question(db, event_id, "有助餐服务吗？", state="answered",
                               answered_at=starts + timedelta(minutes=30)),
        "written3": add_question(db, event_id, "能否上门服务？", state="answered",
                                 answer="可以预约。", answer_at=ends + timedelta(days=3),
                                 answered_at=ends + timedelta(days=3)),
        "written6": add_question(db, event_id, "建议增加床位", state="shortlisted",
                                 answer="部分采纳。", answer_at=ends + timedelta(days=6),
                                 outcome="partly_adopted"),
    }
    for state in ("held", "rejected", "merged"):
        add_question(db, event_id, f"{state}的问题", state=state)
    return event_id, ids


def test_the_stats_count_each_kind_of_answer_and_the_median_days(db, clock):
    event_id, ids = _mixed_session(db)
    other = held(db, "没有问题的会议", days_ago=2)
    found = question_stats.stats_of(db, [event_id, other], clock())
    stats = found[event_id]
    assert (stats.received, stats.approved, stats.answered_live, stats.answered_written,
            stats.open, stats.overdue) == (8, 5, 2, 2, 1, 0)
    assert stats.median_days == 1.5  # of 0, 0 (live), 3 and 6 days
    assert found[other] == question_stats.QuestionStats()

    clock.advance(timedelta(days=12))  # ~14 days after the session: not yet
    assert question_stats.stats_of(db, [event_id], clock())[event_id].overdue == 0
    clock.advance(timedelta(days=2))  # ~16 days: the open one is overdue
    late = question_stats.stats_of(db, [event_id], clock())[event_id]
    assert (late.open, late.overdue, late.overdue_ids) == (1, 1, [ids["open"]])
    assert answers.stats_for(db, [event_id], clock(), days=30)[event_id].overdue == 0


def test_an_answer_during_the_session_marks_the_question_and_reaches_the_room(
        client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    token = _join(client, event_id, "甲")["viewer_token"]
    question_id = _ask(client, event_id, token, "建议延长开放时间").json()["id"]
    with _socket(live_server, event_id, token) as ws:
        _frame(ws)
        written = _put(host, question_id, text="当场答复。", outcome="adopted")
        assert written.status_code == 200, written.text
        got = _frame_of(ws, "question")
    assert (written.json()["state"], written.json()["answer"]) == ("answered", "当场答复。")
    assert (got["id"], got["state"], got["answer"], got["outcome"], got["outcome_reason"]) == \
        (question_id, "answered", "当场答复。", "adopted", "")
    # No recording yet: a moment is refused, the answer stays.
    refused = _put(host, question_id, at_s=3)
    assert refused.json()["error"] == "no_recording"
    assert _listed(client, event_id)[question_id]["answer"] == "当场答复。"


def test_an_overdue_question_is_reminded_to_its_unit_once(db, settings, clock):
    event_id = held(db, "垃圾分类会议开放", days_ago=1)
    first = add_question(db, event_id, "厨余垃圾几点收？")
    answered = add_question(db, event_id, "已答", state="answered", answer="每天两次。",
                            answer_at=ends_of(db, event_id) + timedelta(days=1))
    assert answers.remind_overdue(db, settings) == 0  # not yet due
    clock.advance(timedelta(days=16))
    assert answers.remind_overdue(db, settings) == 1
    db.commit()
    assert answers.remind_overdue(db, settings) == 0  # each question once
    db.commit()
    messages = list(db.exec(select(OutboxMessage).where(
        OutboxMessage.topic == "answer_reminder")))
    assert [(m.channel, m.recipient) for m in messages] == [("console", "unit:education")]
    assert "垃圾分类会议开放" in messages[0].body and "1个" in messages[0].body
    assert fresh_question(db, first).answer_reminded_at is not None
    assert fresh_question(db, answered).answer_reminded_at is None

    # A question of another session that becomes overdue later: a new reminder, for it alone.
    later = held(db, "垃圾分类第二次会议", days_ago=0.5)
    add_question(db, later, "可回收物怎么投放？")
    clock.advance(timedelta(days=16))
    assert answers.remind_overdue(db, settings) == 1
    db.commit()
    bodies = [m.body for m in db.exec(select(OutboxMessage).where(
        OutboxMessage.topic == "answer_reminder").order_by(OutboxMessage.id))]
    assert len(bodies) == 2 and "垃圾分类第二次会议" in bodies[1] \
        and "垃圾分类会议开放" not in bodies[1]
