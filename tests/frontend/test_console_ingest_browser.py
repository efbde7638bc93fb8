"""On a phone, staff create a stream key in the console and an encoder publishes with it: the
key they copied from the page is the one the RTMP gate lets in. The page fits the phone and has
no serious accessibility violation (axe-core)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.config import Settings
from tests.conftest import make_user
from tests.frontend.browser import PHONE, no_horizontal_scroll, screenshot, sign_in
from tests.frontend.test_accessibility_browser import Axe, blocking_violations
from tests.streaming.rtmp_helpers import Gate, SinkHub, finish, publisher, webcast_session


def test_a_key_made_in_the_console_on_a_phone_publishes(
        live_server: str, browser: Any, staff: Any, db: Any, settings: Settings,
        tmp_path: Path) -> None:
    _, event_id = webcast_session(staff, db)
    make_user(db, "ingest-editor", "editor", "education")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    hub = SinkHub(tmp_path)
    gate = Gate(settings, hub)
    try:
        sign_in(page, live_server, "ingest-editor", f"/console/events/{event_id}")
        page.get_by_role("link", name="直播推流（RTMP）").click()
        page.get_by_role("button", name="生成推流密钥").click()
        key = page.get_by_role("textbox", name="推流密钥", exact=True).input_value()
        assert len(key) >= 22
        server = page.get_by_role("textbox", name="服务器（OBS：设置 → 直播 → 自定义）")
        assert server.input_value().startswith("rtmp://")
        assert no_horizontal_scroll(page), page.evaluate("document.documentElement.scrollWidth")
        screenshot(page, "console_ingest_phone")
        assert blocking_violations(Axe(), page) == []
        code, errors = finish(publisher(gate.url(key), 1))
        assert code == 0, errors
        assert len(hub.feeds) == 1 and hub.feeds[0].event_id == event_id
        page.reload()  # the key is not shown again
        assert key not in page.content()
    finally:
        gate.close()
        context.close()
