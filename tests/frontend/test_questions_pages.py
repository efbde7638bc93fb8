"""The questions panels: the citizen's on the room page (the list by votes, the vote buttons,
正在回答, 官方回复, the ask form while questions are taken) and the host's on the console live
page (states, actions as forms that work without script), markup shown as text."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from events.models import Event, EventStatus
from tests.conftest import assign_hosts
from tests.frontend.console_pages import csrf_of
from tests.streaming.live import _ask, _join, _live_session

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
SCRIPT = "<script>alert(1)</script>电梯加装"


def _questions(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    first = _ask(client, event_id, _join(client, event_id, "<i>老王</i>")["viewer_token"], SCRIPT)
    second = _ask(client, event_id, _join(client, event_id, "小李")["viewer_token"], "停车位")
    return event_id, host, first.json()["id"], second.json()["id"]


def test_the_room_page_lists_questions_by_votes_with_the_answer_and_the_one_answered(
        client, staff, db):
    event_id, host, first, second = _questions(client, staff, db)
    voter = _join(client, event_id, "投票人")  # the client's cookie now names this viewer
    assert client.post(f"/api/questions/{second}/votes", json={}).status_code == 201
    assert host.post(f"/api/questions/{second}/moderation",
                     json={"action": "answering"}).status_code == 200
    assert host.put(f"/api/questions/{first}/answer",
                    json={"text": "<b>明年</b>完成"}).status_code == 200
    page = client.get(f"/events/{event_id}/live")
    assert page.status_code == 200
    html = page.text
    panel = html[html.index('id="questions"'):]
    assert ">问题</h2>" in panel
    # Most votes first; the one being answered marked; the answered one with its answer.
    assert panel.index("停车位") < panel.index("电梯加装")
    assert "正在回答" in panel and "官方回复" in panel and "&lt;b&gt;明年&lt;/b&gt;完成" in panel
    assert "&lt;script&gt;alert(1)&lt;/script&gt;电梯加装" in panel and SCRIPT not in html
    assert "&lt;i&gt;老王&lt;/i&gt;" in panel
    # This viewer voted for the second: its button is pressed and disabled.
    assert f'data-id="{second}" aria-pressed="true"' in panel
    assert f'data-id="{first}" aria-pressed="false"' in panel
    assert 'class="questions-ask"' in panel and "提交问题" in panel
    assert 'src="/static/js/questions.js"' in html
    assert voter["nickname"] == "投票人"


def test_the_room_page_without_questions_or_window_has_no_panel(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    assert 'class="questions-ask"' in client.get(f"/events/{event_id}/live").text
    session = db.get(Event, event_id)
    session.status = EventStatus.ended
    db.add(session)
    db.commit()
    assert 'id="questions"' not in client.get(f"/events/{event_id}/live").text


def test_the_console_panel_lists_every_question_and_its_forms_work_without_script(
        client, staff, console, db):
    event_id = _live_session(staff, db, moderation="pre")
    held = _ask(client, event_id, _join(client, event_id, "张阿姨")["viewer_token"], SCRIPT)
    editor = console("editor", "education")
    page = editor.get(f"/console/events/{event_id}/live")
    assert page.status_code == 200
    panel = page.text[page.text.index('id="questions"'):]
    assert "市民提问" in panel and "待审核" in panel
    assert "&lt;script&gt;alert(1)&lt;/script&gt;电梯加装" in panel and SCRIPT not in page.text
    assert 'src="/static/js/questions_console.js"' in page.text
    url = f"/console/questions/{held.json()['id']}/moderation"
    approved = editor.post(url, data={"action": "approve", "csrf_token": csrf_of(page.text)},
                           follow_redirects=False)
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/console/events/{event_id}/live#questions"
    assert [q["state"] for q in client.get(f"/api/events/{event_id}/questions").json()] == \
        ["approved"]
    page = editor.get(f"/console/events/{event_id}/live").text
    assert "已公开" in page and "开始回答" in page and "撰写官方回复" in page
    answered = editor.post(f"/console/questions/{held.json()['id']}/answer",
                           data={"text": "已纳入计划", "csrf_token": csrf_of(page)},
                           follow_redirects=False)
    assert answered.status_code == 303
    listed = client.get(f"/api/events/{event_id}/questions").json()
    assert (listed[0]["state"], listed[0]["answer"]) == ("answered", "已纳入计划")
    twice = editor.post(url, data={"action": "approve", "csrf_token": csrf_of(page)})
    assert twice.status_code == 409
    stranger = console("editor", "civil-affairs")
    refused = stranger.post(url, data={"action": "shortlist",
                                       "csrf_token": csrf_of(stranger.get("/console").text)})
    assert refused.status_code == 403


def test_every_string_of_the_panels_is_in_the_questions_catalogue():
    keywords = {"_": None, "gettext": None, "N_": None}
    found: set[str] = set()
    for name in ("portal/_questions.html", "console/_questions.html"):
        for _line, message, _c, _ctx in extract_from_file(
                "jinja2.ext:babel_extract", str(FRONTEND / "templates" / name),
                keywords=keywords, options={"extensions": "jinja2.ext.i18n",
                                            "trimmed": "true"}):
            found.add(message if isinstance(message, str) else message[0])
    for name in ("portal_questions.py", "console_questions.py"):
        for _line, message, _c, _ctx in extract_from_file("python", str(FRONTEND / name),
                                                          keywords=keywords):
            found.add(message if isinstance(message, str) else message[0])
    assert len(found) > 40
    translated: set[str] = set()
    for path in (FRONTEND / "locale" / "zh_CN" / "LC_MESSAGES").glob("*.po"):
        with path.open("rb") as handle:
            translated |= {m.id for m in read_po(handle, locale="zh_CN") if m.id and m.string}
    assert sorted(found - translated) == []
