"""The portal's series and themes: the series page, the theme page, their calendars and Atom
feeds (only public sessions), the theme filter of the upcoming list and of the archive, the
chips on the session page."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session

from events.models import Event
from events.models_plan import EventTheme
from tests.conftest import event_body, publish, unit_id
from tests.frontend.archive_sessions import held, now
from tests.frontend.portal_pages import HTML, visible

ATOM = "{http://www.w3.org/2005/Atom}"


def _when(days: float) -> dict[str, str]:
    starts = now() + timedelta(days=days)
    return {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "registration_opens_at": None, "registration_closes_at": None}


def _session(client: TestClient, db: Session, title: str, *, days: float = 10,
             unit: str = "education", published: bool = True, admin: TestClient | None = None,
             **over: Any) -> int:
    response = client.post("/api/events", json=event_body(db, unit, title=title, **_when(days),
                                                           **over))
    assert response.status_code == 201, response.text
    event_id = int(response.json()["id"])
    if published:
        publish(admin or client, event_id)
    return event_id


def _series_with_sessions(staff: Any, db: Session) -> dict[str, Any]:
    admin, editor = staff("admin"), staff("editor", "education")
    created = editor.post("/api/series", json={
        "title": "走进校园开放日", "unit_id": unit_id(db, "education"),
        "summary": "每学期一次，走进一所学校。"})
    assert created.status_code == 201
    series_id = created.json()["id"]
    coming = _session(editor, db, "春季校园开放日", admin=admin, series_id=series_id,
                      themes=["education"])
    draft = _session(editor, db, "秋季校园开放日（草稿）", published=False, series_id=series_id,
                     themes=["education"])
    return {"admin": admin, "editor": editor, "series_id": series_id, "coming": coming,
            "draft": draft}


def test_the_series_page_lists_public_sessions_and_never_a_draft(client: TestClient,
                                                                  staff: Any,
                                                                  db: Session) -> None:
    made = _series_with_sessions(staff, db)
    page = client.get(f"/series/{made['series_id']}", headers=HTML)
    assert page.status_code == 200
    text = visible(page.text)
    assert "走进校园开放日" in text and "每学期一次" in text and "区教委" in text
    assert "春季校园开放日" in text and "草稿" not in text
    assert f'href="/events/{made["coming"]}"' in page.text
    assert f'/events/{made["draft"]}"' not in page.text
    assert 'href="/themes/education"' in page.text and "教育" in text
    assert f"/series/{made['series_id']}.ics" in page.text
    assert f'href="/series/{made["series_id"]}.atom"' in page.text
    assert "订阅" in text  # subscribe, in Chinese


def test_an_unknown_or_empty_series_is_a_404_page(client: TestClient, staff: Any,
                                                  db: Session) -> None:
    editor = staff("editor", "education")
    empty = editor.post("/api/series", json={"title": "尚无活动的系列",
                                             "unit_id": unit_id(db, "education")}).json()
    _session(editor, db, "只是草稿", published=False, series_id=empty["id"])
    for path in ("/series/424242", f"/series/{empty['id']}", "/series/99999999999"):
        page = client.get(path, headers=HTML)
        assert page.status_code == 404, path
        assert "尚无活动的系列" not in page.text and "只是草稿" not in page.text
    for path in (f"/series/{empty['id']}.ics", f"/series/{empty['id']}.atom",
                 "/series/424242.ics"):
        assert client.get(path).status_code == 404, path
    # Its unit previews it.
    preview = editor.get(f"/series/{empty['id']}", headers=HTML)
    assert preview.status_code == 200 and "只是草稿" not in preview.text


def test_the_series_calendar_and_feed_list_only_public_sessions(client: TestClient,
                                                                 staff: Any,
                                                                 db: Session) -> None:
    made = _series_with_sessions(staff, db)
    response = client.get(f"/series/{made['series_id']}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    assert [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")] == ["春季校园开放日"]
    assert "走进校园开放日" in str(calendar["X-WR-CALNAME"])
    response = client.get(f"/series/{made['series_id']}.atom")
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(response.content)
    assert feed.findtext(f"{ATOM}id") == f"tag:kaifang,2018:series/{made['series_id']}"
    assert "走进校园开放日" in (feed.findtext(f"{ATOM}title") or "")
    assert [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")] == ["春季校园开放日"]


def test_the_theme_page_and_its_feeds(client: TestClient, staff: Any, db: Session) -> None:
    made = _series_with_sessions(staff, db)
    _session(made["admin"], db, "空气质量通报会", themes=["air-quality"])
    page = client.get("/themes/education", headers=HTML)
    assert page.status_code == 200
    text = visible(page.text)
    assert "教育" in text and "春季校园开放日" in text and "空气质量通报会" not in text
    assert "草稿" not in text
    assert f'href="/series/{made["series_id"]}"' in page.text  # its series
    assert client.get("/themes/no-such-theme", headers=HTML).status_code == 404
    calendar = Calendar.from_ical(client.get("/themes/education.ics").content)
    assert [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")] == ["春季校园开放日"]
    feed = ET.fromstring(client.get("/themes/air-quality.atom").content)
    assert [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")] == ["空气质量通报会"]
    assert feed.findtext(f"{ATOM}id") == "tag:kaifang,2018:theme/air-quality"
    assert client.get("/themes/no-such-theme.atom").status_code == 404
    assert client.get("/themes/no-such-theme.ics").status_code == 404


def test_the_upcoming_list_filters_by_theme(client: TestClient, staff: Any,
                                            db: Session) -> None:
    admin = staff("admin")
    _session(admin, db, "空气质量通报会", themes=["air-quality"])
    _session(admin, db, "养老服务座谈", themes=["elderly-care"])
    everything = client.get("/", headers=HTML)
    assert '<select id="filter-theme" name="theme">' in everything.text
    assert "空气质量通报会" in everything.text and "养老服务座谈" in everything.text
    assert 'class="theme-chip" href="/themes/air-quality"' in everything.text
    filtered = client.get("/?theme=air-quality", headers=HTML)
    assert "空气质量通报会" in filtered.text and "养老服务座谈" not in filtered.text
    assert '<option value="air-quality" selected>' in filtered.text
    # An unknown theme is dropped, as any other unreadable filter: the whole list.
    forgiving = client.get("/?theme=no-such-theme", headers=HTML)
    assert forgiving.status_code == 200 and "养老服务座谈" in forgiving.text


def test_the_archive_filters_by_theme(client: TestClient, db: Session) -> None:
    air = held(db, "空气质量专题会议", days_ago=5)
    other = held(db, "社区养老座谈", days_ago=6)
    db.add(EventTheme(event_id=air, theme_code="air-quality"))
    db.add(EventTheme(event_id=other, theme_code="elderly-care"))
    db.commit()
    page = client.get("/archive?theme=air-quality", headers=HTML)
    assert page.status_code == 200
    assert "空气质量专题会议" in page.text and "社区养老座谈" not in page.text
    assert '<select id="archive-theme" name="theme">' in page.text
    assert 'href="/themes/air-quality"' in page.text
    assert "社区养老座谈" in client.get("/archive", headers=HTML).text
    theme_page = client.get("/themes/air-quality", headers=HTML)
    assert "空气质量专题会议" in theme_page.text  # its recordings


def test_the_session_page_shows_its_themes_and_series(client: TestClient, staff: Any,
                                                      db: Session) -> None:
    made = _series_with_sessions(staff, db)
    page = client.get(f"/events/{made['coming']}", headers=HTML)
    assert page.status_code == 200
    assert f'href="/series/{made["series_id"]}"' in page.text
    assert 'class="theme-chip" href="/themes/education"' in page.text
    text = visible(page.text)
    assert "所属系列" in text or "系列" in text
    # Retired themes still show on the sessions that have them.
    made["admin"].patch("/api/themes/education", json={"retired": True})
    page = client.get(f"/events/{made['coming']}", headers=HTML)
    assert 'href="/themes/education"' in page.text
    assert db.get(Event, made["coming"]) is not None


def test_the_themes_index_counts_upcoming_public_sessions(client: TestClient, staff: Any,
                                                          db: Session) -> None:
    made = _series_with_sessions(staff, db)
    assert 'href="/themes"' in client.get("/", headers=HTML).text
    page = client.get("/themes", headers=HTML)
    assert page.status_code == 200
    text = visible(page.text)
    assert "按主题浏览活动" in text
    # One public session of education (the draft does not count); housing has none.
    assert "教育 近期活动 1 场" in text and "住房保障 近期活动 0 场" in text
    assert f'href="/series/{made["series_id"]}"' in page.text
    made["admin"].patch("/api/themes/housing", json={"retired": True})
    assert 'href="/themes/housing"' not in client.get("/themes", headers=HTML).text


def test_theme_names_follow_the_page_language(client: TestClient, staff: Any,
                                              db: Session) -> None:
    admin = staff("admin")
    _session(admin, db, "空气质量通报会", themes=["air-quality"])
    page = client.get("/?lang=en", headers=HTML)
    assert 'class="theme-chip" href="/themes/air-quality">Air quality</a>' in page.text
    assert "<h1>Air quality</h1>" in client.get("/themes/air-quality?lang=en",
                                                 headers=HTML).text


def test_a_label_of_a_constant_follows_each_pages_language() -> None:
    """Found by this part's tests: Jinja folded `'ended'|status_label` at compile time, so the
    first page's language stayed in the template (frontend/templating.py, pass_context)."""
    from frontend.i18n import current_locale
    from frontend.templating import env

    token = current_locale.set("en")
    try:
        template = env.from_string("{{ 'ended'|status_label }}")
        assert template.render() == "Ended"
    finally:
        current_locale.reset(token)
    assert template.render() == "已结束"
