"""The pages of issue 18's answers: the session page's 问题与回复 once the session is over (the
answer, the link that opens the recording at its moment, the outcome and its reason, the
counts), the console's answer form without script, and /console/answers flagging the overdue
questions of the unit."""

from __future__ import annotations

import html
from datetime import timedelta

from tests.frontend import conftest as frontend_fixtures
from tests.frontend.archive_sessions import held
from tests.frontend.console_pages import csrf_of
from tests.streaming.answering import add_question, ends_of, fresh_question

HTML = {"accept": "text/html"}
REASON = "<i>该路段</i>已纳入明年市政规划"

# The console's signed-in clients, as the console's own tests have them.
console = frontend_fixtures.console


def _section(page: str) -> str:
    start = page.index('<section class="panel answers" id="answers"')
    return page[start:page.index("</section>", start)]


def test_the_session_page_shows_the_answers_their_moments_and_outcomes(client, staff, db):
    event_id = held(db, "道路改造会议开放", days_ago=3, duration_s=754.0)
    ends = ends_of(db, event_id)
    moment = add_question(db, event_id, "<b>施工</b>什么时候结束？", author="王<大爷>")
    refused = add_question(db, event_id, "建议晚上不施工")
    add_question(db, event_id, "还没答的问题")
    add_question(db, event_id, "被拒绝的问题", state="rejected")
    editor = staff("editor", "education")
    assert editor.put(f"/api/questions/{moment}/answer",
                      json={"at_s": 95, "outcome": "adopted"}).status_code == 200
    answered = editor.put(f"/api/questions/{refused}/answer",
                          json={"text": "夜间施工经过审批。", "outcome": "not_adopted",
                                "reason": REASON})
    assert answered.status_code == 200, answered.text
    row = fresh_question(db, refused)  # written two days after the session
    row.answer_at = ends + timedelta(days=2)
    db.add(row)
    db.commit()

    page = client.get(f"/events/{event_id}", headers=HTML)
    assert page.status_code == 200
    section = _section(page.text)
    assert "问题与回复" in section
    assert f'<li class="answer-item" data-id="{moment}">' in section
    assert f'<a class="answer-moment" href="/events/{event_id}/live?t=95#player">' \
           "在录像中观看回答 (1:35)</a>" in section
    assert '<span class="answer-outcome" data-outcome="adopted">采纳</span>' in section
    assert '<span class="answer-outcome" data-outcome="not_adopted">不予采纳</span>' in section
    assert f'<span class="answer-reason">{html.escape(REASON, quote=False)}</span>' in section
    assert "&lt;b&gt;施工&lt;/b&gt;什么时候结束？" in section and "<b>施工" not in page.text
    assert "王&lt;大爷&gt;" in section
    assert "夜间施工经过审批。" in section and "被拒绝的问题" not in section
    assert "尚未答复" in section
    stats = {name: value for name, value in (
        ("received", 4), ("approved", 3), ("answered_live", 1), ("answered_written", 1),
        ("open", 1), ("median_days", 1.0))}
    for name, value in stats.items():
        assert f'<div data-stat="{name}">' in section
        after = section[section.index(f'<div data-stat="{name}">'):]
        assert f"<dd>{value}</dd>" in after[:after.index("</div>")], name


def test_before_the_end_and_without_questions_the_page_has_no_answers_section(client, db):
    upcoming = held(db, "下周的会议", days_ago=-7)
    add_question(db, upcoming, "提前征集的问题")
    quiet = held(db, "没有提问的会议", days_ago=3)
    for event_id in (upcoming, quiet):
        page = client.get(f"/events/{event_id}", headers=HTML)
        assert page.status_code == 200 and 'id="answers"' not in page.text


def test_the_console_form_gives_the_moment_the_outcome_and_the_reason(console, client, db):
    event_id = held(db, "公园改造会议开放", days_ago=3, duration_s=754.0)
    question_id = add_question(db, event_id, "建议增加健身器材")
    editor = console("editor", "education")
    page = editor.get(f"/console/events/{event_id}/live")
    assert page.status_code == 200
    assert "建议采纳情况" in page.text and "录像中的回答时刻" in page.text
    url = f"/console/questions/{question_id}/answer"
    form = {"text": "", "at": "2:05", "outcome": "not_adopted", "reason": "",
            "csrf_token": csrf_of(page.text)}
    refused = editor.post(url, data=form, follow_redirects=False)
    assert refused.status_code == 422
    assert fresh_question(db, question_id).state == "approved"
    bad_moment = editor.post(url, data={**form, "at": "2:75", "reason": "场地有限"},
                             follow_redirects=False)
    assert bad_moment.status_code == 422
    done = editor.post(url, data={**form, "reason": "场地有限"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/events/{event_id}/live#questions"
    listed = {q["id"]: q for q in client.get(f"/api/events/{event_id}/questions").json()}
    assert (listed[question_id]["answered_at_video_time"], listed[question_id]["outcome"],
            listed[question_id]["outcome_reason"], listed[question_id]["answer"]) == \
        (125.0, "not_adopted", "场地有限", "")
    page = editor.get(f"/console/events/{event_id}/live").text
    assert "录像 2:05 处已回答" in page and 'data-outcome="not_adopted">不予采纳' in page


def test_the_console_flags_overdue_questions_of_the_unit(console, db, clock):
    event_id = held(db, "菜市场升级会议开放", days_ago=1)
    question_id = add_question(db, event_id, "早市还保留吗？")
    add_question(db, event_id, "已答复的问题", state="answered", answer="保留。")
    other_unit = held(db, "民政会议开放", days_ago=1, unit="civil-affairs")
    add_question(db, other_unit, "养老补贴怎么申请？")
    editor, admin = console("editor", "education"), console("admin")

    fresh = editor.get("/console/answers")
    assert fresh.status_code == 200
    assert "早市还保留吗？" in fresh.text and "逾期未答" not in fresh.text
    assert "养老补贴怎么申请？" not in fresh.text and "已答复的问题" not in fresh.text
    assert 'href="/console/answers"' in fresh.text  # the console's menu leads here

    clock.advance(timedelta(days=16))
    late = editor.get("/console/answers").text
    item = late[late.index(f'data-id="{question_id}"'):]
    item = item[:item.index("</li>")]
    assert "逾期未答" in item and "活动结束已 16 天" in item
    assert f'href="/console/events/{event_id}/live#questions"' in item
    assert "待答复：1 个 · 逾期：1 个" in late

    everyone = admin.get("/console/answers").text
    assert "早市还保留吗？" in everyone and "养老补贴怎么申请？" in everyone
    one_unit = admin.get("/console/answers", params={"unit": "civil-affairs"}).text
    assert "养老补贴怎么申请？" in one_unit and "早市还保留吗？" not in one_unit
