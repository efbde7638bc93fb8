"""Done when (issue 18): at desktop size, in Chromium, the office imports a plan; the lead unit
links its broadcast and uploads its material, the press office its script; the recording is
uploaded and the broadcast announced; the item is on track, then late once the clock passes
the day its video was due on the portal."""

from __future__ import annotations

import calendar
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe

from events.timeutil import LOCAL_TZ, local
from tests.conftest import Clock, event_body, make_user, publish
from tests.frontend.browser import PHONE, no_horizontal_scroll, screenshot, sign_in

DESKTOP = {"width": 1280, "height": 900}
TOPIC = "义务教育阶段入学政策解读"


def premiere_day(now: datetime) -> datetime:
    """15 days ahead at 10:00 in Beijing, never the last day of its month (the archive's week
    then still lies inside the month's grace, so the item is late, not missed)."""
    day = local(now).date() + timedelta(days=15)
    if day.day == calendar.monthrange(day.year, day.month)[1]:
        day += timedelta(days=1)
    return datetime.combine(day, time(10, 0), tzinfo=LOCAL_TZ).astimezone(UTC)


def short_clip(folder: Path) -> Path:
    clip = folder / "recording.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=15:duration=1", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:a", "aac", "-shortest", str(clip)], check=True)
    return clip


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious or critical findings on the page, one line each."""
    response = Axe().run(page).response
    assert response["passes"], "axe checked nothing"
    return [f"{v['id']}: {v['nodes'][0]['target']} {v['help']}"
            for v in response["violations"] if v["impact"] in ("serious", "critical")]


def state_cell(page: Any) -> str:
    row = page.locator("tr.plan-row", has=page.get_by_role("link", name=TOPIC, exact=True))
    return " ".join(row.locator(".plan-state-cell").inner_text().split())


def test_an_item_goes_from_import_to_on_track_then_late(live_server: str, browser: Any, db: Any,
                                                       staff: Any, clock: Clock,
                                                       tmp_path: Path) -> None:
    base = live_server
    premiere = premiere_day(clock.now)
    year, month = local(premiere).year, local(premiere).month
    for name, role, unit in (("plan-office", "admin", None),
                             ("plan-education", "editor", "education"),
                             ("plan-press", "editor", "publicity")):
        make_user(db, name, role, unit)
    admin_api = staff("admin")

    # The office imports the plan through the console's form.
    office = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in(office, base, "plan-office", f"/console/plan?year={year}")
    csv = f"topic,unit_code,month,theme\n{TOPIC},education,{month},education\n"
    office.set_input_files("#plan-file", {"name": "直播计划.csv", "mimeType": "text/csv",
                                          "buffer": csv.encode("utf-8")})
    office.get_by_role("button", name="导入", exact=True).click()
    office.get_by_text("已导入 1 个计划条目。").wait_for()
    assert office.get_by_role("link", name=TOPIC, exact=True).is_visible()

    # The lead unit's broadcast, a draft for now; its editor links it to the item.
    body = event_body(db, "education", kind="broadcast", mode="online", venue="", address="",
                      capacity=0, registration_opens_at=None, registration_closes_at=None,
                      title="区教委政民互动直播间：入学政策", starts_at=premiere.isoformat(),
                      ends_at=(premiere + timedelta(hours=1)).isoformat(),
                      premiere_at=premiere.isoformat())
    created = admin_api.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    unit = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in(unit, base, "plan-education", f"/console/plan?year={year}")
    unit.get_by_role("link", name=TOPIC, exact=True).click()
    unit.get_by_label("牵头单位的直播场次").select_option(str(event_id))
    unit.get_by_role("button", name="关联场次").click()
    unit.get_by_text("已将直播场次关联到该计划条目。").wait_for()
    item_url = unit.url.split("?")[0]

    # The lead unit's material, then the press office's script (each only sees its own form).
    assert unit.locator("#plan-file-script").count() == 0
    unit.set_input_files("#plan-file-material", {"name": "入学政策材料.txt",
                                                 "mimeType": "text/plain",
                                                 "buffer": "政策解读材料".encode()})
    unit.locator("#step-material").get_by_role("button", name="上传", exact=True).click()
    unit.get_by_text("材料已上传。").wait_for()
    assert unit.get_by_role("link", name="入学政策材料.txt").is_visible()
    press = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in(press, base, "plan-press", "/console/plan")
    press.goto(item_url)
    assert press.locator("#plan-file-material").count() == 0
    press.set_input_files("#plan-file-script", {"name": "直播脚本.txt", "mimeType": "text/plain",
                                                "buffer": "直播脚本".encode()})
    press.locator("#step-script").get_by_role("button", name="上传", exact=True).click()
    press.get_by_text("脚本已上传。").wait_for()

    # The recording (a real upload, checked by ffprobe), then the announcement: published with
    # its premiere 15 days ahead, more than the 3 days the plan asks.
    editor_api = staff("editor", "education")
    with short_clip(tmp_path).open("rb") as clip:
        uploaded = editor_api.post(f"/api/events/{event_id}/recording",
                                   files={"file": ("recording.mp4", clip, "video/mp4")})
    assert uploaded.status_code == 202, uploaded.text
    publish(admin_api, event_id)
    # The recording's row is stamped by the machine's clock (a column default): let the
    # app's clock pass it.
    clock.advance(timedelta(minutes=5))

    unit.goto(f"{base}/console/plan?year={year}")
    assert state_cell(unit) == "◔ 按计划推进"
    row = unit.locator("tr.plan-row", has=unit.get_by_role("link", name=TOPIC, exact=True))
    assert "视频上线门户" in row.inner_text()  # the one step left
    unit.get_by_role("link", name=TOPIC, exact=True).click()
    steps = unit.locator(".plan-step-done")
    assert steps.count() == 4
    screenshot(unit, "plan-item-on-track")

    # A day past the archive's week after the premiere, and the video is not on the portal.
    clock.advance(premiere - clock.now + timedelta(days=8))
    unit.goto(f"{base}/console/plan?year={year}")
    assert state_cell(unit) == "! 逾期 未按时上线门户（首播后7天内）"
    late_mark = unit.locator("#plan-timeline .plan-mark-late")
    assert late_mark.count() == 1
    assert TOPIC in late_mark.locator("title").text_content()
    screenshot(unit, "plan-year-late")
    assert serious_violations(unit) == []
    unit.goto(item_url)
    assert unit.locator("#step-archived .pstate-late").inner_text().strip().endswith("已逾期")
    assert serious_violations(unit) == []
    office.goto(f"{base}/console/plan?year={year}")  # with the import form
    assert serious_violations(office) == []

    # The same pages on a phone: the table turns into cards, nothing scrolls sideways.
    phone = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    sign_in(phone, base, "plan-education", f"/console/plan?year={year}")
    assert no_horizontal_scroll(phone)
    assert "逾期" in phone.locator("tr.plan-row").inner_text()
    screenshot(phone, "plan-year-phone")
    assert serious_violations(phone) == []
    phone.goto(item_url)
    assert no_horizontal_scroll(phone)
    phone.goto(f"{base}/plan?year={year}")
    assert phone.get_by_text(TOPIC).is_visible() and no_horizontal_scroll(phone)
    assert phone.locator(".plan-public-item").get_by_text("未按计划播出").is_visible()
    screenshot(phone, "plan-public-phone")
    assert serious_violations(phone) == []
