"""Helpers of the browser tests (Playwright, Chromium): viewports, probes run in the page,
signing in through the console's login page, screenshots kept under test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 375, "height": 812}


# How an element looks while it has the keyboard's focus: its outline and where it is.
FOCUS_PROBE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {tag: el.tagName, text: (el.textContent || '').trim().slice(0, 40),
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
          left: box.left, right: box.right, top: box.top, bottom: box.bottom,
          height: box.height};
}"""


# Controls a thumb must hit: buttons, form fields, navigation, standalone links.
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    '.site-nav a, main .button, main button, main select, main input:not([type=hidden]), '
    + '.breadcrumb a, .card-title a, .cal-session, .month-step'))
  .filter(el => el.offsetParent !== null)
  .map(el => {
    const style = getComputedStyle(el, '::after');
    const box = el.getBoundingClientRect();
    // A card's title link covers the whole card through its ::after.
    const height = style.position === 'absolute'
      ? el.closest('article').getBoundingClientRect().height : box.height;
    return {text: (el.textContent || el.name || '').trim().slice(0, 30), height};
  })
  .filter(target => target.height < 44)"""


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= 375"))


def sign_in(page: Any, base: str, username: str, then: str = "/console") -> None:
    """Opens `then`, which sends a stranger to the login page first; signs in there and is
    back on `then`."""
    page.goto(f"{base}{then}")
    assert "/console/login" in page.url  # the page asks for a sign-in first
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}{then}")


def screenshot(page: Any, name: str, full_page: bool = True) -> None:
    """What the page shows, saved as test-artifacts/NAME.png for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


# Watches what the Content-Security-Policy blocks on a page (page.add_init_script before goto;
# then page.evaluate(CSP_BLOCKED) == []).
CSP_WATCH = ("window.__csp = []; document.addEventListener('securitypolicyviolation',"
             " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
CSP_BLOCKED = "() => window.__csp"
