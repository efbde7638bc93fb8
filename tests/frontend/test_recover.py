"""找回我的报名: a lost ticket link found again with a one-time code texted to the phone."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events import recovery
from events.models import OutboxMessage, RecoveryChallenge
from server.app import create_app
from server.config import Settings
from server.db import get_engine
from tests.conftest import login, make_user
from tests.frontend.portal_pages import FORM_TOKEN, HTML, register, visible
from tests.helpers import deliver, open_session
from tests.sms_gateway import FakeSmsApi, texted_code, with_sms

TICKET_LINK = re.compile(r'href="(/tickets/[^"/]+)"')
PHONE = "13800000007"
STRANGER = "13800000009"


@pytest.fixture
def settings(settings: Settings, sms_api: FakeSmsApi) -> Settings:
    return with_sms(settings, sms_api)


def token_of(page: str) -> str:
    found = FORM_TOKEN.search(page)
    assert found, "the page offers no form"
    return html.unescape(found[1])


def ask_code(client: TestClient, phone: str) -> Any:
    form = client.get("/tickets/recover", headers=HTML)
    assert form.status_code == 200
    return client.post("/tickets/recover", headers=HTML,
                       data={"phone": phone, "form_token": token_of(form.text)})


def enter(client: TestClient, asked: Any, phone: str, code: str) -> Any:
    return client.post("/tickets/recover/code", headers=HTML,
                       data={"phone": phone, "code": code, "form_token": token_of(asked.text)})


def test_the_code_texted_to_the_phone_opens_its_tickets(client, staff, db, settings, sms_api):
    event_id = open_session(staff, db)
    token = register(client, event_id, phone=PHONE)
    session_page = client.get(f"/events/{event_id}", headers=HTML).text
    assert 'href="/tickets/recover"' in session_page  # the way back, on the session page

    asked = ask_code(client, PHONE)
    assert asked.status_code == 200
    assert "private" in asked.headers["cache-control"]
    assert "no-store" in asked.headers["cache-control"]
    assert "验证码 10 分钟内有效" in visible(asked.text)
    deliver(settings)
    code = texted_code(sms_api, PHONE)

    # Staff read the text with the code masked, and never a ticket link.
    make_user(db, "office", "admin")
    with TestClient(client.app) as console:
        login(console, "office")
        outbox = console.get("/console/outbox", headers=HTML).text
    assert "找回报名验证码" in visible(outbox) and "验证码 ******" in visible(outbox)
    assert code not in outbox and "/tickets/" not in outbox
    db.expire_all()
    row = db.exec(select(OutboxMessage).where(OutboxMessage.topic == "recovery_code")).one()
    assert code not in row.body and code not in row.sms_params  # gone once sent

    found = enter(client, asked, PHONE, code)
    assert found.status_code == 200, found.text
    assert "no-store" in found.headers["cache-control"]
    links = [link for link in TICKET_LINK.findall(found.text) if link != "/tickets/recover"]
    assert len(links) == 1
    opened = client.get(links[0], headers=HTML)
    assert opened.status_code == 200
    code_on_ticket = re.search(r'class="ticket-code">([^<]+)<', opened.text)
    original = client.get(f"/tickets/{token}", headers=HTML).text
    assert code_on_ticket and code_on_ticket[1] in original
    # Used once: the same code opens nothing again.
    assert enter(client, asked, PHONE, code).status_code == 422
    # A day later the worker forgets the challenge and the number the code went to.
    with Session(get_engine(settings.sqlalchemy_url)) as worker_db:
        recovery.forget_expired(worker_db, datetime.now(UTC) + timedelta(days=1, minutes=1))
        worker_db.commit()
    db.expire_all()
    assert db.exec(select(RecoveryChallenge)).first() is None
    assert db.exec(select(OutboxMessage.recipient).where(
        OutboxMessage.topic == "recovery_code")).one() == ""


def test_wrong_codes_are_limited(client, staff, db, settings, sms_api):
    event_id = open_session(staff, db)
    register(client, event_id, phone=PHONE)
    asked = ask_code(client, PHONE)
    deliver(settings)
    code = texted_code(sms_api, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _try in range(recovery.MAX_TRIES - 1):
        answer = enter(client, asked, PHONE, wrong)
        assert answer.status_code == 422 and "验证码不正确或已过期" in visible(answer.text)
    assert enter(client, asked, PHONE, wrong).status_code == 429
    locked = enter(client, asked, PHONE, code)  # even the right code, now
    assert locked.status_code == 429 and "错误次数过多" in visible(locked.text)
    assert [link for link in TICKET_LINK.findall(locked.text) if link != "/tickets/recover"] == []


def test_a_code_expires(client, staff, db, settings, sms_api):
    event_id = open_session(staff, db)
    register(client, event_id, phone=PHONE)
    ask_code(client, PHONE)
    deliver(settings)
    code = texted_code(sms_api, PHONE)
    later = datetime.now(UTC) + recovery.CODE_LIFETIME + timedelta(seconds=1)
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        outcome = recovery.enter_code(session, client.app.state.signer, PHONE, code, now=later)
    assert outcome.status == "wrong" and not outcome.found


def test_an_expired_code_is_not_texted(client, staff, db, settings, sms_api):
    event_id = open_session(staff, db)
    register(client, event_id, phone=PHONE)
    ask_code(client, PHONE)
    deliver(settings, datetime.now(UTC) + recovery.CODE_LIFETIME + timedelta(seconds=1))
    assert not [t for t in sms_api.texts(PHONE) if t["template"] == "SMS_106"]


def test_answers_never_tell_whether_a_number_is_registered(client, staff, db, settings,
                                                          sms_api):
    event_id = open_session(staff, db)
    register(client, event_id, phone=PHONE)
    registered, stranger = ask_code(client, PHONE), ask_code(client, STRANGER)
    assert registered.status_code == stranger.status_code == 200

    def shown(page: Any, phone: str) -> str:
        return visible(FORM_TOKEN.sub("", page.text)).replace(phone, "PHONE")

    assert shown(registered, PHONE) == shown(stranger, STRANGER)
    deliver(settings)
    assert sms_api.texts(STRANGER) == []  # nobody else's phone gets a text
    wrong = [enter(client, registered, PHONE, "999999"),
             enter(client, stranger, STRANGER, "999999")]
    assert wrong[0].status_code == wrong[1].status_code == 422
    assert shown(wrong[0], PHONE) == shown(wrong[1], STRANGER)
    db.expire_all()
    # Nothing stored names the number or the code.
    for challenge in db.exec(select(RecoveryChallenge)):
        assert PHONE not in challenge.phone_key and challenge.code_hash != texted_code(sms_api,
                                                                                       PHONE)


def test_codes_per_number_are_limited_alike(client, staff, db, settings):
    event_id = open_session(staff, db)
    register(client, event_id, phone=PHONE)
    for phone in (PHONE, STRANGER):
        for _ask in range(recovery.CODES_PER_PHONE):
            assert ask_code(client, phone).status_code == 200
        refused = ask_code(client, phone)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "次数过多" in visible(refused.text)
    db.expire_all()
    assert len(list(db.exec(select(OutboxMessage).where(
        col(OutboxMessage.topic) == "recovery_code")))) == recovery.CODES_PER_PHONE


def test_a_bad_number_is_explained(client):
    answer = ask_code(client, "12345")
    assert answer.status_code == 422 and "11 位" in visible(answer.text)


@pytest.fixture
def no_gateway_app(settings: Settings) -> Iterator[FastAPI]:
    yield create_app(settings.model_copy(update={"sms_templates": ""}))


def test_without_a_gateway_the_page_says_so_and_sends_nothing(no_gateway_app, db):
    with TestClient(no_gateway_app) as client:
        page = client.get("/tickets/recover", headers=HTML)
        assert page.status_code == 200 and "尚未开通短信服务" in visible(page.text)
        assert 'action="/tickets/recover"' not in page.text
        assert 'href="/tickets/recover"' not in client.get("/", headers=HTML).text
        posted = client.post("/tickets/recover", headers=HTML, data={"phone": PHONE})
        assert posted.status_code == 409
    assert db.exec(select(RecoveryChallenge)).first() is None


def test_in_english_on_request(client):
    page = client.get("/tickets/recover", headers=HTML)
    assert "找回我的报名" in page.text and "获取验证码" in page.text
    page = client.get("/tickets/recover", params={"lang": "en"}, headers=HTML)
    assert "Find my registration" in page.text and "Send me a code" in page.text


def test_a_number_typed_in_full_width_digits_gets_its_code(client, staff, db, settings, sms_api):
    """A Chinese keyboard types full-width digits: the same number as at registration."""
    event_id = open_session(staff, db)
    register(client, event_id, phone=PHONE)
    wide = PHONE.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert ask_code(client, wide).status_code == 200
    deliver(settings)
    assert [t for t in sms_api.texts(PHONE) if t["template"] == "SMS_106"]  # the code's text
