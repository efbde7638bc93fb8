"""The archive in Chromium: on a 375-pixel phone it fits, shows its posters and filters without
JavaScript; on a phone and a desktop axe finds no serious violation on its pages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlmodel import Session, select

from events.models import EventKind
from streaming.models import Recording
from tests.frontend.archive_sessions import held

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def poster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive-poster") / "poster.jpg"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=640x360", "-frames:v", "1", str(path)], check=True)
    return path


def archived(db: Session, settings: Any, poster: Path) -> list[int]:
    """Three sessions in the archive, each with its poster on disk where the media route is."""
    ids = [held(db, "区教委2027年义务教育入学政策会议开放", days_ago=3,
                summary="邀请家长代表列席。", minutes="会议纪要：延长课后服务时间。"),
           held(db, "区卫健委政府开放日：走进社区卫生服务中心", days_ago=12, unit="health",
                kind=EventKind.open_day),
           held(db, "政民互动直播间：老旧小区加装电梯怎么办", days_ago=40,
                kind=EventKind.broadcast)]
    for row in db.exec(select(Recording)):
        folder = settings.media_dir / "hls" / row.media_key
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(poster, folder / "poster.jpg")
    return ids


def fits(page: Any, width: int) -> bool:
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {width}"))


def blocking_violations(axe: Axe, page: Any) -> list[str]:
    response = axe.run(page).response
    assert response["passes"], "axe checked nothing"
    return [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']} {v['help']}"
            for v in response["violations"] if v["impact"] in BLOCKING]


def test_the_archive_on_a_phone_fits_shows_posters_and_filters(live_server, browser, db,
                                                              settings, poster):
    archived(db, settings, poster)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/archive")
        assert fits(page, PHONE["width"]), page.evaluate("document.documentElement.scrollWidth")
        cards = page.locator("article.archive-card")
        assert cards.count() == 3
        first = cards.first.bounding_box()
        assert first is not None and first["y"] < PHONE["height"]
        assert first["width"] <= PHONE["width"]
        image = page.locator("article.archive-card img").first
        image.scroll_into_view_if_needed()
        image.wait_for(state="visible")
        page.wait_for_function("document.querySelector('.archive-card img').complete")
        assert page.evaluate("document.querySelector('.archive-card img').naturalWidth") == 640
        assert image.get_attribute("alt") == "“区教委2027年义务教育入学政策会议开放”的录像画面"
        # The filters: one tap away on a phone, a plain GET form (no script here).
        page.get_by_text("筛选录像", exact=True).click()
        page.get_by_label("活动类型").select_option("open_day")
        page.get_by_role("button", name="查看录像").click()
        page.wait_for_url("**/archive?kind=open_day*")
        assert page.locator("article.archive-card").count() == 1
        page.get_by_text("筛选录像", exact=True).click()
        page.get_by_label("活动类型").select_option("")
        page.get_by_label("搜索").fill("课后服务")
        page.get_by_role("button", name="查看录像").click()
        page.wait_for_url("**/archive?kind=&*q=*")
        assert page.locator("article.archive-card h3").all_inner_texts() == [
            "区教委2027年义务教育入学政策会议开放"]
        assert fits(page, PHONE["width"])
    finally:
        context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_archive_pages_have_no_serious_accessibility_violation(size, live_server, browser,
                                                                   db, settings, poster):
    first = archived(db, settings, poster)[0]
    viewport = PHONE if size == "phone" else DESKTOP
    axe = Axe()
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    try:
        for path in ("/archive", "/archive?kind=open_day", "/archive?q=没有这个词",
                     "/units/education/archive", f"/embed/{first}", f"/events/{first}",
                     "/archive?lang=en"):
            response = page.goto(live_server + path)
            assert response is not None and response.status == 200, path
            problems[path] = blocking_violations(axe, page)
            assert fits(page, viewport["width"]), path
        if size == "desktop":  # three entries side by side
            page.goto(f"{live_server}/archive?lang=zh_CN")
            tops = {box["y"] for box in (card.bounding_box()
                                         for card in page.locator("article.archive-card").all())
                    if box is not None}
            assert len(tops) == 1
    finally:
        context.close()
    assert {path: found for path, found in problems.items() if found} == {}
