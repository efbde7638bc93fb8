"""Registration in the staff console without JavaScript: check-in at the door, walk-ins, the
registrations list with its export and capacity, the notification outbox."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from pathlib import Path
from typing import Any

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlmodel import select

from events.models import AuditEntry, OutboxMessage, RegistrationStatus
from events.timeutil import local
from tests.conftest import assign_hosts, door_open
from tests.frontend.console_pages import csrf_of
from tests.helpers import open_session, registered, registrations

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TAG = re.compile(r"<[^>]+>")
PHONE = re.compile(r"1[3-9]\d{9}")
R = RegistrationStatus


def visible(html: str) -> str:
    return unescape(" ".join(TAG.sub(" ", html).split()))


def checkin_url(event_id: int) -> str:
    return f"/console/events/{event_id}/checkin"


def check_in(client: TestClient, event_id: int, code: str) -> Any:
    """Posts the door form like a browser without JavaScript and follows the redirect."""
    token = csrf_of(client.get(checkin_url(event_id)).text)
    response = client.post(checkin_url(event_id), data={"code": code, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(checkin_url(event_id) + "?result=")
    page = client.get(location)
    assert page.status_code == 200
    return page


def result_of(page: Any) -> str:
    found = re.search(r'<div id="checkin-result"[^>]*>(.*?)</div>', page.text, re.S)
    assert found, "the page has no result region"
    return visible(found[1])


def counter_of(page: Any) -> str:
    found = re.search(r'<p class="counter-main"[^>]*>(.*?)</p>', page.text, re.S)
    assert found
    return visible(found[1])


def walk_in(client: TestClient, event_id: int, name: str, phone: str = "") -> Any:
    token = csrf_of(client.get(checkin_url(event_id)).text)
    return client.post(f"/console/events/{event_id}/walk-ins",
                       data={"name": name, "phone": phone, "csrf_token": token},
                       follow_redirects=False)


def post_capacity(client: TestClient, event_id: int, capacity: str) -> Any:
    url = f"/console/events/{event_id}/registrations"
    token = csrf_of(client.get(url).text)
    return client.post(f"/console/events/{event_id}/capacity",
                       data={"capacity": capacity, "csrf_token": token}, follow_redirects=False)


# ---- check-in at the door -------------------------------------------------------------------

def test_the_door_form_checks_in_once_and_says_when_the_first_was(client, staff, console, db):
    event_id = open_session(staff, db, capacity=2, **door_open())
    first = registered(client, event_id, "13800000001", "王小明")
    registered(client, event_id, "13800000002", "李华")
    waiting = registered(client, event_id, "13800000003", "张三丰")
    assert waiting["status"] == "waitlisted"
    editor = console("editor", "education")

    page = editor.get(checkin_url(event_id))
    assert page.status_code == 200
    assert counter_of(page) == "已签到 0 / 名额 2"
    assert re.search(r'<input id="checkin-code" name="code" class="code-input" autofocus '
                     r'autocapitalize="characters"', page.text)
    assert '<meta name="csrf-token" content="' in page.text

    # Typed at the door in lower case with a space: still the ticket.
    code = first["code"]
    done = check_in(editor, event_id, f"{code[:4].lower()} {code[4:].lower()}")
    assert result_of(done) == f"✓ 签到成功 王*明 入场码 {code}"
    assert "tone-ok" in done.text and "王小明" not in done.text
    assert counter_of(done) == "已签到 1 / 名额 2"
    checked = registrations(db)[0]
    assert checked.checked_in_at is not None

    # A refresh shows the result again but checks nobody in again.
    again = editor.get(str(done.url))
    assert result_of(again) == result_of(done)
    assert registrations(db)[0].checked_in_at == checked.checked_in_at

    second = check_in(editor, event_id, code)
    when = local(checked.checked_in_at).strftime("%H:%M")
    assert result_of(second) == f"⚠ 已签到（于 {when}） 王*明 入场码 {code}"
    assert "tone-warn" in second.text
    assert counter_of(second) == "已签到 1 / 名额 2"


def test_refused_tickets_say_why_in_words(client, staff, console, db):
    event_id = open_session(staff, db, capacity=1, **door_open())
    seat = registered(client, event_id, "13800000001", "王小明")
    waiting = registered(client, event_id, "13800000002", "李华")
    editor = console("editor", "education")

    refused = check_in(editor, event_id, waiting["code"])
    assert result_of(refused).startswith("✗ 候补名单，未确认 李*")
    assert "tone-refused" in refused.text
    assert all(r.checked_in_at is None for r in registrations(db))

    assert client.delete(f"/api/registrations/{seat['manage_token']}").status_code == 200
    cancelled = check_in(editor, event_id, seat["code"])
    assert result_of(cancelled).startswith("✗ 已取消的票")

    unknown = check_in(editor, event_id, "zzzz2222")
    assert result_of(unknown) == "✗ 无此入场码 入场码 ZZZZ2222"
    assert counter_of(unknown) == "已签到 0 / 名额 1"

    token = csrf_of(editor.get(checkin_url(event_id)).text)
    empty = editor.post(checkin_url(event_id), data={"code": "  ", "csrf_token": token})
    assert empty.status_code == 422
    assert "请输入入场码，或扫描二维码。" in empty.text

    forged = editor.get(checkin_url(event_id) + "?result=not-a-signed-result")
    assert forged.status_code == 200 and result_of(forged) == ""


def test_a_host_checks_in_an_editor_of_another_unit_may_not(client, staff, console, db):
    event_id = open_session(staff, db, **door_open())
    ticket = registered(client, event_id, "13800000001", "王小明")
    stranger = console("editor", "civil-affairs")

    assert stranger.get(checkin_url(event_id)).status_code == 403
    token = csrf_of(stranger.get("/console").text)
    refused = stranger.post(checkin_url(event_id), data={"code": ticket["code"],
                                                         "csrf_token": token})
    assert refused.status_code == 403
    assert "这属于其他单位，或须由区政府办公室办理。" in refused.text
    assert registrations(db)[0].checked_in_at is None
    assert stranger.get(f"/console/events/{event_id}/registrations").status_code == 403

    host = console("host")
    assert host.get(checkin_url(event_id)).status_code == 403  # not assigned to it
    assign_hosts(db, event_id)
    page = check_in(host, event_id, ticket["code"])
    assert result_of(page).startswith("✓ 签到成功 王*明")
    assert registrations(db)[0].checked_in_at is not None


def test_days_before_the_door_page_says_when_check_in_opens(client, staff, console, db):
    event_id = open_session(staff, db, capacity=1)  # in ten days
    registered(client, event_id, "13800000001", "王小明")
    editor = console("editor", "education")
    page = editor.get(checkin_url(event_id))
    notice = re.search(r'<p class="notice error"[^>]*id="door-notice">(.*?)</p>', page.text, re.S)
    assert notice, "the page does not say that the door is not open yet"
    assert "签到和现场登记将于" in notice[1] and "活动开始前 120 分钟" in notice[1]
    assert 'id="checkin-code"' in page.text and "disabled" in page.text.split(
        'id="checkin-code"')[1].split(">")[0]

    code = registrations(db)[0].code
    refused = check_in(editor, event_id, code)
    assert result_of(refused).startswith("✗ 签到尚未开始")
    walked = walk_in(editor, event_id, "赵六")
    assert walked.status_code == 409 and "签到尚未开始" in walked.text
    assert [r.checked_in_at for r in registrations(db)] == [None]


def test_a_form_without_its_token_checks_nobody_in(client, staff, console, db):
    event_id = open_session(staff, db)
    ticket = registered(client, event_id, "13800000001", "王小明")
    editor = console("editor", "education")
    response = editor.post(checkin_url(event_id), data={"code": ticket["code"]})
    assert response.status_code == 403
    assert registrations(db)[0].checked_in_at is None


def test_a_walk_in_is_registered_checked_in_and_counted(client, staff, console, db):
    event_id = open_session(staff, db, capacity=2, **door_open())
    registered(client, event_id, "13800000001", "王小明")
    editor = console("editor", "education")

    bad = walk_in(editor, event_id, "赵六", "12345")
    assert bad.status_code == 422
    assert "请填写 11 位大陆手机号，或留空。" in bad.text
    assert 'value="赵六"' in bad.text  # what was typed stays

    response = walk_in(editor, event_id, "赵六", "139 0000 0009")
    assert response.status_code == 303
    page = editor.get(response.headers["location"])
    walked = registrations(db)[-1]
    assert (walked.source, walked.status, walked.phone) == ("walk_in", R.confirmed, "13900000009")
    assert walked.checked_in_at is not None
    assert result_of(page) == f"✓ 现场登记成功 赵* 入场码 {walked.code}"
    assert counter_of(page) == "已签到 1 / 名额 2"
    assert "剩余名额 0" in visible(page.text)

    # The seats are gone: the form says so and the door cannot add one more.
    assert re.search(r'<fieldset id="walk-in-fields"\s+disabled', page.text)
    assert "名额已满，不能再现场登记。" in visible(page.text)
    full = walk_in(editor, event_id, "孙七")
    assert full.status_code == 409
    assert len(registrations(db)) == 2


# ---- the registrations list ------------------------------------------------------------------

def test_the_list_masks_personal_data_and_the_export_is_full_and_audited(
    client, staff, console, db
):
    event_id = open_session(staff, db, capacity=1)
    registered(client, event_id, "13800000001", "王小明")
    client.post(f"/api/events/{event_id}/registrations", json={
        "name": "李华", "phone": "13800000002", "consent": True, "question": "能带孩子吗？"})
    editor = console("editor", "education")

    page = editor.get(f"/console/events/{event_id}/registrations")
    assert page.status_code == 200
    assert PHONE.findall(page.text) == []  # no full number anywhere, not even in attributes
    assert "王小明" not in page.text and "李华" not in page.text
    text = visible(page.text)
    assert "王*明" in text and "138****0001" in text and "138****0002" in text
    assert "能带孩子吗？" in text and "网上报名" in text
    assert "已确认 1 候补 1 已取消 0 已签到 0 名额 1 剩余名额 0" in text
    waitlisted = re.search(r'<tr class="reg-row status-waitlisted">(.*?)</tr>', page.text, re.S)
    assert waitlisted and visible(waitlisted[1]).startswith("李* 138****0002 候补 1 能带孩子吗？")
    assert "导出 CSV（含完整个人信息）" in text
    assert f'href="/api/events/{event_id}/registrations.csv"' in page.text

    exported = editor.get(f"/api/events/{event_id}/registrations.csv")
    assert exported.status_code == 200
    table = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert table[1][3:5] == ["王小明", "13800000001"]
    assert table[2][3:5] == ["李华", "13800000002"]
    db.rollback()
    audit = db.exec(select(AuditEntry).where(AuditEntry.action == "registration.export")).all()
    assert [(a.entity_id, a.username) for a in audit] == [(event_id, "console-editor-education-0")]
    editor.get(f"/api/events/{event_id}/registrations.csv")
    db.rollback()
    assert len(db.exec(select(AuditEntry).where(
        AuditEntry.action == "registration.export")).all()) == 2

    admin = console("admin")
    log = visible(admin.get("/console/audit").text)
    assert "导出了含完整个人信息的报名名单" in log and "行数 2" in log

    host = console("host")
    assert host.get(f"/console/events/{event_id}/registrations").status_code == 403
    assign_hosts(db, event_id)
    seen = host.get(f"/console/events/{event_id}/registrations")
    assert seen.status_code == 200 and "王*明" in seen.text
    assert "导出 CSV" not in seen.text and "修改名额" not in seen.text
    assert host.get(f"/api/events/{event_id}/registrations.csv").status_code == 403
    db.rollback()
    assert len(db.exec(select(AuditEntry).where(
        AuditEntry.action == "registration.export")).all()) == 2


def test_capacity_cannot_go_below_the_confirmed_and_raising_it_moves_the_waitlist_up(
    client, staff, console, db
):
    event_id = open_session(staff, db, capacity=2)
    for number, name in enumerate(("王小明", "李华", "张三丰", "赵六"), start=1):
        registered(client, event_id, f"1380000000{number}", name)
    editor = console("editor", "education")

    lower = post_capacity(editor, event_id, "1")
    assert lower.status_code == 409
    assert "已有 2 人确认报名，名额不能少于这个人数。" in lower.text
    assert 'aria-invalid="true"' in lower.text and 'value="1"' in lower.text
    for typo in ("abc", "²", "-3", "1000001"):
        assert post_capacity(editor, event_id, typo).status_code == 422

    raised = post_capacity(editor, event_id, "3")
    assert raised.status_code == 303
    page = editor.get(raised.headers["location"])
    text = visible(page.text)
    assert "名额已修改。" in text
    assert "已按顺序从候补转为正式报名： 张*丰" in text and "赵*" not in text.split("系统")[0]
    assert [r.status for r in registrations(db)] == [R.confirmed, R.confirmed, R.confirmed,
                                                     R.waitlisted]
    assert "已确认 3 候补 1" in text
    assert 'class="reg-row status-confirmed just-promoted"' in page.text
    db.rollback()
    promoted = db.exec(select(OutboxMessage).where(OutboxMessage.topic == "promoted")).all()
    assert [m.recipient for m in promoted] == ["13800000003"]

    host = console("host")
    assign_hosts(db, event_id)
    token = csrf_of(host.get(f"/console/events/{event_id}/registrations").text)
    denied = host.post(f"/console/events/{event_id}/capacity",
                       data={"capacity": "10", "csrf_token": token})
    assert denied.status_code == 403


# ---- the outbox ------------------------------------------------------------------------------

def test_the_outbox_shows_messages_with_masked_recipients_only(client, staff, console, db):
    event_id = open_session(staff, db, capacity=30)
    for number in range(26):
        registered(client, event_id, f"139{number:08d}", f"居民{number:02d}号")
    admin = console("admin")

    page = admin.get("/console/outbox")
    assert page.status_code == 200
    assert PHONE.findall(page.text) == []
    text = visible(page.text)
    assert "139****0025" in text and "报名成功" in text and "短信" in text and "待发送" in text
    assert "您已成功报名“区教委2027年招生政策会议开放”" in text
    assert page.text.count('<tr class="outbox-row') == 50  # 26 confirmations, 26 reminders
    newest = re.search(r'<td data-label="收件人" class="recipient">([^<]+)</td>', page.text)
    assert newest and newest[1] == "139****0025"
    assert 'rel="next"' in page.text
    second = admin.get("/console/outbox?page=2")
    assert second.text.count('<tr class="outbox-row') == 2 and 'rel="prev"' in second.text

    reminders = admin.get("/console/outbox?topic=reminder")
    assert reminders.text.count('<tr class="outbox-row') == 26
    assert "活动前一天提醒" in visible(reminders.text)
    assert admin.get("/console/outbox?state=sent").text.count('<tr class="outbox-row') == 0
    assert admin.get("/console/outbox?topic=nonsense&page=²").status_code == 200

    own = console("editor", "education")
    assert own.get(f"/console/outbox?event={event_id}").text.count('<tr class="outbox-row') == 50
    other = console("editor", "civil-affairs")
    assert other.get("/console/outbox").text.count('<tr class="outbox-row') == 0
    assert console("host").get("/console/outbox").status_code == 403


def test_admins_find_the_outbox_in_the_menu_and_the_session_links_its_pages(
    staff, console, db
):
    event_id = open_session(staff, db)
    admin = console("admin")
    home = admin.get("/console").text
    assert '<a href="/console/outbox"' in home and "通知发件箱" in home
    event_page = admin.get(f"/console/events/{event_id}").text
    for href in (f"/console/events/{event_id}/checkin",
                 f"/console/events/{event_id}/registrations",
                 f"/api/events/{event_id}/registrations.csv"):
        assert f'href="{href}"' in event_page
    host = console("host")
    assign_hosts(db, event_id)
    host_page = host.get(f"/console/events/{event_id}").text
    assert f'href="/console/events/{event_id}/checkin"' in host_page
    assert "registrations.csv" not in host_page
    assert '<a href="/console/outbox"' not in console("editor", "education").get("/console").text


# ---- language --------------------------------------------------------------------------------

def _msgids() -> set[str]:
    found: set[str] = set()
    keywords = {"_": None, "gettext": None, "N_": None}
    for name in ("checkin.html", "registrations.html", "outbox.html"):
        path = FRONTEND / "templates" / "console" / name
        for _line, message, _c, _ctx in extract_from_file(
                "jinja2.ext:babel_extract", str(path), keywords=keywords,
                options={"extensions": "jinja2.ext.i18n", "trimmed": "true"}):
            found.add(message if isinstance(message, str) else message[0])
    for _line, message, _c, _ctx in extract_from_file(
            "python", str(FRONTEND / "console_registrations.py"), keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_of_these_pages_is_in_the_checkin_catalogue():
    msgids = _msgids()
    assert len(msgids) > 80
    with (FRONTEND / "locale" / "zh_CN" / "LC_MESSAGES" / "checkin.po").open("rb") as handle:
        translated = {m.id for m in read_po(handle, locale="zh_CN") if m.id and m.string}
    assert sorted(msgids - translated) == []


def test_the_door_page_speaks_english_when_asked(client, staff, console, db):
    event_id = open_session(staff, db, **door_open())
    ticket = registered(client, event_id, "13800000001", "王小明")
    editor = console("editor", "education")
    editor.get("/console?lang=en")
    page = check_in(editor, event_id, ticket["code"])
    assert result_of(page).startswith("✓ Checked in successfully")
    assert counter_of(page) == "Checked in 1 / Seats 30"
