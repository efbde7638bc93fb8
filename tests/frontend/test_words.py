"""The words staff and citizens read: labels instead of codes, Chinese punctuation in Chinese,
one name for one thing across the page, the feed and the CSV."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from events.models import AuditEntry
from events.timeutil import LOCAL_TZ
from tests.frontend.portal_pages import create, future

TAG = re.compile(r"<[^>]+>")


def text_of(html: str) -> str:
    return " ".join(TAG.sub(" ", html).split())


def test_the_audit_log_names_fields_in_chinese_and_sessions_by_title(staff, db):
    admin = staff("admin")
    event = create(admin, db, starts=future(6), title="区教委课后服务会议开放")
    db.add(AuditEntry(username="system", action="registration.purge", entity="event",
                      entity_id=event["id"],
                      changes='{"registrations": 12, "messages": 30, "retention_days": 90}'))
    db.commit()
    page = admin.get("/console/audit").text
    words = text_of(page)
    assert f"活动 #{event['id']} 区教委课后服务会议开放" in words
    assert "删除的报名记录 12" in words and "保留期限（天） 90" in words
    labels = re.findall(r"<dt>([^<]*)</dt>", page)
    assert labels and not [label for label in labels if re.fullmatch(r"[a-z_]+", label)]


def test_the_feed_and_the_calendar_say_how_to_take_part_as_the_page_does(client, staff, db):
    admin = staff("admin")
    event = create(admin, db, starts=future(6), mode="in_person")
    page = text_of(client.get(f"/events/{event['id']}").text)
    assert "线下参加" in page
    feed = client.get("/feed.atom").text
    assert "线下参加" in feed and "现场参加" not in feed
    online = create(admin, db, starts=future(7), mode="online", venue="",
                    title="区教委线上政策解读")
    assert "线上参加" in client.get(f"/events/{online['id']}").text
    assert "线上参加" in client.get("/feed.atom").text


def test_a_host_starts_an_in_person_meeting_and_goes_live_online(console, staff, db):
    from datetime import UTC, datetime, timedelta

    from tests.conftest import assign_hosts

    admin = staff("admin")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    meeting = create(admin, db, starts=soon, mode="in_person")
    online = create(admin, db, starts=soon, mode="online", venue="", title="区教委线上政策解读")
    host = console("host")
    assign_hosts(db, meeting["id"])
    assign_hosts(db, online["id"])
    page = host.get(f"/console/events/{meeting['id']}").text
    assert "开始活动" in page and "开始直播" not in page
    assert "开始直播" in host.get(f"/console/events/{online['id']}").text


def test_an_in_person_meeting_is_saved_without_comment_moderation(console, db):
    from tests.frontend.console_pages import csrf_of, session_form

    editor = console("editor", "education")
    form = session_form(db)
    del form["moderation"]  # the form hides it for an in-person meeting
    token = csrf_of(editor.get("/console/events/new").text)
    response = editor.post("/console/events/new", data={**form, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def test_the_form_asks_about_comment_moderation_only_for_online_sessions(live_server, browser,
                                                                         db):
    from tests.conftest import PASSWORD, make_user

    make_user(db, "form-editor", "editor", "education")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/console/login?next=/console/events/new")
        page.get_by_label("用户名").fill("form-editor")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server}/console/events/new")
        moderation = page.locator("#moderation")
        page.locator("#mode").select_option("in_person")
        assert not moderation.is_visible()
        page.locator("#mode").select_option("online")
        assert moderation.is_visible()
        page.locator("#mode").select_option("hybrid")
        assert moderation.is_visible()
    finally:
        context.close()


def test_chinese_text_uses_the_full_width_colon(console, db):
    from pathlib import Path

    from babel.messages.pofile import read_po

    from tests.frontend.console_pages import post_form, session_form

    half_width = re.compile(r":(?!//|\d)")  # a link and a clock time keep theirs
    locale = Path(__file__).resolve().parents[2] / "frontend/locale/zh_CN/LC_MESSAGES"
    for path in sorted(locale.glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale="zh_CN"):
                if not message.id:
                    continue  # the catalogue's header
                strings = message.string if isinstance(message.string, tuple | list) \
                    else [message.string]
                assert not [s for s in strings if s and half_width.search(s)], message.id
    editor = console("editor", "education")
    page = post_form(editor, "/console/events/new", "/console/events/new",
                     session_form(db, title="")).text
    assert '<a href="#title">标题</a>：此项为必填。' in page


class _Langs(HTMLParser):
    """The language in force where each piece of text stands."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.found: list[tuple[str, str]] = []  # (text, lang)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        lang = dict(attrs).get("lang") or (self.stack[-1][1] if self.stack else "")
        self.stack.append((tag, lang or ""))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        # <title> takes no markup; a script is not read out.
        if data.strip() and self.stack and self.stack[-1][0] not in ("title", "script"):
            self.found.append((data.strip(), self.stack[-1][1]))


def langs_of(html: str, text: str) -> set[str]:
    parser = _Langs()
    parser.feed(html)
    return {lang for data, lang in parser.found if text in data}


def test_chinese_content_on_english_pages_says_it_is_chinese(client, staff, db):
    admin = staff("admin")
    title = "什刹海街道政府开放日"
    event = create(admin, db, "shichahai", starts=future(9), kind="open_day", title=title,
                   venue="什刹海街道办事处一层多功能厅", address="北京市西城区地安门西大街49号",
                   summary="走进街道综合执法队。",
                   materials=[{"title": "整治方案", "url": "https://example.org/plan.pdf"}])
    home = client.get("/?lang=en").text
    assert langs_of(home, title) == {"zh-CN"}
    assert langs_of(home, "什刹海街道办事处一层多功能厅") == {"zh-CN"}
    page = client.get(f"/events/{event['id']}?lang=en").text
    assert '<html lang="en">' in page
    for text in (title, "什刹海街道办事处一层多功能厅", "地安门西大街49号", "走进街道综合执法队。",
                 "整治方案", "什刹海街道"):
        assert langs_of(page, text) == {"zh-CN"}, text
    month = future(9).astimezone(LOCAL_TZ).strftime("%Y-%m")
    assert langs_of(client.get(f"/calendar?month={month}&lang=en").text, title) == {"zh-CN"}
    assert langs_of(client.get("/units/shichahai?lang=en").text, title) == {"zh-CN"}
    # In Chinese, nothing to say: the page is Chinese.
    assert langs_of(client.get(f"/events/{event['id']}").text, title) == {"zh-CN"}
