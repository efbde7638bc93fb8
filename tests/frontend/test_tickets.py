"""Registering from the session page without JavaScript, and the ticket behind the manage link."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from frontend.portal_tickets import FORM_MAX_AGE_S, FORM_PURPOSE
from server.app import create_app
from server.security import Signer
from tests.frontend.portal_pages import (
    FORM_TOKEN,
    HTML,
    count,
    form_token,
    post_form,
    register,
    ticket,
    visible,
)
from tests.helpers import open_session, registrations


class SignedLongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - FORM_MAX_AGE_S - 60


def test_registering_on_the_session_page_leads_to_the_ticket(client, staff, db):
    event_id = open_session(staff, db)
    page = client.get(f"/events/{event_id}", headers=HTML).text
    assert f'action="/events/{event_id}/register#register-form"' in page
    assert 'type="tel" inputmode="numeric" autocomplete="tel"' in page
    assert 'href="/privacy"' in page and "剩余 30 个名额" in visible(page)

    token = register(client, event_id, name="王小明", phone="138 0000 0001",
                     question="入学政策何时公布？")
    saved = registrations(db)
    assert [(r.status.value, r.phone, r.question) for r in saved] == \
        [("confirmed", "13800000001", "入学政策何时公布？")]

    shown = ticket(client, token)
    assert shown.status_code == 200
    text = visible(shown.text)
    assert "已确认" in text and saved[0].code in text
    assert "区教委2027年招生政策会议开放" in text
    assert "王*明" in text and "138****0001" in text
    assert "王小明" not in shown.text and "13800000001" not in shown.text
    qr = re.search(r'<figure class="ticket-qr"><svg[^>]*viewBox="0 0 (\d+) \1"', shown.text)
    assert qr and int(qr[1]) >= 29, "a full QR code (21 modules and a border), not Micro QR"
    assert f'href="/events/{event_id}.ics"' in shown.text
    assert f'action="/tickets/{token}' not in shown.text  # cancelling needs a confirmation
    assert f'href="/tickets/{token}/cancel"' in shown.text
    assert f'href="/tickets/{token}/erase"' in shown.text
    assert '<meta name="robots" content="noindex">' in shown.text
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert shown.headers["cache-control"] == "private, no-store"
    assert f'readonly value="http://testserver/tickets/{token}"' in shown.text  # to bookmark


def test_a_bad_phone_is_explained_in_chinese_and_the_name_is_kept(client, staff, db):
    event_id = open_session(staff, db)
    response = post_form(client, event_id, name="李雷", phone="12345", question="停车位？")
    assert response.status_code == 422
    text = visible(response.text)
    assert "请填写 11 位大陆手机号" in text
    assert 'value="李雷"' in response.text and "停车位？</textarea>" in response.text
    assert 'id="reg-phone" name="phone"' in response.text and 'aria-invalid="true"' in response.text
    assert FORM_TOKEN.search(response.text), "a fresh form token to send it again"
    assert count(db) == 0

    empty = post_form(client, event_id, name="  ", phone="")
    assert empty.status_code == 422
    assert "请填写姓名" in visible(empty.text) and "请填写手机号" in visible(empty.text)
    too_long = post_form(client, event_id, name="张" * 5000)
    assert too_long.status_code == 422 and "姓名最多 50 个字" in visible(too_long.text)
    assert count(db) == 0


def test_without_consent_nothing_is_saved(client, staff, db):
    event_id = open_session(staff, db)
    response = post_form(client, event_id, consent=False)
    assert response.status_code == 422
    assert "请阅读并同意《个人信息保护说明》后再报名" in visible(response.text)
    assert 'value="王小明"' in response.text and 'value="13800000001"' in response.text
    assert 'value="yes" required checked' not in response.text
    assert count(db) == 0


def test_the_form_token_is_required(client, staff, db, settings):
    event_id = open_session(staff, db)
    other_event = open_session(staff, db, title="另一场活动")
    good = form_token(client, event_id)
    stale = URLSafeTimedSerializer(settings.secret_key, salt=FORM_PURPOSE, signer=SignedLongAgo)
    forged = URLSafeTimedSerializer("not-our-key", salt=FORM_PURPOSE).dumps({"e": event_id,
                                                                              "n": "x"})
    for token in (None, "", "garbage", forged, good[:-2] + "xx", form_token(client, other_event),
                  stale.dumps({"e": event_id, "n": "old"})):
        response = post_form(client, event_id, token)
        assert response.status_code == 403, token
        assert "表单已过期" in visible(response.text)
        assert 'value="王小明"' in response.text  # what was typed survives
    cross_site = client.post(f"/events/{event_id}/register", headers={
        **HTML, "sec-fetch-site": "cross-site"}, data={
        "name": "王小明", "phone": "13800000001", "consent": "yes", "form_token": good})
    assert cross_site.status_code == 403
    assert count(db) == 0
    assert post_form(client, event_id, good).status_code == 303
    assert count(db) == 1


def test_a_double_submitted_form_makes_one_registration_and_hides_other_tickets(
        client, staff, db):
    event_id = open_session(staff, db)
    token = form_token(client, event_id)
    first = register(client, event_id, token=token)
    again = register(client, event_id, token=token)  # the same form, sent twice
    assert count(db) == 1
    code = registrations(db)[0].code
    assert code in visible(ticket(client, again).text)
    assert code in visible(ticket(client, first).text)

    # Someone else's page, the same number: a friendly message, never the first ticket.
    stranger = TestClient(client.app)
    response = post_form(stranger, event_id, name="冒名者")
    assert response.status_code == 409
    text = visible(response.text)
    assert "该手机号已报名本场活动" in text
    assert code not in response.text and "/tickets/" not in response.text
    assert count(db) == 1


def test_a_double_click_answered_by_another_process_still_leads_to_the_ticket(
        client, settings, staff, db):
    """With `serve --workers 2`, the two submits of a double click can reach two processes;
    the one the browser shows (the second) must still lead to the ticket."""
    event_id = open_session(staff, db)
    token = form_token(client, event_id)
    first = register(client, event_id, token=token)
    with TestClient(create_app(settings), cookies=client.cookies) as other_process:
        again = register(other_process, event_id, token=token)  # the same browser
    assert count(db) == 1
    assert registrations(db)[0].code in visible(ticket(client, again).text)
    assert ticket(client, first).status_code == 200


def test_a_full_session_sends_people_to_the_waitlist_with_their_place(client, staff, db):
    event_id = open_session(staff, db, capacity=1)
    register(client, event_id, phone="13800000001")
    page = client.get(f"/events/{event_id}", headers=HTML)
    assert "名额已满，报名将进入候补" in visible(page.text)
    assert "加入候补" in visible(page.text)
    second = register(client, event_id, name="韩梅梅", phone="13800000002")
    third = register(client, event_id, name="李雷", phone="13800000003")
    assert "候补第 1 位" in visible(ticket(client, second).text)
    text = visible(ticket(client, third).text)
    # No SMS gateway in the suite: the page promises no text (tests/events/test_sms.py).
    assert "候补第 2 位" in text and "短信" not in text
    assert "已有 2 人候补" in visible(client.get(f"/events/{event_id}", headers=HTML).text)


def test_cancelling_releases_the_seat_to_the_head_of_the_waitlist(client, staff, db):
    event_id = open_session(staff, db, capacity=1)
    holder = register(client, event_id, phone="13800000001")
    waiting = register(client, event_id, name="韩梅梅", phone="13800000002")

    confirm = client.get(f"/tickets/{holder}/cancel", headers=HTML)
    assert confirm.status_code == 200
    assert "确定取消报名吗" in visible(confirm.text)
    assert f'action="/tickets/{holder}/cancel"' in confirm.text
    assert count(db) == 2 and registrations(db)[0].status.value == "confirmed"

    done = client.post(f"/tickets/{holder}/cancel", headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("?done=released")
    after = visible(client.get(done.headers["location"], headers=HTML).text)
    assert "已取消" in after and "名额已释放" in after
    assert "取消报名" not in after.replace("报名已取消", "")  # no second cancel offered

    promoted = visible(ticket(client, waiting).text)
    assert "已确认" in promoted and "候补第" not in promoted

    # The promoted citizen can leave too; a cancelled ticket keeps showing, QR gone.
    client.post(f"/tickets/{waiting}/cancel", headers=HTML)
    gone = ticket(client, holder)
    assert gone.status_code == 200 and "<svg" not in gone.text


def test_a_waitlisted_citizen_can_leave_the_list(client, staff, db):
    event_id = open_session(staff, db, capacity=1)
    register(client, event_id, phone="13800000001")
    waiting = register(client, event_id, name="韩梅梅", phone="13800000002")
    confirm = visible(client.get(f"/tickets/{waiting}/cancel", headers=HTML).text)
    assert "确定退出候补吗" in confirm
    done = client.post(f"/tickets/{waiting}/cancel", headers=HTML, follow_redirects=False)
    assert done.headers["location"].endswith("?done=left")
    assert "您已退出候补名单" in visible(client.get(done.headers["location"], headers=HTML).text)
    assert [r.status.value for r in registrations(db)] == ["confirmed", "cancelled"]


def test_erasing_blanks_the_data_and_the_link_then_finds_nothing(client, staff, db):
    event_id = open_session(staff, db)
    token = register(client, event_id, name="欧阳娜娜", phone="13900000009",
                     question="家长能带孩子吗")
    assert "确定删除个人信息吗" in visible(client.get(f"/tickets/{token}/erase",
                                                       headers=HTML).text)
    done = client.post(f"/tickets/{token}/erase", headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/tickets/erased"
    assert "您的个人信息已删除" in visible(client.get("/tickets/erased", headers=HTML).text)
    row = registrations(db)[0]
    assert (row.name, row.phone, row.phone_hash, row.question) == ("", "", "", "")
    assert row.status.value == "cancelled" and row.erased_at is not None

    missing = ticket(client, token)
    assert missing.status_code == 404
    assert "票据链接无效" in visible(missing.text)
    assert row.code not in missing.text and "欧" not in missing.text
    assert missing.headers["cache-control"] == "private, no-store"
    assert client.post(f"/tickets/{token}/cancel", headers=HTML).status_code == 404


def test_forged_or_stale_links_show_a_friendly_404(client, staff, db):
    event_id = open_session(staff, db)
    token = register(client, event_id)
    code = registrations(db)[0].code
    for bad in (token[:-3] + "abc", "x" * 40, token.split(".")[0]):
        for path in (f"/tickets/{bad}", f"/tickets/{bad}/cancel", f"/tickets/{bad}/erase"):
            response = client.get(path, headers=HTML)
            assert response.status_code == 404, path
            assert code not in response.text and "王" not in visible(response.text)
            assert response.headers["referrer-policy"] == "no-referrer"
        assert client.post(f"/tickets/{bad}/cancel", headers=HTML).status_code == 404
    assert registrations(db)[0].status.value == "confirmed"


def test_a_script_as_a_name_is_only_text(client, staff, db):
    event_id = open_session(staff, db)
    evil = "<script>alert(1)</script>"
    kept = post_form(client, event_id, name=evil, phone="123")
    assert kept.status_code == 422
    assert evil not in kept.text and html.escape(evil, quote=True) in kept.text
    token = register(client, event_id, name=evil, question=evil)
    shown = ticket(client, token)
    assert "<script>alert" not in shown.text and "&lt;*" in shown.text


def test_registration_not_open_says_why(client, staff, db, settings):
    now = datetime.now(UTC)
    not_yet = open_session(staff, db, registration_opens_at=(now + timedelta(days=2)).isoformat())
    page = visible(client.get(f"/events/{not_yet}", headers=HTML).text)
    assert "报名将于" in page and 'name="form_token"' not in page
    none = open_session(staff, db, registration_opens_at=None, registration_closes_at=None)
    assert "无需报名" in visible(client.get(f"/events/{none}", headers=HTML).text)
    # A genuine form token, but the window is not open: refused, the page says why.
    token = Signer(settings.secret_key).dumps(FORM_PURPOSE, {"e": not_yet, "n": "x"})
    response = post_form(client, not_yet, token)
    assert response.status_code == 409
    text = visible(response.text)
    assert "本场活动已不在报名时间内" in text and "报名将于" in text
    assert count(db) == 0


def test_a_form_sent_after_registration_closed_is_refused(client, staff, db, clock):
    event_id = open_session(staff, db)
    token = form_token(client, event_id)
    staff_client = staff("admin")
    closes = clock.now + timedelta(minutes=5)
    response = staff_client.patch(f"/api/events/{event_id}", json={
        "registration_closes_at": closes.isoformat()})
    assert response.status_code == 200, response.text
    # The form stays open on the citizen's screen past the close (its token is still good).
    clock.advance(timedelta(minutes=6))
    refused = post_form(client, event_id, token)
    assert refused.status_code == 409
    assert "本场活动已不在报名时间内" in visible(refused.text)
    assert count(db) == 0


def test_unknown_sessions_are_404(client):
    response = post_form(client, 999_999, "whatever")
    assert response.status_code == 404


def test_english_on_request(client, staff, db):
    event_id = open_session(staff, db, capacity=1)
    page = client.get(f"/events/{event_id}?lang=en", headers=HTML).text
    assert ">Register</button>" in page and "Mobile number" in page
    token = register(client, event_id)
    text = visible(ticket(client, token).text)
    assert "Confirmed" in text and "Ticket code" in text and "已确认" not in text
    waiting = register(client, event_id, phone="13800000002")
    assert "Waitlist no. 1" in visible(ticket(client, waiting).text)


def test_privacy_notice_says_what_why_who_and_how_long(client, settings):
    page = client.get("/privacy", headers=HTML)
    assert page.status_code == 200
    text = visible(page.text)
    for words in ("姓名", "手机号", "问题", "138****5678", "审计日志",
                  f"活动结束 {settings.retention_days} 天后", "删除我的个人信息"):
        assert words in text, words
