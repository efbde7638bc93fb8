"""The console's series and themes pages, and the session form's themes and series, used as a
browser without JavaScript uses them (TestClient, forms that post and redirect)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from sqlmodel import Session, select

from events.models import Event
from events.models_plan import EventTheme, Series, Theme
from tests.conftest import unit_id
from tests.frontend.console_pages import create_via_form, post_form, session_form


def _series_via_form(client: Any, **over: str) -> int:
    response = post_form(client, "/console/series", "/console/series",
                         {"title": "走进校园开放日", "summary": "每学期一次。", **over})
    assert response.status_code == 303, response.text
    found = re.match(r"/console/series/(\d+)\?done=series_created", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def test_an_editor_creates_a_series_and_puts_a_session_in_it(console: Any,
                                                             db: Session) -> None:
    editor = console("editor", "education")
    series_id = _series_via_form(editor, unit_id=str(unit_id(db, "health")))
    # An editor's series is their own unit's, whatever the form says.
    assert db.get(Series, series_id).unit_id == unit_id(db, "education")  # type: ignore[union-attr]
    page = editor.get(f"/console/series/{series_id}")
    assert page.status_code == 200 and "走进校园开放日" in page.text
    form = editor.get("/console/events/new").text
    select_ = re.search(r'<select id="series_id".*?</select>', form, re.S)
    assert select_ and f'<option value="{series_id}"' in select_[0]
    assert 'name="themes" value="air-quality"' in form and "空气质量" in form
    event_id = create_via_form(editor, db, themes=["education", "air-quality"],
                               series_id=str(series_id))
    event = db.get(Event, event_id)
    assert event is not None and event.series_id == series_id
    codes = {row.theme_code for row in db.exec(
        select(EventTheme).where(EventTheme.event_id == event_id))}
    assert codes == {"education", "air-quality"}
    # The edit form shows what is saved; saving it without themes clears them.
    edit = editor.get(f"/console/events/{event_id}/edit").text
    assert re.search(r'value="air-quality"\s+checked', edit)
    assert re.search(rf'<option value="{series_id}"\s+selected', edit)
    response = post_form(editor, f"/console/events/{event_id}/edit",
                         f"/console/events/{event_id}/edit",
                         session_form(db, series_id="", themes=[]))
    assert response.status_code == 303, response.text
    db.expire_all()
    assert db.get(Event, event_id).series_id is None  # type: ignore[union-attr]
    assert db.exec(select(EventTheme).where(EventTheme.event_id == event_id)).all() == []


def test_the_form_refuses_another_units_series_and_too_many_themes(console: Any,
                                                                    db: Session) -> None:
    health, editor = console("editor", "health"), console("editor", "education")
    theirs = _series_via_form(health, title="健康讲座")
    # Another unit's series is not offered; posted anyway, it is refused beside the field.
    form = editor.get("/console/events/new").text
    select_ = re.search(r'<select id="series_id".*?</select>', form, re.S)
    assert select_ and f'value="{theirs}"' not in select_[0]
    response = post_form(editor, "/console/events/new", "/console/events/new",
                         session_form(db, series_id=str(theirs)))
    assert response.status_code == 422
    page = unescape(response.text)
    assert 'id="series_id-error">只能选择本单位的系列' in page
    six = ["education", "health", "housing", "culture", "employment", "environment"]
    response = post_form(editor, "/console/events/new", "/console/events/new",
                         session_form(db, themes=six))
    assert response.status_code == 422
    assert 'id="themes-error">最多选择 5 个主题' in unescape(response.text)
    assert db.exec(select(Event)).all() == []


def test_only_the_office_deletes_a_series(console: Any, db: Session) -> None:
    editor, admin = console("editor", "education"), console("admin")
    series_id = _series_via_form(editor)
    assert "删除系列" not in editor.get(f"/console/series/{series_id}").text
    assert post_form(editor, f"/console/series/{series_id}",
                     f"/console/series/{series_id}/delete", {}).status_code == 403
    response = post_form(admin, f"/console/series/{series_id}",
                         f"/console/series/{series_id}/delete", {})
    assert response.status_code == 303
    assert db.get(Series, series_id) is None
    # Another unit's editor does not see it either.
    other = console("editor", "health")
    series_id = _series_via_form(editor, title="第二个系列")
    assert other.get(f"/console/series/{series_id}").status_code in (403, 404)
    assert "第二个系列" not in other.get("/console/series").text


def test_the_office_adds_renames_and_retires_a_theme(console: Any, db: Session) -> None:
    admin, editor = console("admin"), console("editor", "education")
    assert editor.get("/console/themes").status_code == 403
    page = admin.get("/console/themes")
    assert page.status_code == 200 and "空气质量" in page.text
    response = post_form(admin, "/console/themes", "/console/themes",
                         {"code": "Bad Code", "name": "交通"})
    assert response.status_code == 422 and "代码为 2–40 个小写字母" in unescape(response.text)
    response = post_form(admin, "/console/themes", "/console/themes",
                         {"code": "traffic", "name": "交通出行", "name_en": "Traffic"})
    assert response.status_code == 303
    response = post_form(admin, "/console/themes", "/console/themes/traffic",
                         {"name": "交通", "name_en": "Traffic", "action": "save"})
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Theme, "traffic").name == "交通"  # type: ignore[union-attr]
    response = post_form(admin, "/console/themes", "/console/themes/traffic",
                         {"name": "交通", "name_en": "", "action": "retire"})
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Theme, "traffic").retired_at is not None  # type: ignore[union-attr]
    assert 'value="traffic"' not in editor.get("/console/events/new").text
