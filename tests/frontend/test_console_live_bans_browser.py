"""In Chromium: in post-moderation (先发后审) a host bans from an approved message in place —
禁言… chooses it in the ban form, the form is sent without a reload, the ban list shows the
viewer with the minutes left, and the message leaves the approved list; the reply box takes the
room's limit from the page."""

from __future__ import annotations

from tests.conftest import assign_hosts, make_user
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, sign_in
from tests.frontend.test_console_live_bans import _said
from tests.streaming.live import _live_session

DESK = {"width": 1280, "height": 900}


def test_a_host_times_out_a_viewer_from_an_approved_message_in_place(
        client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="post")
    make_user(db, "ban-host", "host")
    assign_hosts(db, event_id)
    _said(db, client, event_id, "居民", "路灯坏了")
    spam = _said(db, client, event_id, "广告号", "加微信买房")

    page = browser.new_page(viewport=DESK)
    page.add_init_script(CSP_WATCH)
    try:
        sign_in(page, live_server, "ban-host", f"/console/events/{event_id}/live")
        page.wait_for_selector("#socket-state[data-live='1']")
        page.evaluate("() => { window.__stayed = true; }")
        item = page.locator(f"#approved li[data-id='{spam}']")
        item.locator(".action-ban").click()
        assert page.locator("#ban-message").input_value() == str(spam)
        assert page.evaluate("() => document.activeElement.id") == "ban-reason"
        page.fill("#ban-reason", "广告")
        page.select_option("#ban-minutes", "10")
        page.click("#ban-form button[type=submit]")
        page.wait_for_selector("#ban-list li:has-text('广告号')")
        assert "还剩 10 分钟" in page.locator("#ban-list").text_content()
        assert page.locator("#ban-none").is_hidden()
        page.wait_for_selector(f"#approved li.is-removed[data-id='{spam}']")
        # The other viewer's message can still be chosen; the banned one's cannot.
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('#ban-message option'))"
            ".map(o => o.textContent).join('|') === '居民: 路灯坏了'", timeout=3000)
        assert page.evaluate("() => window.__stayed") is True  # no reload
        # The reply box's limit is the room's, read from the page.
        page.locator("#approved li:has-text('路灯坏了') .action-reply-approved").click()
        assert page.locator("#approved textarea").evaluate("a => a.maxLength") == 300
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()
