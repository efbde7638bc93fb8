"""The access log names every request but never a manage-link token or a query string."""

from __future__ import annotations

import logging

from server.access_log import redact_path
from server.cli import cmd_serve
from tests.helpers import open_session, post_registration


def test_a_ticket_link_is_logged_without_its_token(client, staff, db, caplog):
    event_id = open_session(staff, db, capacity=2)
    token = post_registration(client, event_id, "13800000001").json()["manage_token"]
    caplog.set_level(logging.INFO, logger="kaifang.access")

    client.get(f"/api/registrations/{token}")
    client.get(f"/tickets/{token}?lang=en")
    client.get("/?q=王小明")
    client.get("/api/events/999999")

    lines = [r.getMessage() for r in caplog.records if r.name == "kaifang.access"]
    assert len(lines) == 4
    assert lines[0].startswith("GET /api/registrations/… 200 ")
    assert lines[1].startswith("GET /tickets/… 200 ")
    assert lines[2].startswith("GET / 200 ")
    assert lines[3].startswith("GET /api/events/999999 404 ")
    assert not any(token in line or "lang" in line or "王小明" in line for line in lines)


def test_short_segments_and_ids_stay_readable():
    assert redact_path("/units/dongcheng-sub/events/12345678901234567") == \
        "/units/dongcheng-sub/events/12345678901234567"
    assert redact_path("/tickets/eyJyIjoxLCJjIjoiQUJDIn0.Zx1.abc/cancel") == "/tickets/…/cancel"


def test_serve_turns_uvicorns_access_log_off_and_ours_on(settings, monkeypatch):
    import argparse

    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    cmd_serve(argparse.Namespace(host="127.0.0.1", port=0, workers=1), settings)
    assert seen["access_log"] is False
    config = seen["log_config"]
    assert isinstance(config, dict) and config["loggers"]["kaifang"]["level"] == "INFO"
