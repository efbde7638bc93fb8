"""The staff console's pages through their forms (TestClient): signing in, the CSRF token, the
session form; the crafted past year the quota pages are tested over."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.conftest import PASSWORD, event_body, publish, unit_id

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
YEAR = 2025  # a past year: sessions can be closed out, every deadline has passed


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a csrf_token"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/console/login")
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)


def session_form(db: Session, **over: str | list[str]) -> dict[str, Any]:
    form: dict[str, Any] = {
        "kind": "open_meeting",
        "title": "区教委2027年招生政策会议开放",
        "summary": "邀请家长代表列席。",
        "starts_at": "2027-03-10T09:30",
        "ends_at": "2027-03-10T11:30",
        "mode": "in_person",
        "venue": "区教委三层会议室",
        "address": "西城区教育街1号",
        "capacity": "30",
        "registration_opens_at": "2027-02-20T09:00",
        "registration_closes_at": "2027-03-09T18:00",
        "moderation": "pre",
        "premiere_at": "",
        "cohost_unit_ids": [str(unit_id(db, "civil-affairs"))],
        "material_title": ["政策解读", ""],
        "material_url": ["https://www.bjxch.gov.cn/zcjd.html", ""],
    }
    form.update(over)
    return form


def post_form(client: TestClient, page_url: str, action: str, data: dict[str, Any]) -> Any:
    """Loads the page the form is on (for its token), then posts it like a browser."""
    token = csrf_of(client.get(page_url).text)
    return client.post(action, data={**data, "csrf_token": token}, follow_redirects=False)


def create_via_form(client: TestClient, db: Session, **over: Any) -> int:
    response = post_form(client, "/console/events/new", "/console/events/new",
                         session_form(db, **over))
    assert response.status_code == 303, response.text
    found = re.match(r"/console/events/(\d+)\?done=created", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def submit(client: TestClient, event_id: int) -> None:
    response = post_form(client, f"/console/events/{event_id}",
                         f"/console/events/{event_id}/status", {"status": "pending_review"})
    assert response.status_code == 303, response.text


def session(admin: TestClient, db: Session, unit: str, kind: str, starts: str, title: str, *,
            close: bool = True, state: str = "published", cohosts: tuple[str, ...] = (),
            attendees: int | None = 25) -> int:
    """One session of the crafted year: published (and closed out), cancelled or a draft."""
    day, clock = starts.split(" ")
    hour, minute = (int(x) for x in clock.split(":"))
    body = event_body(db, unit, kind=kind, title=title,
                      starts_at=f"{day}T{clock}:00+08:00",
                      ends_at=f"{day}T{hour + 1:02d}:{minute:02d}:00+08:00" if hour < 23
                      else f"{day}T23:59:00+08:00",
                      registration_opens_at=None, registration_closes_at=None,
                      cohost_unit_ids=[unit_id(db, c) for c in cohosts])
    response = admin.post("/api/events", json=body)
    assert response.status_code == 201, response.text
    event_id = int(response.json()["id"])
    if state == "draft":
        return event_id
    publish(admin, event_id)
    if state == "cancelled":
        response = admin.post(f"/api/events/{event_id}/status",
                              json={"status": "cancelled", "reason": "场地临时维修"})
        assert response.status_code == 200, response.text
    elif close:
        response = admin.post(f"/api/events/{event_id}/close",
                              json={"minutes": "会议纪要：听取意见12条。",
                                    "attendee_count": attendees,
                                    "attendance_reason": "现场按纸质签到表统计"})
        assert response.status_code == 200, response.text
    return event_id


def crafted_year(admin: TestClient, db: Session) -> dict[str, int]:
    """区教委 meets every rule (one meeting late on 20 July); 区民政局 misses (07:30 on 21 July,
    a cancelled one, an unclosed one); 西长安街街道 co-hosts one and has a draft; 区政府办公室
    (no quota) holds one."""
    ids = {
        "edu_march": session(admin, db, "education", "open_meeting", f"{YEAR}-03-10 09:30",
                             "区教委招生政策会议开放"),
        "edu_july": session(admin, db, "education", "open_meeting", f"{YEAR}-07-20 22:30",
                            "区教委暑期托管会议开放", cohosts=("xichangan",)),
        "edu_report": session(admin, db, "education", "public_report", f"{YEAR}-05-16 14:00",
                              "区教委向公众报告<年度>工作"),
        "edu_day": session(admin, db, "education", "open_day", f"{YEAR}-09-20 09:00",
                           "区教委政府开放日"),
        "civil_late": session(admin, db, "civil-affairs", "open_meeting", f"{YEAR}-07-21 07:30",
                              "区民政局养老服务会议开放"),
        "civil_cancelled": session(admin, db, "civil-affairs", "open_meeting",
                                   f"{YEAR}-04-08 09:30", "区民政局低保审核会议开放",
                                   state="cancelled"),
        "civil_unclosed": session(admin, db, "civil-affairs", "public_report",
                                  f"{YEAR}-06-12 09:30", "区民政局向公众报告", close=False),
        "xichangan_draft": session(admin, db, "xichangan", "open_day", f"{YEAR}-10-18 09:00",
                                   "西长安街街道开放日草稿", state="draft"),
        "office": session(admin, db, "government-office", "open_meeting", f"{YEAR}-11-05 10:00",
                          "区政府办公室会议开放"),
    }
    return ids
