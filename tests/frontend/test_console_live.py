"""The host's moderation console of the live room without JavaScript: who may open it, what it
shows (the held queue oldest first, the approved messages, as text), the link from the session's
page, and the ban form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from sqlmodel import Session, select

from events.models import Event
from streaming import protocol, room
from streaming.models import LiveMessage, Viewer
from tests.conftest import assign_hosts, event_body
from tests.frontend.console_pages import csrf_of
from tests.streaming.live import _join, _live_session

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def live_url(event_id: int) -> str:
    return f"/console/events/{event_id}/live"


def held_message(db: Session, client: Any, event_id: int, nickname: str, text: str) -> int:
    """A viewer joins through the API and sends a message, which waits for a host."""
    viewer = db.get(Viewer, _join(client, event_id, nickname)["viewer_id"])
    assert viewer is not None
    message = room.send(db, viewer, protocol.Sent("comment", text, "c1", None))
    db.commit()
    assert message.state == "held" and message.id is not None
    return message.id


def test_the_hosts_of_the_session_and_its_unit_open_the_console_others_may_not(
        client, staff, console, db):
    event_id = _live_session(staff, db)
    held_message(db, client, event_id, "老王", "<b>电梯</b>什么时候装？")
    held_message(db, client, event_id, "小李", "第二条")

    host = console("host")
    assert host.get(live_url(event_id)).status_code == 403  # not assigned to it
    assert console("editor", "civil-affairs").get(live_url(event_id)).status_code == 403
    assert console("editor", "civil-affairs").get(live_url(999_999)).status_code == 404

    assign_hosts(db, event_id)
    for runner in (host, console("editor", "education"), console("admin")):
        page = runner.get(live_url(event_id))
        assert page.status_code == 200, page.text
        assert "直播间留言审核" in page.text and "键盘快捷键" in page.text
        # Oldest first, and a message's markup is shown as text.
        assert page.text.index("&lt;b&gt;电梯&lt;/b&gt;什么时候装？") < page.text.index("第二条")
        assert "<b>电梯" not in page.text
        assert 'src="/static/js/moderation.js"' in page.text
        assert 'name="csrf-token"' in page.text


def test_a_draft_of_another_unit_is_not_found(staff, console, db):
    created = staff("admin").post("/api/events", json=event_body(db))
    assert created.status_code == 201, created.text
    stranger = console("editor", "civil-affairs")
    assert stranger.get(live_url(created.json()["id"])).status_code == 404


def test_the_sessions_page_links_the_console_while_it_is_published_or_live(staff, console, db):
    event_id = _live_session(staff, db, live=False)
    editor = console("editor", "education")
    assert f'href="{live_url(event_id)}"' in editor.get(f"/console/events/{event_id}").text
    staff("admin").post(f"/api/events/{event_id}/status", json={"status": "live"})
    page = editor.get(f"/console/events/{event_id}").text
    assert f'href="{live_url(event_id)}"' in page and "直播间审核" in page


def test_the_approved_messages_are_listed_in_seq_order(client, staff, console, db):
    event_id = _live_session(staff, db)
    first = held_message(db, client, event_id, "老王", "第一条")
    second = held_message(db, client, event_id, "小李", "第二条")
    editor = console("editor", "education")
    for message_id in (second, first):
        assert editor.post(f"/api/comments/{message_id}/moderation",
                           json={"action": "approve"},
                           headers={"X-CSRF-Token": csrf_of(editor.get(live_url(event_id)).text)}
                           ).status_code == 200
    page = editor.get(live_url(event_id)).text
    assert page.index("#1</span> <span class=\"author\">小李") \
        < page.index("#2</span> <span class=\"author\">老王")
    assert "暂无待审核留言。" in page


def test_the_ban_form_bans_the_author_of_a_message_with_a_reason(client, staff, console, db):
    event_id = _live_session(staff, db)
    spam = held_message(db, client, event_id, "广告", "加微信买房")
    keep = held_message(db, client, event_id, "居民", "路灯坏了")
    editor = console("editor", "education")
    token = csrf_of(editor.get(live_url(event_id)).text)
    url = f"{live_url(event_id)}/bans"

    no_reason = editor.post(url, data={"message_id": str(spam), "reason": " ",
                                       "csrf_token": token})
    assert no_reason.status_code == 422 and "请填写禁言原因。" in no_reason.text
    no_message = editor.post(url, data={"message_id": "x", "reason": "广告",
                                        "csrf_token": token})
    assert no_message.status_code == 422
    stranger = console("editor", "civil-affairs")
    refused = stranger.post(url, data={"message_id": str(spam), "reason": "广告",
                                       "csrf_token": csrf_of(stranger.get("/console").text)})
    assert refused.status_code == 403

    banned = editor.post(url, data={"message_id": str(spam), "reason": "广告",
                                    "csrf_token": token}, follow_redirects=False)
    assert banned.status_code == 303
    page = editor.get(banned.headers["location"])
    assert "该观众已被禁言，其留言已全部移除" in page.text
    assert "加微信买房" not in page.text and "路灯坏了" in page.text
    db.expire_all()
    states = {m.id: m.state for m in db.exec(select(LiveMessage))}
    assert states == {spam: "removed", keep: "held"}
    viewer = db.exec(select(Viewer).where(Viewer.nickname == "广告")).one()
    assert viewer.banned_at is not None and viewer.ban_reason == "广告"


def test_the_room_form_closes_reopens_and_switches_the_room_without_script(client, staff,
                                                                          console, db):
    event_id = _live_session(staff, db)
    editor = console("editor", "education")
    page = editor.get(live_url(event_id))
    assert "开放中：直播间正在接收留言。" in page.text and "关闭直播间" in page.text
    token = csrf_of(page.text)
    url = f"{live_url(event_id)}/room"
    closed = editor.post(url, data={"csrf_token": token, "closed": "1", "moderation": "post",
                                    "slow_mode_s": "30"}, follow_redirects=False)
    assert closed.status_code == 303
    page = editor.get(closed.headers["location"])
    assert "直播间设置已保存" in page.text
    assert "已关闭：直播间不再接收留言。" in page.text and "重新开放直播间" in page.text
    assert client.get(f"/api/events/{event_id}/room").json() == {
        "open": False, "closed": True, "moderation": "post", "slow_mode_s": 30}
    editor.post(url, data={"csrf_token": token, "closed": "0", "moderation": "post",
                           "slow_mode_s": "0"})
    assert client.get(f"/api/events/{event_id}/room").json()["open"] is True
    stranger = console("editor", "civil-affairs")
    refused = stranger.post(url, data={"closed": "1",
                                       "csrf_token": csrf_of(stranger.get("/console").text)})
    assert refused.status_code == 403
    assert client.get(f"/api/events/{event_id}/room").json()["open"] is True


def test_the_close_out_form_shows_the_rooms_counts(client, staff, console, db):
    event_id = _live_session(staff, db)
    editor = console("editor", "education")
    assert "直播间留言情况" not in editor.get(f"/console/events/{event_id}").text
    first = held_message(db, client, event_id, "甲", "第一条")
    held_message(db, client, event_id, "乙", "第二条")
    third = held_message(db, client, event_id, "丙", "第三条")
    host = staff("admin")
    host.post(f"/api/comments/{first}/moderation", json={"action": "approve"})
    host.post(f"/api/comments/{third}/moderation", json={"action": "reject"})
    event = db.get(Event, event_id)
    event.starts_at = datetime.now(UTC) - timedelta(hours=1)  # under way: it may be closed out
    db.add(event)
    db.commit()
    page = editor.get(f"/console/events/{event_id}").text
    counts = page[page.index('id="closeout-room"'):]
    assert "直播间留言情况" in counts
    assert [int(n) for n in re.findall(r"<dd>(\d+)</dd>", counts)[:4]] == [1, 1, 1, 0]
    assert f"/api/events/{event_id}/comments.csv" in counts


def test_every_string_of_the_console_is_in_the_moderation_catalogue():
    keywords = {"_": None, "gettext": None, "N_": None}
    found: set[str] = set()
    for _line, message, _c, _ctx in extract_from_file(
            "jinja2.ext:babel_extract", str(FRONTEND / "templates" / "console" / "live.html"),
            keywords=keywords, options={"extensions": "jinja2.ext.i18n", "trimmed": "true"}):
        found.add(message if isinstance(message, str) else message[0])
    for _line, message, _c, _ctx in extract_from_file(
            "python", str(FRONTEND / "console_live.py"), keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    assert len(found) > 30
    path = FRONTEND / "locale" / "zh_CN" / "LC_MESSAGES" / "moderation.po"
    with path.open("rb") as handle:
        translated = {m.id for m in read_po(handle, locale="zh_CN") if m.id and m.string}
    assert sorted(found - translated) == []
