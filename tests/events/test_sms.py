"""Text messages through Alibaba Cloud's SDK, against a local HTTP server that records what the
SDK sends (tests.sms_gateway); and, without a gateway, the truth: nothing is marked sent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events.delivery import UnsentSmsBackend, backend_for
from events.models import OutboxMessage
from server.app import create_app
from server.config import Settings
from tests.conftest import login, make_user
from tests.frontend.portal_pages import HTML, register, ticket, visible
from tests.helpers import PHONE, deliver, open_session, registered
from tests.sms_gateway import FakeSmsApi, with_sms


def confirmation(db: Session) -> OutboxMessage:
    db.expire_all()
    return db.exec(select(OutboxMessage).where(OutboxMessage.topic == "registration_confirmed")
                   .order_by(col(OutboxMessage.id))).one()


def test_a_text_goes_to_alibaba_cloud_with_its_template_and_parameters(
        client, staff, db, settings, sms_api: FakeSmsApi):
    event_id = open_session(staff, db, capacity=10)
    ticket_code = registered(client, event_id)["code"]
    assert deliver(with_sms(settings, sms_api)) == 1
    text, = sms_api.texts(PHONE)
    assert text["template"] == "SMS_100" and text["sign"] == "西城政务开放"
    assert text["params"]["code"] == ticket_code
    assert {"title", "time", "venue"} <= set(text["params"])
    assert (confirmation(db).state, confirmation(db).error) == ("sent", "")


def test_a_refused_text_is_retried_with_the_providers_code_and_no_number_in_logs(
        client, staff, db, settings, sms_api: FakeSmsApi, caplog):
    caplog.set_level(logging.DEBUG)
    event_id = open_session(staff, db, capacity=10)
    registered(client, event_id)
    sms_api.refuse[PHONE] = "isv.BUSINESS_LIMIT_CONTROL"
    configured = with_sms(settings, sms_api)
    now = datetime.now(UTC)
    assert deliver(configured, now) == 0
    message = confirmation(db)
    assert message.state == "failed" and "isv.BUSINESS_LIMIT_CONTROL" in message.error
    assert PHONE not in message.error
    del sms_api.refuse[PHONE]
    assert deliver(configured, now + timedelta(minutes=2)) == 1
    assert confirmation(db).state == "sent" and len(sms_api.texts(PHONE)) == 2
    assert PHONE not in caplog.text and PHONE[-4:] not in caplog.text


def test_an_unreachable_gateway_is_a_failure_without_the_number(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    registered(client, event_id)
    down = settings.model_copy(update={
        "sms_access_key_id": "id", "sms_access_key_secret": "secret", "sms_sign_name": "西城",
        "sms_endpoint": "http://127.0.0.1:9", "sms_templates": "registration_confirmed=SMS_1"})
    assert deliver(down) == 0
    message = confirmation(db)
    assert message.state == "failed" and "could not be reached" in message.error
    assert PHONE not in message.error


def test_the_access_key_secret_is_never_shown():
    settings = Settings(sms_access_key_secret="very-secret-key-value")
    assert "very-secret-key-value" not in repr(settings)


def test_without_a_gateway_texts_read_unsent_never_sent(client, staff, db, settings):
    assert isinstance(backend_for(settings, "sms"), UnsentSmsBackend)
    event_id = open_session(staff, db, capacity=10)
    registered(client, event_id)
    assert deliver(settings) == 0
    assert deliver(settings, datetime.now(UTC) + timedelta(hours=1)) == 0
    message = confirmation(db)
    assert (message.state, message.attempts, message.sent_at) == ("unsent", 1, None)
    make_user(db, "office", "admin")
    with TestClient(client.app) as console:
        login(console, "office")
        page = console.get("/console/outbox", headers=HTML).text
    rows = visible(page.split("<tbody>")[1].split("</tbody>")[0])
    assert "未发送（未配置短信网关）" in rows and "已发送" not in rows
    assert "未配置短信网关：短信不会发出" in visible(page)


def test_pages_promise_a_text_only_when_a_gateway_exists(client, staff, db, settings, sms_api):
    event_id = open_session(staff, db, capacity=1)
    register(client, event_id, phone="13800000001")
    waiting = register(client, event_id, name="韩梅梅", phone="13800000002")
    for path in (f"/tickets/{waiting}", "/privacy", f"/events/{event_id}"):
        assert "短信" not in visible(client.get(path, headers=HTML).text), path
    with TestClient(create_app(with_sms(settings, sms_api))) as texting:
        assert "短信通知您" in visible(ticket(texting, waiting).text)
        assert "短信" in visible(texting.get("/privacy", headers=HTML).text)
