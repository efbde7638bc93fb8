"""Bans from the host's console: from any message, held or approved (post-moderation too),
a ban or a 5 or 10 minute timeout, answered in JSON for the page's script so that it changes in
place (the form still posts without script), the reasons checked by the domain, and the list of
the bans that run with the time left."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from streaming import protocol, room
from streaming.models import Viewer
from tests.frontend.console_pages import csrf_of
from tests.streaming.live import _join, _live_session

JSON = {"Accept": "application/json"}


def _said(db: Session, client: Any, event_id: int, nickname: str, text: str) -> int:
    viewer = db.get(Viewer, _join(client, event_id, nickname)["viewer_id"])
    assert viewer is not None
    message = room.send(db, viewer, protocol.Sent("comment", text, "c1", None))
    db.commit()
    assert message.id is not None
    return message.id


def test_a_host_bans_or_times_out_from_an_approved_message(client, staff, console, db):
    event_id = _live_session(staff, db, moderation="post")
    spam = _said(db, client, event_id, "广告号", "加微信买房")
    keep = _said(db, client, event_id, "居民", "路灯坏了")
    editor = console("editor", "education")
    url = f"/console/events/{event_id}/live"
    page = editor.get(url).text
    choices = re.search(r'<select id="ban-message"[^>]*>(.*?)</select>', page, re.S)
    assert choices and f'value="{spam}"' in choices.group(1)  # approved: it can be banned
    assert f'value="{keep}"' in choices.group(1)
    assert 'data-max-text="300"' in page  # moderation.js reads the limit from the page
    assert 'name="minutes"' in page and "禁言 5 分钟" in page and "禁言 10 分钟" in page
    assert "目前没有被禁言的观众。" in page
    token = csrf_of(page)

    no_reason = editor.post(f"{url}/bans", headers=JSON,
                            data={"message_id": str(spam), "reason": " ", "minutes": "5",
                                  "csrf_token": token})
    assert no_reason.status_code == 422
    assert no_reason.json() == {"error": "reason_required", "message": "请填写禁言原因。"}
    odd = editor.post(f"{url}/bans", headers=JSON,
                      data={"message_id": str(spam), "reason": "广告", "minutes": "7",
                            "csrf_token": token})
    assert (odd.status_code, odd.json()["error"]) == (422, "invalid_duration")

    banned = editor.post(f"{url}/bans", headers=JSON,
                         data={"message_id": str(spam), "reason": "广告", "minutes": "5",
                               "csrf_token": token})
    assert banned.status_code == 200, banned.text
    answer = banned.json()
    assert answer["removed"] == [spam]
    assert [(b["nickname"], b["reason"], b["left_s"]) for b in answer["bans"]] == \
        [("广告号", "广告", 300)]
    shown = editor.get(url).text
    assert "广告号" in shown and "还剩 5 分钟" in shown
    assert "加微信买房" not in shown and "路灯坏了" in shown

    # Without script: the same form, a ban for the session, and the page again.
    posted = editor.post(f"{url}/bans", data={"message_id": str(keep), "reason": "测试",
                                              "minutes": "", "csrf_token": token},
                         follow_redirects=False)
    assert posted.status_code == 303
    again = editor.get(posted.headers["location"]).text
    assert "至本场结束" in again and "还剩 5 分钟" in again
