"""A small district for the fuzzer: real rows behind the ids and tokens its paths can name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

from tests.conftest import PASSWORD, event_body, make_user, publish

ADMIN = "fuzz-admin"
Rows = dict[str, list[dict[str, Any]]]


@dataclass
class District:
    """The rows made, by the name of the path parameter that can name them."""

    known: dict[str, list[Any]] = field(default_factory=dict)
    # The administrator's signed session: its cookies and CSRF token.
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    rows: Rows = field(default_factory=dict)

    def add(self, name: str, value: Any) -> Any:
        self.known.setdefault(name, []).append(value)
        return value


def sign_in(session: requests.Session, username: str = ADMIN) -> None:
    """Signs the session in: its cookie, and the CSRF header on every later request."""
    answer = session.post("/api/session", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    session.headers["X-CSRF-Token"] = answer.json()["csrf_token"]


def _made(answer: requests.Response, status: int = 201) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return dict(answer.json())


def build(db: Session, admin: requests.Session) -> District:
    """Staff of three roles; sessions in several states (one open for registration with a
    ticket, one live webcast with a viewer and a question, a draft); a series, a plan item,
    an upload and a stream key. `admin` is signed in as the district's administrator (id 1)."""
    district = District()
    for username, role, unit in ((ADMIN, "admin", None), ("fuzz-editor", "editor", "education"),
                                 ("fuzz-host", "host", None)):
        district.add("user_id", make_user(db, username, role, unit).id)
    sign_in(admin)
    district.cookies = {cookie.name: str(cookie.value) for cookie in admin.cookies}
    district.csrf = str(admin.headers["X-CSRF-Token"])
    now = datetime.now(UTC).replace(microsecond=0)
    door_open = {"starts_at": (now + timedelta(minutes=30)).isoformat(),
                 "ends_at": (now + timedelta(hours=2)).isoformat(),
                 "registration_opens_at": (now - timedelta(days=1)).isoformat(),
                 "registration_closes_at": (now + timedelta(minutes=30)).isoformat()}

    meeting = district.add("event_id", _made(admin.post("/api/events", json=event_body(
        db, capacity=2, **door_open)))["id"])
    publish(admin, meeting)  # type: ignore[arg-type]
    ticket = _made(admin.post(f"/api/events/{meeting}/registrations", json={
        "name": "王小明", "phone": "13800000001", "consent": True}))
    district.add("token", ticket["manage_token"])
    district.add("code", ticket["code"])

    webcast = district.add("event_id", _made(admin.post("/api/events", json=event_body(
        db, mode="online", venue="", address="", moderation="post", **door_open)))["id"])
    publish(admin, webcast)  # type: ignore[arg-type]
    _made(admin.post(f"/api/events/{webcast}/status", json={"status": "live"}), 200)
    viewer = _made(admin.post(f"/api/events/{webcast}/viewers", json={"nickname": "张阿姨"}))
    district.add("viewer_id", viewer["viewer_id"])
    question = _made(admin.post(f"/api/events/{webcast}/questions", json={
        "text": "停车难怎么解决？", "viewer_token": viewer["viewer_token"]}))
    district.add("question_id", question["id"])
    _made(admin.post(f"/api/events/{webcast}/ingest"))

    draft = district.add("event_id", _made(admin.post("/api/events", json=event_body(db)))["id"])
    upload = _made(admin.post(f"/api/events/{draft}/uploads", json={"size": 10}))
    district.add("token", upload["url"].rsplit("/", 1)[1])

    series = _made(admin.post("/api/series", json={
        "title": "市民对话一把手", "unit_id": event_body(db)["unit_id"], "summary": ""}))
    district.add("series_id", series["id"])
    item = _made(admin.post("/api/plan/items", json={
        "year": now.year, "topic": "义务教育入学政策", "unit_code": "education", "month": 6}))
    district.add("item_id", item["id"])
    district.add("unit_id", event_body(db)["unit_id"])
    district.add("code", "education")
    return district


def snapshot(engine: Engine) -> Rows:
    """Every row of every table, to lay the same district into another fresh database."""
    with engine.connect() as conn:
        return {table.name: [dict(row) for row in conn.execute(table.select()).mappings()]
                for table in SQLModel.metadata.sorted_tables}


def restore(engine: Engine, rows: Rows) -> None:
    """The database holds exactly `rows` (a snapshot of the same schema), and PostgreSQL's
    sequences continue after them: ~20 ms, where building the district again takes ~0.4 s."""
    tables = SQLModel.metadata.sorted_tables
    with engine.begin() as conn:
        for table in reversed(tables):
            conn.execute(table.delete())
        for table in tables:
            if rows.get(table.name):
                conn.execute(table.insert(), rows[table.name])
        if engine.dialect.name != "postgresql":
            return
        for table in tables:
            for column in table.primary_key.columns:
                if column.autoincrement is True or (
                        column.autoincrement == "auto" and len(table.primary_key.columns) == 1
                        and column.type.python_type is int):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', "
                        f"'{column.name}'), COALESCE(MAX(\"{column.name}\"), 1), "
                        f"MAX(\"{column.name}\") IS NOT NULL) FROM \"{table.name}\""))
