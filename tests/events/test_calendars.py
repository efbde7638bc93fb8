"""Calendars (RFC 5545) and the Atom feed (RFC 4287), read back as a calendar app or the district
portal would read them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session

from events.timeutil import LOCAL_TZ
from tests.conftest import event_body, publish, unit_id

ATOM = "{http://www.w3.org/2005/Atom}"


def _create(editor: TestClient, db: Session, unit: str = "education", **over: Any) -> int:
    response = editor.post("/api/events", json=event_body(db, unit, **over))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _published(admin: TestClient, db: Session, unit: str = "education", **over: Any) -> int:
    event_id = _create(admin, db, unit, **over)
    publish(admin, event_id)
    return event_id


def _calendar(client: TestClient, path: str) -> tuple[bytes, Calendar]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert ".ics" in response.headers["content-disposition"]
    return response.content, Calendar.from_ical(response.content)


def _vevents(calendar: Calendar) -> dict[str, Any]:
    return {str(ev["UID"]): ev for ev in calendar.walk("VEVENT")}


def _feed(client: TestClient) -> ET.Element:
    response = client.get("/feed.atom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(response.content)


def _iso(days: float, hour: int = 9) -> str:
    """A Beijing wall time `days` from today."""
    day = datetime.now(LOCAL_TZ) + timedelta(days=days)
    return day.replace(hour=hour, minute=30, second=0, microsecond=0).isoformat()


def test_a_session_keeps_its_beijing_wall_time(staff: Any, client: TestClient,
                                               db: Session) -> None:
    admin = staff("admin")
    event_id = _published(admin, db, address="西城区二龙路27号")
    raw, calendar = _calendar(client, f"/events/{event_id}.ics")

    assert calendar["VERSION"] == "2.0"
    assert calendar["CALSCALE"] == "GREGORIAN"
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["PRODID"]
    assert calendar["X-WR-CALNAME"] == "西城区政务开放活动"
    assert calendar["X-WR-TIMEZONE"] == "Asia/Shanghai"
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]

    assert b"DTSTART;TZID=Asia/Shanghai:20270310T093000\r\n" in raw
    assert b"DTEND;TZID=Asia/Shanghai:20270310T113000\r\n" in raw
    event = _vevents(calendar)[f"event-{event_id}@kaifang"]
    start = event.decoded("DTSTART")
    assert start.astimezone(UTC) == datetime(2027, 3, 10, 1, 30, tzinfo=UTC)
    assert event["SUMMARY"] == "区教委2027年招生政策会议开放"
    assert event["STATUS"] == "CONFIRMED"
    assert event["URL"] == f"http://testserver/events/{event_id}"
    assert event["LOCATION"] == "区教委三层会议室，西城区二龙路27号"
    assert event.categories == ["会议开放"]
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTAMP").tzinfo is not None
    assert event.decoded("LAST-MODIFIED").tzinfo is not None
    description = str(event["DESCRIPTION"])
    assert "邀请家长代表列席" in description
    assert "会议开放" in description
    assert "报名" in description
    assert f"http://testserver/events/{event_id}" in description


def test_every_line_ends_in_crlf_and_folds_at_75_octets(staff: Any, client: TestClient,
                                                        db: Session) -> None:
    admin = staff("admin")
    summary = "本次会议开放邀请市民代表列席，听取老旧小区综合整治的方案、资金安排与施工时序。" * 12
    event_id = _published(admin, db, summary=summary)
    raw, calendar = _calendar(client, f"/events/{event_id}.ics")

    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")[:-1]
    assert max(len(line) for line in lines) <= 75
    for line in lines:
        line.decode("utf-8")  # folding never splits a character
    assert any(line.startswith(b" ") for line in lines)
    # Unfolded, the long Chinese summary comes back whole.
    event = _vevents(calendar)[f"event-{event_id}@kaifang"]
    assert summary in str(event["DESCRIPTION"])


def test_drafts_and_sessions_in_review_are_not_published(staff: Any, client: TestClient,
                                                        db: Session) -> None:
    editor = staff("editor", "education")
    draft = _create(editor, db, title="草稿：尚未审核")
    in_review = _create(editor, db, title="送审中")
    assert editor.post(f"/api/events/{in_review}/status",
                       json={"status": "pending_review"}).status_code == 200

    for event_id in (draft, in_review, 999_999, 10**12):
        response = client.get(f"/events/{event_id}.ics")
        assert response.status_code == 404
        assert response.json()["error"] == "event_not_found"
    _, calendar = _calendar(client, "/calendar.ics")
    assert _vevents(calendar) == {}
    _, unit_calendar = _calendar(client, "/units/education.ics")
    assert _vevents(unit_calendar) == {}
    assert _feed(client).findall(f"{ATOM}entry") == []


def test_a_cancelled_session_stays_in_the_calendar_as_cancelled(staff: Any, client: TestClient,
                                                               db: Session) -> None:
    admin = staff("admin")
    event_id = _published(admin, db)
    before = _vevents(_calendar(client, f"/events/{event_id}.ics")[1])[f"event-{event_id}@kaifang"]
    response = admin.post(f"/api/events/{event_id}/status",
                          json={"status": "cancelled", "reason": "因场地检修取消"})
    assert response.status_code == 200, response.text

    for path in (f"/events/{event_id}.ics", "/calendar.ics", "/units/education.ics"):
        raw, calendar = _calendar(client, path)
        assert b"STATUS:CANCELLED\r\n" in raw
        event = _vevents(calendar)[f"event-{event_id}@kaifang"]
        assert event["STATUS"] == "CANCELLED"
        assert event["SEQUENCE"] > before["SEQUENCE"]
        assert "因场地检修取消" in str(event["DESCRIPTION"])
    entry = _feed(client).find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title", "").startswith("【已取消】")


def test_the_sequence_rises_when_a_session_is_postponed(staff: Any, client: TestClient,
                                                       db: Session) -> None:
    admin = staff("admin")
    event_id = _published(admin, db)
    uid = f"event-{event_id}@kaifang"
    first = _vevents(_calendar(client, f"/events/{event_id}.ics")[1])[uid]

    response = admin.post(f"/api/events/{event_id}/postpone", json={
        "starts_at": "2027-03-17T14:00:00+08:00", "ends_at": "2027-03-17T16:00:00+08:00",
        "reason": "与区人大会议时间冲突"})
    assert response.status_code == 200, response.text
    raw, calendar = _calendar(client, f"/events/{event_id}.ics")
    second = _vevents(calendar)[uid]
    assert second["SEQUENCE"] > first["SEQUENCE"]
    assert b"DTSTART;TZID=Asia/Shanghai:20270317T140000\r\n" in raw
    assert "与区人大会议时间冲突" in str(second["DESCRIPTION"])

    response = admin.patch(f"/api/events/{event_id}", json={"venue": "区政务服务中心"})
    assert response.status_code == 200, response.text
    third = _vevents(_calendar(client, f"/events/{event_id}.ics")[1])[uid]
    assert third["SEQUENCE"] > second["SEQUENCE"]
    assert str(third["LOCATION"]) == "区政务服务中心，北京市西城区西直门南小街国英一号"


def test_markup_in_a_title_comes_back_as_text(staff: Any, client: TestClient,
                                              db: Session) -> None:
    admin = staff("admin")
    title = "<script>alert('x')</script> 街道 & 居民议事会"
    event_id = _published(admin, db, title=title, venue="<b>会议室</b>")

    event = _vevents(_calendar(client, f"/events/{event_id}.ics")[1])[f"event-{event_id}@kaifang"]
    assert str(event["SUMMARY"]) == title

    response = client.get("/feed.atom")
    assert b"<script>" not in response.content
    assert b"&lt;script&gt;" in response.content
    entry = ET.fromstring(response.content).find(f"{ATOM}entry")
    assert entry is not None
    title_element = entry.find(f"{ATOM}title")
    assert title_element is not None
    assert title_element.get("type") == "text"
    assert title_element.text == title
    assert "<b>会议室</b>" in entry.findtext(f"{ATOM}summary", "")


def test_a_unit_calendar_holds_its_own_and_cohosted_sessions(staff: Any, client: TestClient,
                                                            db: Session) -> None:
    admin = staff("admin")
    own = _published(admin, db, "civil-affairs", title="区民政局养老服务政策会议")
    cohosted = _published(admin, db, "education", title="区教委与区民政局联合开放日",
                          kind="open_day", cohost_unit_ids=[unit_id(db, "civil-affairs")])
    other = _published(admin, db, "housing", title="区房管局开放日")

    _, calendar = _calendar(client, "/units/civil-affairs.ics")
    assert calendar["X-WR-CALNAME"] == "区民政局 · 政务开放活动"
    uids = set(_vevents(calendar))
    assert {f"event-{own}@kaifang", f"event-{cohosted}@kaifang"} <= uids
    assert f"event-{other}@kaifang" not in uids
    assert _vevents(calendar)[f"event-{cohosted}@kaifang"].categories == ["政府开放日"]

    _, district = _calendar(client, "/calendar.ics")
    assert {f"event-{i}@kaifang" for i in (own, cohosted, other)} <= set(_vevents(district))

    response = client.get("/units/no-such-unit.ics")
    assert response.status_code == 404
    assert response.json()["error"] == "unit_not_found"


def test_the_district_calendar_reaches_back_90_days(staff: Any, client: TestClient,
                                                   db: Session) -> None:
    admin = staff("admin")
    recent = _published(admin, db, starts_at=_iso(-30), ends_at=_iso(-30, 11),
                        registration_opens_at=None, registration_closes_at=None)
    old = _published(admin, db, starts_at=_iso(-200), ends_at=_iso(-200, 11),
                     registration_opens_at=None, registration_closes_at=None)

    uids = set(_vevents(_calendar(client, "/calendar.ics")[1]))
    assert f"event-{recent}@kaifang" in uids
    assert f"event-{old}@kaifang" not in uids
    # Its own link keeps working: a citizen may still add a past session.
    assert client.get(f"/events/{old}.ics").status_code == 200


def test_the_feed_lists_upcoming_sessions_in_order(staff: Any, client: TestClient,
                                                   db: Session) -> None:
    admin = staff("admin")
    none = {"registration_opens_at": None, "registration_closes_at": None}
    later = _published(admin, db, "culture", title="区文化委公共文化服务报告会",
                       kind="public_report", starts_at=_iso(20), ends_at=_iso(20, 11), **none)
    sooner = _published(admin, db, title="下周会议开放", starts_at=_iso(7), ends_at=_iso(7, 11),
                        **none)
    past = _published(admin, db, title="上月会议开放", starts_at=_iso(-30), ends_at=_iso(-30, 11),
                      **none)

    feed = _feed(client)
    assert feed.findtext(f"{ATOM}title") == "西城区政务开放 · 近期活动"
    assert feed.findtext(f"{ATOM}id")
    assert datetime.fromisoformat(feed.findtext(f"{ATOM}updated", "")).tzinfo is not None
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == "http://testserver/feed.atom"

    entries = feed.findall(f"{ATOM}entry")
    pages = [entry.find(f"{ATOM}link") for entry in entries]
    hrefs = [link.get("href") for link in pages if link is not None]
    assert hrefs == [f"http://testserver/events/{sooner}", f"http://testserver/events/{later}"]
    assert f"http://testserver/events/{past}" not in hrefs

    report = entries[1]
    assert report.findtext(f"{ATOM}title") == "区文化委公共文化服务报告会"
    assert report.findtext(f"{ATOM}id", "").endswith(f"event/{later}")
    for field in ("updated", "published"):
        assert datetime.fromisoformat(report.findtext(f"{ATOM}{field}", "")).tzinfo is not None
    category = report.find(f"{ATOM}category")
    assert category is not None
    assert (category.get("term"), category.get("label")) == ("public_report", "政府向公众报告")
    assert report.findtext(f"{ATOM}author/{ATOM}name") == "区文化委"
    start = datetime.fromisoformat(_iso(20))
    summary = report.findtext(f"{ATOM}summary", "")
    assert f"{start.month}月{start.day}日" in summary
    assert "09:30–11:30（北京时间）" in summary
    assert "区教委三层会议室" in summary
