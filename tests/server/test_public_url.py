"""Absolute links come from KAIFANG_PUBLIC_URL, never from the request's Host header, and a
request for a host name the service does not know is refused (400 bad_host)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server import cli
from server.app import create_app
from server.config import Settings, get_settings
from tests.conftest import event_body, login, make_user, publish

PUBLIC = "https://kaifang.xicheng.gov.cn"
OPEN = {"starts_at": "2035-05-08T09:30:00+08:00", "ends_at": "2035-05-08T11:30:00+08:00",
        "registration_opens_at": "2020-01-01T09:00:00+08:00",
        "registration_closes_at": "2035-05-07T18:00:00+08:00"}


@pytest.fixture
def published(staff: Any, db: Any) -> int:
    admin = staff("admin")
    created = admin.post("/api/events", json=event_body(db, **OPEN))
    assert created.status_code == 201, created.text
    event_id = int(created.json()["id"])
    publish(admin, event_id)
    return event_id


@pytest.mark.parametrize("path", ["/feed.atom", "/calendar.ics", "/events/{id}.ics",
                                  "/events/{id}", "/api/events", "/", "/healthz"])
def test_an_unknown_host_is_refused(client: TestClient, published: int, path: str) -> None:
    response = client.get(path.format(id=published), headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json() == {"error": "bad_host",
                               "message": "this service does not answer to the host "
                                          "'evil.example'"}
    assert "evil.example" not in response.headers.get("location", "")


@pytest.mark.parametrize("url", ["kaifang.example", "ftp://kaifang.example", "https://",
                                 "https://kaifang.example/?a=1", "https://u:p@kaifang.example"])
def test_a_public_url_that_is_no_address_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="KAIFANG_PUBLIC_URL"):
        Settings(public_url=url)


def test_kaifang_names_a_bad_public_url_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KAIFANG_PUBLIC_URL", "kaifang.example")
    get_settings.cache_clear()
    try:
        assert cli.main(["migrate"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "error: KAIFANG_PUBLIC_URL:" in err and "Traceback" not in err


@pytest.mark.parametrize("host", ["testserver", "TestServer:8080", "localhost", "127.0.0.1:9",
                                  "[::1]:8000"])
def test_the_public_host_and_loopback_are_served(client: TestClient, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_feeds_calendars_and_pages_link_to_the_public_url(settings: Any, db: Any) -> None:
    configured = Settings(**(settings.model_dump() | {
        "public_url": PUBLIC + "/", "allowed_hosts": "kaifang-1.internal, 10.0.0.7:8000"}))
    app = create_app(configured)
    make_user(db, "office", "admin")
    with TestClient(app, base_url="http://kaifang-1.internal") as internal, \
            TestClient(app, base_url="http://10.0.0.7:8000") as other:
        login(internal, "office")
        created = internal.post("/api/events", json=event_body(db, **OPEN))
        event_id = created.json()["id"]
        publish(internal, event_id)
        feed = ET.fromstring(internal.get("/feed.atom").content)
        links = {link.get("href") for link in feed.iter("{http://www.w3.org/2005/Atom}link")}
        assert links == {f"{PUBLIC}/feed.atom", f"{PUBLIC}/", f"{PUBLIC}/events/{event_id}"}
        calendar = other.get("/calendar.ics").text.replace("\r\n ", "")
        assert f"URL:{PUBLIC}/events/{event_id}\r\n" in calendar
        page = other.get(f"/events/{event_id}").text
        ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.DOTALL)
        assert ld is not None and f'"url": "{PUBLIC}/events/{event_id}"' in ld.group(1)
        registered = other.post(f"/api/events/{event_id}/registrations", json={
            "name": "张三", "phone": "13912345678", "consent": True})
        token = registered.json()["manage_token"]
        ticket = other.get(f"/tickets/{token}").text
        assert f'value="{PUBLIC}/tickets/{token}"' in ticket
        for body in (page, ticket, calendar, internal.get("/feed.atom").text):
            assert "kaifang-1.internal" not in body and "10.0.0.7" not in body
