"""Check-in at the door in Chromium on a 375-pixel phone: type a code, see the result in large
type and the counter move; a second door phone's check-in shows up by polling; a walk-in; a QR
code read by jsQR from a photo and from a (fake) camera."""

from __future__ import annotations

import io
import re
from pathlib import Path

import segno
from playwright.sync_api import expect

from events.timeutil import local
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, assign_hosts, door_open, make_user
from tests.frontend.browser import (
    CSP_BLOCKED,
    CSP_WATCH,
    PHONE,
    no_horizontal_scroll,
    screenshot,
    sign_in,
)
from tests.helpers import open_session, registered, registrations

# Controls in the page a thumb must hit (the file input hides inside its label).
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    'main .button, main button, main select, main input:not([type=hidden])'))
  .filter(el => el.offsetParent !== null && !el.classList.contains('visually-hidden'))
  .map(el => ({text: (el.textContent || el.name || el.id).trim().slice(0, 30),
               height: el.getBoundingClientRect().height}))
  .filter(target => target.height < 44)"""


def qr_png(code: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(code, error="m", micro=False).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


def qr_y4m(code: str, path: Path, width: int = 640, height: int = 480) -> None:
    """A few frames of a QR code on white, as the raw video Chromium's fake camera plays."""
    matrix = [list(row) for row in segno.make(code, error="m", micro=False)
              .matrix_iter(scale=8, border=4)]
    size = len(matrix)
    top, left = (height - size) // 2, (width - size) // 2
    luma = bytearray(b"\xeb" * (width * height))
    for y, row in enumerate(matrix):
        start = (top + y) * width + left
        luma[start:start + size] = bytes(0x10 if dark else 0xEB for dark in row)
    chroma = b"\x80" * (width * height // 2)
    frame = b"FRAME\n" + bytes(luma) + chroma
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
                     + frame * 10)


