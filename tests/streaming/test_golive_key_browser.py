"""The go-live page's RTMP key for OBS in Chromium on a phone (the key API is h17/ingest's):
made once and shown once with the server's address, copied by a button, rotated (a new key),
revoked; a reload shows that a key exists and until when, never the key."""

from __future__ import annotations

from tests.conftest import make_user
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, no_horizontal_scroll, sign_in
from tests.streaming.live import _live_session

PHONE = {"width": 375, "height": 812}


def test_a_stream_key_is_shown_once_copied_rotated_and_revoked(staff, db, live_server,
                                                               browser, client):
    event_id = _live_session(staff, db, live=False)
    make_user(db, "obs-editor", "editor", "education")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    url = f"/console/events/{event_id}/golive"
    try:
        sign_in(page, live_server, "obs-editor", then=url)
        assert page.locator("#golive-key-state").inner_text() == "尚未生成推流密钥。"
        page.get_by_role("button", name="生成推流密钥").click()
        key_field = page.locator("#golive-stream-key")
        key_field.wait_for(state="visible")
        first = key_field.input_value()
        assert len(first) >= 16
        assert page.locator("#golive-rtmp-url").input_value().startswith("rtmp://")
        assert page.locator("#golive-key-notice").inner_text() == "请立即复制密钥：它只显示这一次。"
        page.locator("[data-copy=golive-stream-key]").click()
        page.wait_for_function("() => document.getElementById('golive-key-notice')"
                               ".textContent === '已复制'")
        assert page.evaluate("() => navigator.clipboard.readText()") == first
        assert no_horizontal_scroll(page)

        page.get_by_role("button", name="更换密钥（旧密钥失效）").click()
        page.wait_for_function(f"() => document.getElementById('golive-stream-key').value"
                               f" !== '{first}'")
        second = key_field.input_value()
        assert len(second) >= 16

        page.reload()  # shown once: the page knows a key exists, not what it is
        assert first not in page.content() and second not in page.content()
        assert page.locator("#golive-key-state").inner_text().startswith("已有推流密钥，有效期至")
        assert key_field.is_hidden()
        page.get_by_role("button", name="作废密钥").click()
        page.wait_for_function("() => document.getElementById('golive-key-notice')"
                               ".textContent.startsWith('推流密钥已作废')")
        page.reload()
        assert page.locator("#golive-key-state").inner_text() == "尚未生成推流密钥。"
        assert page.get_by_role("button", name="作废密钥").is_hidden()
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()
