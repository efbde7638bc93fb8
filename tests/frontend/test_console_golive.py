"""The console's go-live page without a camera: who may open it (the staff who run the
session: its unit, an admin, its assigned hosts; not a host of another session nor another
unit), what it offers (the camera, the preview, the status buttons, the RTMP key), the link
from the session's page, and every string of it in Chinese."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from tests.conftest import assign_hosts
from tests.streaming.live import _live_session

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def golive_url(event_id: int) -> str:
    return f"/console/events/{event_id}/golive"


def test_the_staff_who_run_the_session_open_the_go_live_page_others_may_not(
        client, staff, console, db):
    event_id = _live_session(staff, db, live=False)
    other_id = _live_session(staff, db, live=False)
    host = console("host")
    assign_hosts(db, other_id)  # a host of another session
    assert host.get(golive_url(event_id)).status_code == 403
    assert console("editor", "civil-affairs").get(golive_url(event_id)).status_code == 403
    assert console("editor", "civil-affairs").get(golive_url(999_999)).status_code == 404
    stranger = client.get(golive_url(event_id), follow_redirects=False)
    assert stranger.status_code in (302, 303) and "/console/login" in stranger.headers["location"]

    assign_hosts(db, event_id)
    for runner in (host, console("editor", "education"), console("admin")):
        page = runner.get(golive_url(event_id))
        assert page.status_code == 200, page.text
        text = page.text
        for shown in ("直播推流", "打开摄像头", "开始推流", "内部预览", "开始直播（上线）",
                      "生成推流密钥", "发送码率", "丢弃的数据块", "尚无信号"):
            assert shown in text, shown
        # Scripts from files only (the CSP allows no inline script), the API's CSRF token.
        for script in ("golive.js", "golive_preview.js", "golive_key.js", "hls.min.js"):
            assert f"/static/{'vendor/hlsjs' if script == 'hls.min.js' else 'js'}/{script}" \
                in text
        assert "<script>" not in text and 'name="csrf-token"' in text
        event_page = runner.get(f"/console/events/{event_id}").text
        assert f'href="{golive_url(event_id)}"' in event_page


def test_every_string_of_the_go_live_page_is_in_the_catalogue():
    keywords = {"_": None, "gettext": None, "N_": None}
    found: set[str] = set()
    for _line, message, _c, _ctx in extract_from_file(
            "jinja2.ext:babel_extract", str(FRONTEND / "templates" / "console" / "golive.html"),
            keywords=keywords, options={"extensions": "jinja2.ext.i18n", "trimmed": "true"}):
        found.add(message if isinstance(message, str) else message[0])
    for _line, message, _c, _ctx in extract_from_file(
            "python", str(FRONTEND / "console_golive.py"), keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    assert len(found) > 50
    translated: set[str] = set()
    for path in (FRONTEND / "locale" / "zh_CN" / "LC_MESSAGES").glob("*.po"):
        with path.open("rb") as handle:
            translated |= {m.id for m in read_po(handle, locale="zh_CN") if m.id and m.string}
    assert sorted(found - translated) == []
