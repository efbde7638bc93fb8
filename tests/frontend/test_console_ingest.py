"""The console's ingest page without JavaScript: who may open it, the key shown on the answer
that issues it and never after, a replaced key that stops working, a revoke, the refusal the
gate noted, and a session over that takes none."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import Session, select

from streaming import ingest
from streaming.models import LiveStream
from tests.conftest import assign_hosts
from tests.frontend.console_pages import post_form
from tests.streaming.rtmp_helpers import webcast_session

KEY = re.compile(r'id="stream-key" type="text" readonly value="([A-Za-z0-9_-]+)"')


def page_url(event_id: int) -> str:
    return f"/console/events/{event_id}/ingest"


def _issue(client: Any, event_id: int) -> str:
    answer = post_form(client, page_url(event_id), page_url(event_id), {})
    assert answer.status_code == 200, answer.text
    assert "no-store" in answer.headers["cache-control"]
    found = KEY.search(answer.text)
    assert found, answer.text
    assert "请立即复制密钥" in answer.text  # and the warning that it is shown once
    return found.group(1)


def test_the_key_is_on_the_answer_that_issues_it_and_never_after(
        staff: Any, console: Any, db: Session) -> None:
    _, event_id = webcast_session(staff, db)
    editor = console("editor", "education")
    first = editor.get(page_url(event_id))
    assert first.status_code == 200
    assert "目前没有有效的推流密钥" in first.text and "生成推流密钥" in first.text

    key = _issue(editor, event_id)
    assert ingest.publisher_of(db, key).event_id == event_id
    again = editor.get(page_url(event_id))
    assert key not in again.text and "已设置推流密钥，有效期至" in again.text
    assert "更换推流密钥（旧密钥立即失效）" in again.text

    replaced = _issue(editor, event_id)
    assert replaced != key
    db.expire_all()
    with pytest.raises(ingest.KeyRefused):
        ingest.publisher_of(db, key)

    revoked = post_form(editor, page_url(event_id), f"{page_url(event_id)}/revoke", {})
    assert revoked.status_code == 303
    shown = editor.get(revoked.headers["location"])
    assert "推流密钥已撤销" in shown.text and "目前没有有效的推流密钥" in shown.text
    db.expire_all()
    with pytest.raises(ingest.KeyRefused):
        ingest.publisher_of(db, replaced)


def test_only_those_who_run_the_session_open_it_and_it_is_linked(
        staff: Any, console: Any, db: Session) -> None:
    _, event_id = webcast_session(staff, db)
    host = console("host")
    assert host.get(page_url(event_id)).status_code == 403
    assert console("editor", "civil-affairs").get(page_url(event_id)).status_code == 403
    assign_hosts(db, event_id)
    assert host.get(page_url(event_id)).status_code == 200
    session_page = console("editor", "education").get(f"/console/events/{event_id}")
    assert f'href="{page_url(event_id)}"' in session_page.text


def test_the_gates_refusal_is_shown_and_a_session_over_takes_no_key(
        staff: Any, console: Any, db: Session) -> None:
    admin, event_id = webcast_session(staff, db)
    editor = console("editor", "education")
    _issue(editor, event_id)
    ingest.note_error(db, event_id, ingest.EXPIRED_KEY)
    db.commit()
    assert ingest.EXPIRED_KEY in editor.get(page_url(event_id)).text
    assert admin.post(f"/api/events/{event_id}/status",
                      json={"status": "cancelled", "reason": "场地维修"}).status_code == 200
    page = editor.get(page_url(event_id))
    assert "不再接收直播推流" in page.text and 'id="issue-key"' not in page.text
    db.expire_all()
    before = db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).one().key_hash
    assert editor.post(page_url(event_id), data={"csrf_token": "x"}).status_code == 403
    refused = post_form(editor, page_url(event_id), page_url(event_id), {})
    assert refused.status_code == 409 and KEY.search(refused.text) is None
    db.expire_all()
    assert db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).one().key_hash \
        == before
