"""Helpers for the live room's tests: a live session, viewers, sockets and frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from websockets.sync.client import connect

from events.models import Event
from events.timeutil import utcnow
from streaming import protocol, room
from streaming.models import LiveChange, LiveMessage, LiveRoom, Viewer
from streaming.transcode import run_one
from tests.conftest import event_body, publish

TIMEOUT = 5


def _live_session(staff: Any, db: Any, moderation: str = "pre", live: bool = True) -> int:
    admin = staff("admin")
    now = datetime.now(UTC)
    body = event_body(db, mode="online", venue="", address="", moderation=moderation,
                      starts_at=(now + timedelta(minutes=10)).isoformat(),
                      ends_at=(now + timedelta(hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=1)).isoformat(),
                      registration_closes_at=(now + timedelta(minutes=5)).isoformat())
    event_id = admin.post("/api/events", json=body).json()["id"]
    publish(admin, event_id)
    if live:
        answer = admin.post(f"/api/events/{event_id}/status", json={"status": "live"})
        assert answer.status_code == 200, answer.text
    return int(event_id)


def _join(client: Any, event_id: int, nickname: str) -> dict[str, Any]:
    answer = client.post(f"/api/events/{event_id}/viewers", json={"nickname": nickname})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _socket(live_server: str, event_id: int, token: str, after: int = 0) -> Any:
    url = live_server.replace("http://", "ws://") + \
        f"/ws/events/{event_id}?token={token}&after={after}"
    return connect(url, open_timeout=TIMEOUT)


def _frame(ws: Any, *, counts: bool = False) -> dict[str, Any]:
    """The next frame; `viewers` frames (how many watch) are skipped unless `counts`."""
    while True:
        frame = dict(json.loads(ws.recv(timeout=TIMEOUT)))
        if counts or frame["type"] != "viewers":
            return frame


def _nothing_more(ws: Any, wait_s: float = 0.5) -> None:
    """No message frame comes within `wait_s` (a viewer count may)."""
    with pytest.raises(TimeoutError):
        while True:
            frame = json.loads(ws.recv(timeout=wait_s))
            if frame["type"] != "viewers":
                raise AssertionError(f"a frame came that should not have: {frame}")


def _send(ws: Any, text: str, client_id: str = "c1", **extra: Any) -> None:
    ws.send(json.dumps({"type": "comment", "text": text, "client_id": client_id, **extra}))


def _upload(client: Any, event_id: int, path: Path, name: str = "recording.mp4") -> Any:
    with path.open("rb") as handle:
        return client.post(f"/api/events/{event_id}/recording",
                           files={"file": (name, handle, "video/mp4")})


def _recorded_session(staff: Any, db: Any, settings: Any, clip: Any, **overrides: Any) -> int:
    admin = staff("admin")
    now = datetime.now(UTC)
    body = event_body(db, **{"mode": "online", "venue": "", "address": "",
                             "starts_at": (now - timedelta(hours=2)).isoformat(),
                             "ends_at": (now - timedelta(hours=1)).isoformat(),
                             "registration_opens_at": (now - timedelta(days=2)).isoformat(),
                             "registration_closes_at": (now - timedelta(hours=3)).isoformat(),
                             **overrides})
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id = int(created.json()["id"])
    assert _upload(admin, event_id, clip).status_code == 202
    while run_one(settings):
        pass
    publish(admin, event_id)
    return event_id


def _host_socket(live_server: str, event_id: int, staff_client: Any, after: int = 0,
                 origin: str | None = None) -> Any:
    """The console's socket, signed in by a staff client's session cookie."""
    url = live_server.replace("http://", "ws://") + f"/ws/events/{event_id}/host?after={after}"
    cookie = staff_client.cookies.get("kaifang_session", "")
    return connect(url, open_timeout=TIMEOUT, origin=origin,  # type: ignore[arg-type]
                   additional_headers={"Cookie": f"kaifang_session={cookie}"})


def _premiered_session(staff: Any, db: Any, settings: Any, clip: Any) -> int:
    """A broadcast whose premiere ran two hours ago (post-moderated): its recording plays on
    demand now and its room is closed."""
    premiere = datetime.now(UTC) - timedelta(hours=2)
    return _recorded_session(staff, db, settings, clip, kind="broadcast", moderation="post",
                             starts_at=(premiere - timedelta(minutes=5)).isoformat(),
                             ends_at=(premiere + timedelta(hours=1)).isoformat(),
                             registration_closes_at=(premiere - timedelta(hours=1)).isoformat(),
                             premiere_at=premiere.isoformat())


def _said_during_premiere(db: Any, event_id: int,
                          said: list[tuple[str, float | None]]) -> None:
    """Comments sent while the premiere played, each by a viewer of its own at its video time
    (None: a page that sent no position), approved as the room does; committed."""
    event = db.get(Event, event_id)
    assert event is not None and event.premiere_at is not None
    premiere = event.premiere_at
    viewers = [Viewer(event_id=event_id, nickname=f"观众{n + 1}") for n in range(len(said))]
    db.add_all(viewers)
    db.commit()
    for number, ((text, video_time), viewer) in enumerate(zip(said, viewers, strict=True)):
        at = premiere + timedelta(seconds=(video_time or 0) + number / 10)
        sent = protocol.Sent(kind="comment", text=text, client_id=f"c{number}",
                             video_time=video_time)
        assert room.send(db, viewer, sent, now=at).state == "approved"
        db.commit()  # one transaction per message, as the room's socket does


def _ask(client: Any, event_id: int, token: str | None, text: str) -> Any:
    """A question through the API (the token in the body; None: the client's viewer cookie)."""
    body = {"text": text} if token is None else {"text": text, "viewer_token": token}
    return client.post(f"/api/events/{event_id}/questions", json=body)


def _vote(ws: Any, question_id: Any) -> None:
    ws.send(json.dumps({"type": "vote", "id": question_id}))


def _frame_of(ws: Any, frame_type: str) -> dict[str, Any]:
    """The next frame of this type, skipping the others (viewer counts, comments…)."""
    while True:
        frame = _frame(ws)
        if frame["type"] == frame_type:
            return frame


def approved_backlog(db: Any, event_id: int, count: int) -> None:
    """`count` approved messages (旧1, 旧2, …), each at its seq and position, as the room gives
    them: written at once, for tests of long rooms."""
    now = utcnow()
    db.execute(insert(LiveMessage), [  # type: ignore[arg-type]
        {"event_id": event_id, "kind": "comment", "author": "甲", "text": f"旧{n}",
         "client_id": "", "state": "approved", "seq": n, "pos": n, "pinned": False,
         "created_at": now, "address_key": ""} for n in range(1, count + 1)])
    ids = dict(db.execute(select(LiveMessage.seq, LiveMessage.id).where(  # type: ignore[call-overload]
        LiveMessage.event_id == event_id)).all())
    db.execute(insert(LiveChange), [  # type: ignore[arg-type]
        {"event_id": event_id, "pos": n, "kind": "comment", "message_id": ids[n],
         "pinned": False} for n in range(1, count + 1)])
    db.add(LiveRoom(event_id=event_id, last_seq=count, last_pos=count))
    db.commit()
