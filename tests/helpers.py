"""Helpers the test modules share: sessions made through the API, registrations, delivery
rounds. Plain functions; the fixtures are in conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from events.delivery import deliver_due
from events.models import Registration
from server.config import Settings
from server.db import get_engine
from tests.conftest import event_body, publish, unit_id

PHONE = "13912345678"  # the mobile number registered() gives unless told another


# ---- sessions

def open_session(staff: Any, db: Session, capacity: int = 30, days: int = 10,
                 **overrides: Any) -> int:
    """A published session that starts in `days` days; its registration opened yesterday and
    closes the day before the start."""
    now = datetime.now(UTC)
    times = {"starts_at": (now + timedelta(days=days)).isoformat(),
             "ends_at": (now + timedelta(days=days, hours=2)).isoformat(),
             "registration_opens_at": (now - timedelta(days=1)).isoformat(),
             "registration_closes_at": (now + timedelta(days=days - 1)).isoformat()}
    body = event_body(db, capacity=capacity, **{**times, **overrides})
    admin = staff("admin")
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    publish(admin, created.json()["id"])
    return int(created.json()["id"])


PAST = {"starts_at": "2018-06-12T14:00:00+08:00", "ends_at": "2018-06-12T16:00:00+08:00",
        "registration_opens_at": None, "registration_closes_at": None}
FUTURE = {"starts_at": "2035-05-08T09:30:00+08:00", "ends_at": "2035-05-08T11:30:00+08:00",
          "registration_opens_at": None, "registration_closes_at": None}


# The steps from a new draft to each state; a cancel always carries a reason.
ROUTE = {
    "draft": [],
    "pending_review": ["pending_review"],
    "published": ["pending_review", "published"],
    "live": ["pending_review", "published", "live"],
    "ended": ["pending_review", "published", "live", "ended"],
    "archived": ["pending_review", "published", "live", "ended", "archived"],
    "cancelled": ["pending_review", "published", "cancelled"],
}


def started() -> dict[str, Any]:
    """Times of a session that began ten minutes ago: it may go live and end."""
    now = datetime.now(UTC)
    return {"starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "registration_opens_at": None, "registration_closes_at": None}


def move(client: TestClient, event_id: int, status: str, reason: str = "") -> Any:
    return client.post(f"/api/events/{event_id}/status",
                       json={"status": status, **({"reason": reason} if reason else {})})


def reach(admin: TestClient, db: Session, status: str, unit_code: str = "education",
          **overrides: Any) -> int:
    """A new session of the unit, moved by an admin into `status`; returns its id. A session
    taken live or ended has started, unless the caller gives its times."""
    if {"live", "ended"} & set(ROUTE[status]) and "starts_at" not in overrides:
        overrides = {**started(), **overrides}
    created = admin.post("/api/events", json=event_body(db, unit_code, **overrides))
    assert created.status_code == 201, created.text
    event_id: int = created.json()["id"]
    for step in ROUTE[status]:
        moved = move(admin, event_id, step, "因故取消" if step == "cancelled" else "")
        assert moved.status_code == 200, moved.text
    return event_id


def held(admin: TestClient, db: Session, unit: str, starts_at: str, *,
         kind: str = "open_meeting", close: bool = True, cohosts: tuple[str, ...] = (),
         cancel: bool = False) -> int:
    """A published session of `unit` starting at `starts_at`; closed out unless told not."""
    start = datetime.fromisoformat(starts_at)
    body = event_body(db, unit, kind=kind, starts_at=start.isoformat(),
                      ends_at=(start + timedelta(hours=2)).isoformat(),
                      registration_opens_at=None, registration_closes_at=None,
                      cohost_unit_ids=[unit_id(db, code) for code in cohosts])
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id: int = created.json()["id"]
    publish(admin, event_id)
    if cancel:
        response = admin.post(f"/api/events/{event_id}/status",
                              json={"status": "cancelled", "reason": "场地临时无法使用"})
        assert response.status_code == 200, response.text
    elif close:
        response = admin.post(f"/api/events/{event_id}/close", json={"minutes": "会议纪要"})
        assert response.status_code == 200, response.text
    return event_id


# ---- registrations

def post_registration(client: TestClient, event_id: int, phone: str, name: str = "王小明",
                      **extra: Any) -> Any:
    """Posts a registration to the API; the response, whatever its status."""
    return client.post(f"/api/events/{event_id}/registrations",
                       json={"name": name, "phone": phone, "consent": True, **extra})


def registered(client: TestClient, event_id: int, phone: str = PHONE, name: str = "王小明"
               ) -> dict[str, Any]:
    """A registration made through the API (201): its body."""
    response = client.post(f"/api/events/{event_id}/registrations",
                           json={"name": name, "phone": phone, "consent": True})
    assert response.status_code == 201, response.text
    return dict(response.json())


def registrations(db: Session) -> list[Registration]:
    db.rollback()  # a fresh snapshot: the app committed on its own connection
    return list(db.exec(select(Registration).order_by(Registration.id)))


# ---- delivery

def deliver(settings: Settings, now: datetime | None = None, **kwargs: Any) -> int:
    """One round as the worker does it: its own session, one commit."""
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
        sent = deliver_due(db, settings, now=now, **kwargs)
        db.commit()
    return sent


# Processes, as /proc shows them (tests of ffmpeg children and killed workers).
def children_named(parent: int, name: str) -> list[int]:
    """Live (not zombie) children of `parent` whose command is `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":\t", 1) for line in
                          (entry / "status").read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if status.get("Name", "").strip() == name and int(status["PPid"]) == parent \
                and not status.get("State", "").startswith("Z"):
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return state == "Z"


T = TypeVar("T")


def run_async(scenario: Coroutine[Any, Any, T]) -> T:
    """The scenario on an event loop of its own, in a thread (the browser tests' Playwright
    keeps one running in this one, for the rest of the session)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()
