"""Citizens' questions in Chromium on a 375-pixel phone: a question with markup shown as text,
a vote that presses the button and counts once (also after a reload), a viewer who has not
joined asked for a nickname first, and a question asked from the panel."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

from tests.frontend.browser import CSP_BLOCKED, no_horizontal_scroll, screenshot
from tests.frontend.test_accessibility_browser import blocking_violations
from tests.streaming.live import _ask, _join, _live_session
from tests.streaming.room_pages import viewer_page

MARKUP = "<b>粗</b><script>x()</script>学区划片"


def _vote_button(page: Any, question_id: int) -> Any:
    return page.locator(f'#questions .question-vote[data-id="{question_id}"]')


def test_a_citizen_votes_once_on_a_phone(client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="post")
    question_id = _ask(client, event_id, _join(client, event_id, "老王")["viewer_token"],
                       MARKUP).json()["id"]
    page = viewer_page(browser, live_server, event_id)
    try:
        panel = page.locator("#questions")
        assert panel.locator(".question-text").all_text_contents() == [MARKUP]
        assert panel.locator("b, script").count() == 0
        button = _vote_button(page, question_id)
        assert button.get_attribute("aria-pressed") == "false"
        # Not joined yet: the panel asks for a nickname, then the vote goes through.
        button.click()
        page.get_by_text("请先填写昵称，再点赞或提问。").wait_for()
        page.get_by_label("提问署名").fill("小李")
        page.get_by_role("button", name="加入并点赞").click()
        page.wait_for_function(
            f"""() => document.querySelector('#questions .question-vote[data-id="{question_id}"]')
                .getAttribute('aria-pressed') === 'true'""")
        assert button.is_disabled()
        assert button.locator(".question-votes").text_content() == "1"
        # A reload keeps the vote (the cookie names the viewer), and counts it once.
        page.reload()
        button = _vote_button(page, question_id)
        assert button.get_attribute("aria-pressed") == "true" and button.is_disabled()
        assert client.get(f"/api/events/{event_id}/questions").json()[0]["votes"] == 1
        # Asking from the panel, already joined: the question is listed.
        page.get_by_label("您的问题").fill("停车位什么时候增加？")
        page.get_by_role("button", name="提交问题").click()
        page.get_by_text("您的问题已列入问题列表。").wait_for()
        page.locator("#questions .question-text", has_text="停车位什么时候增加？").wait_for()
        assert page.evaluate("() => window.__ran") is False
        assert no_horizontal_scroll(page)
        assert page.evaluate(CSP_BLOCKED) == []
        screenshot(page, "questions-phone")
        assert blocking_violations(Axe(), page) == []
    finally:
        page.context.close()


def test_a_list_read_before_the_vote_does_not_unpress_it(client, staff, db, live_server,
                                                          browser):
    """The list is re-read when the socket says hello and every 30 s; an answer that left the
    server before the vote and arrives after it must not turn the pressed button back on."""
    event_id = _live_session(staff, db, moderation="post")
    question_id = _ask(client, event_id, _join(client, event_id, "老王")["viewer_token"],
                       "路灯坏了").json()["id"]
    before = client.get(f"/api/events/{event_id}/questions?sort=votes").text
    page = viewer_page(browser, live_server, event_id)
    held: list[Any] = []
    try:
        button = _vote_button(page, question_id)
        page.wait_for_function("() => document.querySelector('#questions .question-vote')"
                               " !== null")
        # The next re-read is held (later ones go through).
        page.route("**/api/events/*/questions?sort=votes",
                   lambda route: route.continue_() if held else held.append(route))
        page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
        page.wait_for_timeout(200)
        assert held, "the re-read was not sent"
        button.click()
        page.get_by_label("提问署名").fill("小李")
        page.get_by_role("button", name="加入并点赞").click()
        page.wait_for_function(
            f"""() => document.querySelector('#questions .question-vote[data-id="{question_id}"]')
                .getAttribute('aria-pressed') === 'true'""")
        # The old answer (no vote, 0) arrives now.
        held[0].fulfill(status=200, content_type="application/json", body=before)
        page.wait_for_timeout(300)
        assert button.get_attribute("aria-pressed") == "true"
        assert button.is_disabled()
        assert button.locator(".question-votes").text_content() == "1"
    finally:
        page.context.close()