def test_typing_codes_at_the_door_on_a_phone(live_server, browser, staff, client, db):
    event_id = open_session(staff, db, capacity=5, **door_open())
    first = registered(client, event_id, "13800000001", "王小明")
    other = registered(client, event_id, "13800000002", "李华")
    photographed = registered(client, event_id, "13800000003", "张三丰")
    make_user(db, "door-editor", "editor", "education")
    second_door = staff("host")
    assign_hosts(db, event_id)

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    try:
        url = f"/console/events/{event_id}/checkin"
        sign_in(page, live_server, "door-editor", url)
        counter = page.locator(".counter-main")
        assert " ".join(counter.inner_text().split()) == "已签到 0 / 名额 5"
        code_input = page.get_by_label("入场码", exact=True)
        assert page.evaluate("document.activeElement.id") == "checkin-code"  # autofocus
        assert code_input.get_attribute("autocapitalize") == "characters"
        expect(page.get_by_role("button", name="扫码")).to_be_visible()
        assert no_horizontal_scroll(page)
        assert page.evaluate(SMALL_TARGETS) == []
        screenshot(page, "checkin-empty")

        code_input.fill(first["code"].lower())
        code_input.press("Enter")
        result = page.locator("#checkin-result")
        expect(result).to_contain_text("签到成功")
        assert page.url.endswith(url)  # the script asked the API; the page stayed
        assert "王*明" in result.inner_text()
        size = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.result-head')).fontSize)")
        assert size >= 28, "the result is read from arm's length"
        assert "tone-ok" in (result.get_attribute("class") or "")
        expect(counter).to_have_text(re.compile(r"已签到\s*1\s*/\s*名额\s*5"))
        assert code_input.input_value() == ""  # ready for the next person
        screenshot(page, "checkin-success")

        code_input.fill(first["code"])
        page.get_by_role("button", name="签到", exact=True).click()
        when = local(registrations(db)[0].checked_in_at).strftime("%H:%M")  # type: ignore[arg-type]
        expect(result).to_contain_text(f"已签到（于 {when}）")
        assert "tone-warn" in (result.get_attribute("class") or "")
        expect(counter).to_have_text(re.compile(r"已签到\s*1\s*/"))
        assert no_horizontal_scroll(page)
        screenshot(page, "checkin-already")

        # Another door phone checks someone in; this one sees it within a poll.
        answer = second_door.post(f"/api/events/{event_id}/checkins", json={"code": other["code"]})
        assert answer.status_code == 200
        expect(counter).to_have_text(re.compile(r"已签到\s*2\s*/"), timeout=8000)

        # A photo of a ticket's QR code: jsQR reads it and the code is checked in.
        page.locator("#scan-photo").set_input_files(
            files=[{"name": "ticket.png", "mimeType": "image/png",
                    "buffer": qr_png(photographed["code"])}])
        expect(result).to_contain_text("签到成功")
        expect(result).to_contain_text("张*丰")
        assert page.evaluate(CSP_BLOCKED) == []  # the photo was read under the page's policy
        assert code_input.input_value() == ""
        expect(counter).to_have_text(re.compile(r"已签到\s*3\s*/"))

        page.get_by_label("姓名").fill("赵六")
        page.get_by_role("button", name="现场登记").click()
        expect(result).to_contain_text("现场登记成功")
        walked = registrations(db)[-1]
        assert walked.source == "walk_in"
        expect(result).to_contain_text(walked.code)
        expect(counter).to_have_text(re.compile(r"已签到\s*4\s*/"))
        expect(page.locator('[data-count="seats_left"]')).to_have_text("1")
        screenshot(page, "checkin-walk-in")

        page.get_by_role("link", name="报名名单").click()
        page.wait_for_url(f"{live_server}/console/events/{event_id}/registrations")
        assert page.get_by_text("138****0001").is_visible()
        assert "13800000001" not in page.content()
        assert no_horizontal_scroll(page)
        assert page.evaluate(SMALL_TARGETS) == []
        screenshot(page, "checkin-registrations")
        page.set_viewport_size({"width": 1280, "height": 900})
        screenshot(page, "checkin-registrations-desk")
        page.set_viewport_size(PHONE)

        page.get_by_role("link", name="本场通知").click()
        page.wait_for_url(re.compile(r".*/console/outbox\?event=\d+$"))
        # A confirmation each; the day-before reminder had passed (the session starts soon).
        assert page.locator(".outbox-row").count() == 3
        assert "13800000001" not in page.content()
        assert no_horizontal_scroll(page)
        screenshot(page, "checkin-outbox")

        page.goto(f"{live_server}/console/events/{event_id}")
        links = page.get_by_role("navigation", name="报名与签到")
        screenshot(page, "checkin-event", full_page=False)
        links.get_by_role("link", name="签到").click()
        page.wait_for_url(f"{live_server}{url}")
    finally:
        context.close()


def test_the_camera_reads_a_ticket(live_server, browser, staff, client, db, tmp_path):
    """Chromium's fake camera plays a QR code; the page scans it from the video."""
    event_id = open_session(staff, db, **door_open())
    ticket = registered(client, event_id, "13800000001", "王小明")
    make_user(db, "door-editor", "editor", "education")
    video = tmp_path / "ticket.y4m"
    qr_y4m(ticket["code"], video)
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]
    # A browser of its own: the camera is chosen when Chromium starts.
    camera_browser = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                                 args=args)
    context = camera_browser.new_context(viewport=PHONE, locale="zh-CN")
    context.grant_permissions(["camera"])
    page = context.new_page()
    try:
        sign_in(page, live_server, "door-editor", f"/console/events/{event_id}/checkin")
        page.get_by_role("button", name="扫码").click()
        expect(page.locator("#scanner")).to_be_visible()
        result = page.locator("#checkin-result")
        expect(result).to_contain_text("签到成功", timeout=10_000)
        expect(result).to_contain_text("王*明")
        # The code stays in view: one scan, not a second "already checked in".
        page.wait_for_timeout(1500)
        assert "已签到（于" not in result.inner_text()
        screenshot(page, "checkin-camera", full_page=False)  # what the door phone's screen shows
        page.get_by_role("button", name="停止扫码").click()
        expect(page.locator("#scanner")).to_be_hidden()
        assert registrations(db)[0].checked_in_at is not None
    finally:
        context.close()
        camera_browser.close()
