"""What the room is sent about questions: a question asked over the socket in post-moderation
reaches everyone as a `question` frame; a burst of votes is a few batched `votes` frames, not a
frame per vote to every socket; and votes have a limit of their own per address and question."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from events.models import Event
from streaming import pace, room, tallies
from tests.streaming.live import _ask, _frame, _frame_of, _join, _live_session, _socket


def _viewer_at(app: Any, db: Any, event_id: int, nickname: str, address: str) -> str:
    """A viewer who joined from `address` (the API's joins all come from the test client's)."""
    event = db.get(Event, event_id)
    _viewer, token = room.join(db, app.state.signer, event, nickname, address)
    db.commit()
    return token


def test_a_question_sent_over_the_socket_in_post_moderation_reaches_the_room(
        client, staff, db, live_server):
    event_id = _live_session(staff, db, moderation="post")
    asker, other = _join(client, event_id, "甲"), _join(client, event_id, "乙")
    with _socket(live_server, event_id, asker["viewer_token"]) as a, \
            _socket(live_server, event_id, other["viewer_token"]) as b:
        _frame(a), _frame(b)
        a.send(json.dumps({"type": "question", "text": "路灯什么时候修？", "client_id": "q1"}))
        for ws in (a, b):
            got = _frame_of(ws, "question")
            assert (got["text"], got["author"], got["state"], got["votes"]) == \
                ("路灯什么时候修？", "甲", "approved", 0)
    listed = client.get(f"/api/events/{event_id}/questions").json()
    assert [q["id"] for q in listed] == [got["id"]]


def test_a_burst_of_votes_reaches_each_socket_as_a_few_batched_counts(
        client, staff, db, app, live_server):
    event_id = _live_session(staff, db, moderation="post")
    asker = _join(client, event_id, "问")
    question_id = _ask(client, event_id, asker["viewer_token"], "加装电梯？").json()["id"]
    voters = [_viewer_at(app, db, event_id, f"邻居{n}", f"10.{n}.0.1") for n in range(12)]
    with _socket(live_server, event_id, asker["viewer_token"]) as ws:
        _frame(ws)
        started = time.monotonic()
        for token in voters:
            cast = client.post(f"/api/questions/{question_id}/votes",
                               json={"viewer_token": token})
            assert cast.status_code == 201, cast.text
        burst_s = time.monotonic() - started
        frames, deadline = [], time.monotonic() + 3
        while time.monotonic() < deadline:
            got = _frame(ws)
            frames.append(got)
            if got["type"] == "votes" and got["counts"] == {str(question_id): 12}:
                break
    assert frames[-1] == {"type": "votes", "counts": {str(question_id): 12}}
    assert [f for f in frames if f["type"] == "question"] == []  # no frame per vote
    # At most one count a second (tallies.VoteCounts.EVERY_S), however long the burst took on a busy
    # machine; a frame per vote would be 12.
    assert len(frames) <= math.ceil(burst_s / tallies.VoteCounts.EVERY_S) + 2, (burst_s, frames)
    assert len(frames) < len(voters), frames


def test_votes_are_limited_per_address_and_question(client, staff, db, app):
    event_id = _live_session(staff, db, moderation="post")
    first = _ask(client, event_id, _join(client, event_id, "一")["viewer_token"], "问题一")
    second = _ask(client, event_id, _join(client, event_id, "二")["viewer_token"], "问题二")
    family = [_viewer_at(app, db, event_id, f"家{n}", "203.0.113.7")
              for n in range(pace.ADDRESS_VOTES + 1)]
    answers = [client.post(f"/api/questions/{first.json()['id']}/votes",
                           json={"viewer_token": token}) for token in family]
    # A family on one Wi-Fi may vote; past ADDRESS_VOTES, minted viewers of one address may not.
    assert [a.status_code for a in answers] == [201] * pace.ADDRESS_VOTES + [429]
    assert answers[-1].json()["error"] == "rate_limited"
    # Another question, and another address, are counted apart.
    assert client.post(f"/api/questions/{second.json()['id']}/votes",
                       json={"viewer_token": family[-1]}).status_code == 201
    neighbour = _viewer_at(app, db, event_id, "邻", "198.51.100.9")
    assert client.post(f"/api/questions/{first.json()['id']}/votes",
                       json={"viewer_token": neighbour}).status_code == 201
    listed = {q["text"]: q["votes"] for q in
              client.get(f"/api/events/{event_id}/questions").json()}
    assert listed == {"问题一": pace.ADDRESS_VOTES + 1, "问题二": 1}
