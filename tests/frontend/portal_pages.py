"""The portal's pages as a citizen's browser without JavaScript uses them (TestClient): the
registration form, the ticket, the text a reader sees; sessions made for them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from events.models import Registration
from tests.conftest import event_body, publish

HTML = {"accept": "text/html"}
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
TICKET = re.compile(r"^/tickets/([^/#?]+)#ticket$")
TAG = re.compile(r"<[^>]+>")


def form_token(client: TestClient, event_id: int) -> str:
    page = client.get(f"/events/{event_id}", headers=HTML)
    assert page.status_code == 200
    found = FORM_TOKEN.search(page.text)
    assert found, "the session page offers no registration form"
    return html.unescape(found[1])


def post_form(client: TestClient, event_id: int, token: str | None = "fresh", *,
              name: str = "王小明", phone: str = "13800000001", question: str = "",
              consent: bool = True) -> Any:
    data = {"name": name, "phone": phone, "question": question}
    if consent:
        data["consent"] = "yes"
    if token == "fresh":
        token = form_token(client, event_id)
    if token is not None:
        data["form_token"] = token
    return client.post(f"/events/{event_id}/register", data=data, headers=HTML,
                       follow_redirects=False)


def register(client: TestClient, event_id: int, **fields: Any) -> str:
    """Registers through the form; returns the manage token the redirect leads to."""
    response = post_form(client, event_id, **fields)
    assert response.status_code == 303, response.text
    found = TICKET.match(response.headers["location"])
    assert found, response.headers["location"]
    return found[1]


def ticket(client: TestClient, token: str, **params: str) -> Any:
    return client.get(f"/tickets/{token}", params=params, headers=HTML)


def visible(page: str) -> str:
    return " ".join(TAG.sub(" ", page).split())


def count(db: Session) -> int:
    db.rollback()
    return int(db.exec(select(func.count()).select_from(Registration)).one())


def future(days: int, hour_utc: int = 1, minute: int = 30) -> datetime:
    """A moment some days ahead at a fixed UTC clock time (01:30Z is 09:30 in Beijing)."""
    day = datetime.now(UTC) + timedelta(days=days)
    return day.replace(hour=hour_utc, minute=minute, second=0, microsecond=0)


def create(admin: TestClient, db: Any, unit: str = "education", *, starts: datetime,
           hours: int = 2, publish_it: bool = True, **over: Any) -> dict[str, Any]:
    body = event_body(db, unit, starts_at=starts.isoformat(),
                      ends_at=(starts + timedelta(hours=hours)).isoformat(),
                      registration_opens_at=None, registration_closes_at=None)
    body.update(over)
    response = admin.post("/api/events", json=body)
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    if publish_it:
        publish(admin, event["id"])
    return event
