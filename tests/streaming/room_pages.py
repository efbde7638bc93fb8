"""Helpers for the browser tests of the live room: a phone on the room's page, joining, sending,
what the list shows, and the host console's queue."""

from __future__ import annotations

from typing import Any

from tests.frontend.browser import CSP_WATCH, PHONE

# A comment's markup must not run: x() would say so.
TRAP = "window.__ran = false; window.x = () => { window.__ran = true; };"
TEXTS = "() => Array.from(document.querySelectorAll('.live-list .live-text'))" \
    ".map(el => el.textContent)"
QUEUE_TEXTS = "() => Array.from(document.querySelectorAll('#queue .queue-text'))" \
    ".map(el => el.textContent)"


def viewer_page(browser: Any, live_server: str, event_id: int, ticket: str = "") -> Any:
    """A phone of its own (its own cookies) on the room's page, watching for CSP blocks and
    for markup that runs; with `ticket` it comes from that ticket's page, by its link."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    page.add_init_script(TRAP)
    if ticket:
        page.goto(f"{live_server}/tickets/{ticket}")
        page.get_by_role("link", name="进入直播间").click()
        page.wait_for_url(f"{live_server}/events/{event_id}/live")
    else:
        page.goto(f"{live_server}/events/{event_id}/live")
    return page


def join(page: Any, nickname: str) -> None:
    page.get_by_label("昵称").fill(nickname)
    page.get_by_role("button", name="参与互动").click()
    connected(page)


def connected(page: Any) -> None:
    """The socket said hello: the send button is on."""
    page.wait_for_function("() => { const b = document.querySelector('.live-submit');"
                           " return b && b.offsetParent !== null && !b.disabled; }")


def send(page: Any, words: str) -> None:
    page.get_by_label("留言内容").fill(words)
    page.get_by_role("button", name="发送").click()


def texts(page: Any) -> list[str]:
    return list(page.locator(".live-list .live-text").all_text_contents())


def shows(page: Any, expected: list[str]) -> None:
    """Waits until the list shows exactly these texts, in this order."""
    page.wait_for_function(f"expected => JSON.stringify(({TEXTS})()) === JSON.stringify(expected)",
                           arg=expected, timeout=8000)


def queue_is(page: Any, expected: list[str]) -> None:
    """Waits until the host console's queue holds exactly these texts, oldest first."""
    page.wait_for_function(f"expected => JSON.stringify(({QUEUE_TEXTS})())"
                           " === JSON.stringify(expected)", arg=expected, timeout=8000)
