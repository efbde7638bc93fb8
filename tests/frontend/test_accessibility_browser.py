"""axe-core over the main pages of the portal and the console, on a phone and on a desktop:
no serious or critical violation anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.conftest import PASSWORD, event_body, make_user
from tests.frontend.portal_pages import register
from tests.helpers import open_session
from tests.streaming.live import _live_session

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
BLOCKING = {"serious", "critical"}

PORTAL = ("/", "/calendar", "/events/{event}", "/tickets/{ticket}", "/units", "/results",
          "/privacy", "/archive", "/events/{event}?lang=en", "/events/{recorded}/live",
          "/events/{live}/live",
          "/embed/{recorded}")
CONSOLE = ("/console", "/console/events/{event}", "/console/events/new", "/console/review",
           "/console/events/{event}/registrations", "/console/compliance", "/console/audit",
           "/console/events/{recorded}", "/console/events/{live}/golive")


def recorded_session(staff: Any, db: Any, settings: Any, folder: Any) -> int:
    """An online session held and closed out, whose recording plays (real ffmpeg, 2 s)."""
    import subprocess
    from datetime import UTC, datetime, timedelta

    from streaming.transcode import run_one

    clip = folder / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i",
                    "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    "-shortest", str(clip)], check=True)
    admin = staff("admin")
    now = datetime.now(UTC)
    body = event_body(db, title="政民互动直播间：录像回看", mode="online", venue="", address="",
                      starts_at=(now - timedelta(hours=2)).isoformat(),
                      ends_at=(now - timedelta(hours=1)).isoformat(),
                      registration_opens_at=(now - timedelta(days=2)).isoformat(),
                      registration_closes_at=(now - timedelta(hours=3)).isoformat())
    event_id = admin.post("/api/events", json=body).json()["id"]
    with clip.open("rb") as handle:
        assert admin.post(f"/api/events/{event_id}/recording",
                          files={"file": ("clip.mp4", handle)}).status_code == 202
    while run_one(settings):
        pass
    for status in ("pending_review", "published"):
        admin.post(f"/api/events/{event_id}/status", json={"status": status})
    assert admin.post(f"/api/events/{event_id}/close", json={"minutes": "纪要"}).status_code == 200
    return int(event_id)


def blocking_violations(axe: Axe, page: Any) -> list[str]:
    """Each serious or critical violation as one line: rule, impact and the first element."""
    response = axe.run(page).response
    assert response["passes"], "axe checked nothing"
    found = response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']} {v['help']}"
            for v in found if v["impact"] in BLOCKING]


@pytest.mark.parametrize("size", SIZES)
def test_main_pages_have_no_serious_accessibility_violation(size, live_server, browser, staff,
                                                            client, db, settings, tmp_path):
    event_id = open_session(staff, db, capacity=40, venue="区教委三层会议室",
                            address="北京市西城区西直门南小街国英一号")
    token = register(client, event_id)
    editor = staff("editor", "education")
    draft = editor.post("/api/events", json=event_body(db, title="区教委课后服务会议开放"))
    editor.post(f"/api/events/{draft.json()['id']}/status", json={"status": "pending_review"})
    make_user(db, "axe-admin", "admin")
    ids = {"event": event_id, "ticket": token,
           "recorded": recorded_session(staff, db, settings, tmp_path),
           "live": _live_session(staff, db, moderation="post")}  # its comments panel

    axe = Axe()
    context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    try:
        for path in PORTAL:
            page.goto(live_server + path.format(**ids))
            problems[path] = blocking_violations(axe, page)
        page.goto(f"{live_server}/?lang=zh_CN")  # the English page's cookie: back to Chinese
        page.goto(f"{live_server}/console/login")
        problems["/console/login"] = blocking_violations(axe, page)
        page.get_by_label("用户名").fill("axe-admin")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server}/console")
        for path in CONSOLE:
            response = page.goto(live_server + path.format(**ids))
            assert response is not None and response.status == 200, path
            problems[path] = blocking_violations(axe, page)
    finally:
        context.close()
    assert {path: found for path, found in problems.items() if found} == {}
