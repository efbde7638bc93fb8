"""Content-Security-Policy, site-wide: every page the portal and the console link to carries it,
and none holds inline script, an event-handler attribute or inline style, which it forbids. Only
the embeddable player may be framed, and only by the parents configured."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.conftest import event_body, publish

# Headers of pages: the same on any database (the PostgreSQL pass leaves them to the first).
pytestmark = pytest.mark.sqlite_pass_only

SKIP = ("/api/", "/static/", "/media/", "/console/logout", "/tickets/recover/code")
SKIP_SUFFIXES = (".ics", ".atom", ".csv", ".json", ".png", ".svg", ".jpg", ".ico")
DATA_SCRIPTS = {"application/json", "application/ld+json"}


class Inline(HTMLParser):
    """Finds what the policy would block, and the links to walk on."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.links: list[str] = []
        self._script_open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            if name == "style":
                self.problems.append(f"<{tag} style=…>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script" and not named.get("src") and named.get("type") not in DATA_SCRIPTS:
            self.problems.append("<script> without src")
        if tag == "a" and named.get("href"):
            self.links.append(str(named["href"]))
        if tag in ("a", "form") and str(named.get("href") or named.get("action") or "") \
                .startswith("javascript:"):
            self.problems.append(f"<{tag}> javascript: URL")


def _walk(client: TestClient, starts: list[str], limit: int = 160) -> dict[str, list[str]]:
    """Every same-site page reachable from `starts` by links (GET), with what it inlines."""
    seen: dict[str, list[str]] = {}
    queue = list(starts)
    while queue and len(seen) < limit:
        url = queue.pop(0)
        parts = urlsplit(url)
        if parts.netloc not in ("", "testserver") or url in seen:
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if path.startswith(SKIP) or parts.path.endswith(SKIP_SUFFIXES):
            continue
        answer = client.get(path)
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        policy = answer.headers.get("content-security-policy", "")
        parser = Inline()
        parser.feed(answer.text)
        problems = list(parser.problems)
        if "script-src 'self'" not in policy or "frame-ancestors 'none'" not in policy:
            problems.append(f"policy: {policy!r}")
        if answer.headers.get("x-frame-options") != "DENY":
            problems.append("no X-Frame-Options DENY")
        seen[url] = problems
        for link in parser.links:
            absolute = urljoin(url, link).split("#")[0]
            if absolute not in seen:
                queue.append(absolute)
    return seen


def _some_sessions(staff: Any, db: Any) -> None:
    admin = staff("admin")
    for title, mode in (("区教委开放日", "in_person"), ("政民互动直播间", "online")):
        created = admin.post("/api/events", json=event_body(
            db, title=title, mode=mode, **({"venue": "", "address": ""}
                                           if mode == "online" else {})))
        publish(admin, created.json()["id"])


def test_every_portal_page_carries_the_policy_and_breaks_none_of_it(client, staff, db) -> None:
    _some_sessions(staff, db)
    pages = _walk(client, ["http://testserver/"])
    assert len(pages) > 10, sorted(pages)
    assert {url: problems for url, problems in pages.items() if problems} == {}


def test_every_console_page_carries_the_policy_and_breaks_none_of_it(staff, db) -> None:
    _some_sessions(staff, db)
    admin = staff("admin")
    pages = _walk(admin, ["http://testserver/console", "http://testserver/console/users",
                          "http://testserver/console/compliance/report"])
    assert len(pages) > 10, sorted(pages)
    assert {url: problems for url, problems in pages.items() if problems} == {}


def test_the_walker_sees_inline_script_and_style() -> None:
    parser = Inline()
    parser.feed('<p style="color:red" onclick="x()">a</p><script>alert(1)</script>'
                '<script type="application/json">{}</script><script src="/static/a.js"></script>')
    assert sorted(parser.problems) == ["<p onclick=…>", "<p style=…>", "<script> without src"]


def test_only_the_embed_pages_may_be_framed_and_by_whom_is_configured(settings) -> None:
    configured = settings.model_copy(update={"embed_ancestors": "https://www.bjxch.gov.cn"})
    with TestClient(create_app(configured)) as client:
        page = client.get("/")
        embed = client.get("/embed/999999")  # a 404 page: still under the embed policy
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://www.bjxch.gov.cn" in \
        embed.headers["content-security-policy"]
    assert "x-frame-options" not in embed.headers
