"""The `kaifang` command, run in-process: demo, create-user, migrate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from events.models import Event, EventKind, StaffUser, Unit
from events.sessions import missing_fields
from server import cli, demo_recordings
from server.config import Settings, get_settings
from server.db import get_engine
from server.demo import DEFAULT_PASSWORD
from tests.conftest import login


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("KAIFANG_DATABASE_URL", "KAIFANG_REDIS_URL", "KAIFANG_SECRET_KEY",
                 "KAIFANG_PASSWORD", "KAIFANG_DEMO_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # Transcoding the demo's recordings takes seconds: one test below does it.
    monkeypatch.setenv("KAIFANG_DEMO_RECORDINGS", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def use_database(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Points the command at the test's database (SQLite copy, or PostgreSQL when set)."""
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)


def sessions_in(url: str) -> list[Event]:
    with Session(get_engine(url)) as db:
        return list(db.exec(select(Event)))


def check_demo_district(events: list[Event]) -> None:
    assert 35 <= len(events) <= 45
    assert {event.kind for event in events} == set(EventKind)
    assert len({event.unit_id for event in events}) >= 10
    states = {event.status.value for event in events}
    assert {"draft", "pending_review", "published", "ended", "archived", "cancelled"} <= states
    ended = [event for event in events if event.status.value in ("ended", "archived")]
    assert all(event.minutes and event.closed_at for event in ended)
    cancelled = [event for event in events if event.status.value == "cancelled"]
    assert all(event.public_notice for event in cancelled)
    assert any(event.postponed_from and event.public_notice for event in events)
    assert any(event.capacity == 0 for event in events)
    assert any(event.premiere_at for event in events if event.kind == EventKind.broadcast)
    reviewed = [event for event in events if event.status.value != "draft"]
    assert [missing_fields(event) for event in reviewed] == [[]] * len(reviewed)


def test_demo_into_a_fresh_data_dir_then_again_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(tmp_path / "var"))
    assert cli.main(["demo"]) == 0
    first = capsys.readouterr().out
    assert "admin" in first and "edu" in first and DEFAULT_PASSWORD in first
    url = get_settings().sqlalchemy_url
    events = sessions_in(url)
    check_demo_district(events)

    assert cli.main(["demo"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(sessions_in(url)) == len(events)
    with Session(get_engine(url)) as db:
        assert db.exec(select(func.count()).select_from(StaffUser)).one() == 6


def test_demo_on_the_test_database_serves_the_portal_and_the_review_queue(
    settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_database(monkeypatch, settings)
    monkeypatch.setenv("KAIFANG_DEMO_PASSWORD", "another-demo-password")
    monkeypatch.setenv("KAIFANG_DEMO_RECORDINGS", "true")
    # The demo's flow, not its pictures: three short small clips transcode in seconds.
    monkeypatch.setattr(demo_recordings, "CLIPS", {
        key: (3, "320x180", tone) for key, (_s, _size, tone) in demo_recordings.CLIPS.items()})
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "another-demo-password" not in out and "Transcoded 3 demo recording(s)" in out
    check_demo_district(sessions_in(settings.sqlalchemy_url))
    # The premiered broadcast plays on demand with its captions; the next one counts down.
    broadcasts = {e["title"]: e for e in client.get("/api/events", params={
        "kind": "broadcast"}).json()}
    done = client.get(f"/api/events/{broadcasts['政民互动直播间：学前教育资源扩充解读']['id']}"
                      "/playback").json()
    assert done["state"] == "vod" and client.get(done["hls_url"]).status_code == 200
    later = client.get(f"/api/events/{broadcasts['政民互动直播间：老楼加挂电梯一问一答']['id']}"
                       "/playback").json()
    assert (later["state"], later["hls_url"]) == ("upcoming", None)

    public = client.get("/api/events").json()
    assert public and {e["status"] for e in public} <= {
        "published", "live", "ended", "archived", "cancelled"}
    assert any(e["starts_at"] > e["published_at"] for e in public if e["status"] == "published")
    assert all(e["starts_at"].endswith("+08:00") for e in public)

    login(client, "admin", "another-demo-password")
    queue = client.get("/api/events", params={"status": "pending_review"}).json()
    assert len(queue) >= 2
    drafts = client.get("/api/events", params={"status": "draft"}).json()
    assert any(e["review_note"] for e in drafts)  # one was sent back with a reason


def test_demo_editor_signs_in_and_sees_its_unit(settings: Settings, client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    use_database(monkeypatch, settings)
    assert cli.main(["demo"]) == 0
    login(client, "edu", DEFAULT_PASSWORD)
    mine = client.get("/api/events", params={"unit": "education"}).json()
    assert any(e["status"] == "draft" for e in mine)
    other = next(e for e in client.get("/api/events", params={"unit": "civil-affairs"}).json()
                 if e["unit"]["code"] == "civil-affairs" and e["status"] == "published")
    response = client.patch(f"/api/events/{other['id']}", json={"title": "不属于区教委"})
    assert response.status_code == 403


def test_demo_host_has_sessions_to_run(settings: Settings, client: TestClient,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use_database(monkeypatch, settings)
    assert cli.main(["demo"]) == 0
    login(client, "host", DEFAULT_PASSWORD)
    published = [e for e in client.get("/api/events", params={"status": "published"}).json()
                 if e["starts_at"] > e["published_at"]]
    readable = [e for e in published
                if client.get(f"/api/events/{e['id']}/registrations").status_code == 200]
    assert len(readable) >= 10  # assigned to the demo's upcoming sessions
    assert "没有分派给您主持的活动" not in client.get("/console").text


def test_create_user_gives_a_login_that_works_against_the_api(
    settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_database(monkeypatch, settings)
    monkeypatch.setenv("KAIFANG_PASSWORD", "a-long-password-9")
    assert cli.main(["create-user", "wang.li", "--role", "editor", "--unit", "yuetan"]) == 0
    assert "created editor wang.li" in capsys.readouterr().out

    wrong = client.post("/api/session", json={"username": "wang.li", "password": "nope-nope"})
    assert wrong.status_code == 401
    login(client, "wang.li", "a-long-password-9")
    assert client.get("/api/session").json()["user"]["role"] == "editor"

    assert cli.main(["create-user", "wang.li", "--role", "host"]) == 2
    assert "username_taken" in capsys.readouterr().err
    assert cli.main(["create-user", "zhao", "--role", "editor"]) == 2  # an editor needs a unit


def test_migrate_twice_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(tmp_path / "var"))
    assert cli.main(["migrate"]) == 0
    assert cli.main(["migrate"]) == 0
    with Session(get_engine(get_settings().sqlalchemy_url)) as db:
        assert db.exec(select(func.count()).select_from(Unit)).one() == 42
