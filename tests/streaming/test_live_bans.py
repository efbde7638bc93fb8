"""Bans and timeouts: a ban covers the address's new viewers in that room for its duration
(a banned viewer who rejoins under any nickname from the same address cannot post), a timeout
of 5 or 10 minutes ends by itself, and the docs say the limits the code keeps."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from streaming import pace
from tests.conftest import assign_hosts
from tests.streaming.live import _ask, _join, _live_session

ROOT = Path(__file__).resolve().parents[2]


def _ban(host, event_id, viewer_id, **extra):
    return host.post(f"/api/events/{event_id}/bans",
                     json={"viewer_id": viewer_id, "reason": "刷屏广告", **extra})


def test_a_ban_covers_the_address_new_viewers_for_its_duration(client, staff, db, clock):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    family = _join(client, event_id, "家人")  # joined before the ban, from the same address
    troll = _join(client, event_id, "捣乱")
    assert _ask(client, event_id, troll["viewer_token"], "加微信").status_code == 201
    clock.advance(timedelta(seconds=30))
    banned = _ban(host, event_id, troll["viewer_id"])
    assert banned.status_code == 201, banned.text

    again = client.post(f"/api/events/{event_id}/viewers", json={"nickname": "换个名字"})
    assert (again.status_code, again.json()["error"]) == (403, "banned")
    refused = _ask(client, event_id, troll["viewer_token"], "我又来了")
    assert (refused.status_code, refused.json()["error"]) == (403, "banned")
    # Whoever joined from that address before the ban is not its author: they still ask.
    assert _ask(client, event_id, family["viewer_token"], "路灯坏了").status_code == 201
    clock.advance(timedelta(hours=1))  # a ban lasts the session
    assert client.post(f"/api/events/{event_id}/viewers",
                       json={"nickname": "第三个名字"}).status_code == 403


def test_a_timeout_ends_after_its_minutes(client, staff, db, clock):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    loud = _join(client, event_id, "急性子")
    wrong = _ban(host, event_id, loud["viewer_id"], minutes=7)
    assert (wrong.status_code, wrong.json()["error"]) == (422, "invalid_duration")
    assert _ban(host, event_id, loud["viewer_id"], minutes=5).status_code == 201
    assert _ask(client, event_id, loud["viewer_token"], "还要等多久").status_code == 403
    assert client.post(f"/api/events/{event_id}/viewers",
                       json={"nickname": "新号"}).status_code == 403
    clock.advance(timedelta(minutes=5, seconds=1))
    assert _ask(client, event_id, loud["viewer_token"], "好了吗").status_code == 201
    # Over: the viewer's question is listed like anyone's.
    listed = client.get(f"/api/events/{event_id}/questions").json()
    assert [q["text"] for q in listed] == ["好了吗"]
    assert client.post(f"/api/events/{event_id}/viewers",
                       json={"nickname": "新号"}).status_code == 201


def test_a_second_hosts_timeout_never_shortens_a_ban(client, staff, db, clock):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    troll = _join(client, event_id, "捣乱")
    assert _ban(host, event_id, troll["viewer_id"]).status_code == 201
    assert _ban(host, event_id, troll["viewer_id"], minutes=5).status_code == 201
    clock.advance(timedelta(minutes=6))
    refused = _ask(client, event_id, troll["viewer_token"], "我又来了")
    assert (refused.status_code, refused.json()["error"]) == (403, "banned")


def test_the_docs_say_the_limits_the_code_keeps():
    protocol_doc = (ROOT / "docs" / "live-protocol.md").read_text(encoding="utf-8")
    readme = re.sub(r"\s+", " ", (ROOT / "README.md").read_text(encoding="utf-8"))
    protocol_doc = re.sub(r"\s+", " ", protocol_doc)
    minutes = int(pace.JOIN_WINDOW.total_seconds() // 60)
    assert f"joining: {pace.ADDRESS_JOINS} viewers per {minutes} minutes" in protocol_doc
    assert f"{pace.ADDRESS_JOINS} joins per {minutes} minutes per address" in readme
    votes_window = int(pace.VOTE_WINDOW.total_seconds() // 60)
    assert f"{pace.ADDRESS_VOTES} votes per question per {votes_window} minutes" in protocol_doc
    assert f"{pace.ADDRESS_VOTES} votes per question per {votes_window} minutes" in readme
