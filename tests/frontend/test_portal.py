"""The public portal as a citizen meets it: lists, filters, the session page, units, calendar."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from events.timeutil import LOCAL_TZ
from tests.conftest import unit_id
from tests.frontend.portal_pages import create, future

LD_JSON = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.DOTALL)
TAG = re.compile(r"<[^>]+>")


def json_ld(html: str) -> dict[str, Any]:
    blocks = LD_JSON.findall(html)
    assert len(blocks) == 1, "one schema.org block per session page"
    data: dict[str, Any] = json.loads(blocks[0])
    return data


def visible(html: str) -> str:
    """The text a reader sees, tags removed."""
    return TAG.sub("", html)


def calendar_day(html: str, iso_date: str) -> str:
    """The markup of one day cell of the month calendar."""
    start = html.index(f'<time datetime="{iso_date}">')
    end = html.find('<li class="cal-day', start)
    return html[start:end if end != -1 else len(html)]


def test_upcoming_lists_published_sessions_and_not_drafts(client, staff, db):
    admin = staff("admin")
    create(admin, db, starts=future(20), title="家长列席招生政策会议")
    create(admin, db, starts=future(21), title="尚未发布的草稿", publish_it=False)
    create(admin, db, starts=future(-20), title="已经开过的会议")

    page = client.get("/")
    assert page.status_code == 200
    assert "家长列席招生政策会议" in page.text
    assert "尚未发布的草稿" not in page.text
    assert "已经开过的会议" not in page.text
    assert "区教委" in page.text and "会议开放" in page.text
    assert "剩余名额 30 / 30" in page.text


def test_an_empty_result_says_so_and_offers_a_way_out(client):
    page = client.get("/?kind=open_day")
    assert "没有符合筛选条件的近期活动" in page.text
    assert 'href="/">查看全部近期活动' in page.text
    assert "暂无已安排的活动" in client.get("/").text


def test_filters_by_kind_unit_month_and_words(client, staff, db):
    admin = staff("admin")
    soon, later = future(10), future(75)
    create(admin, db, starts=soon, title="教委会议开放")
    create(admin, db, "civil-affairs", starts=later, kind="open_day", title="民政局开放日")
    create(admin, db, "shichahai", starts=soon, kind="chief_dialogue", title="什刹海对话一把手",
           venue="什刹海街道社区服务中心")

    def titles(query: str) -> set[str]:
        text = client.get(f"/?{query}").text
        return {t for t in ("教委会议开放", "民政局开放日", "什刹海对话一把手") if t in text}

    assert titles("") == {"教委会议开放", "民政局开放日", "什刹海对话一把手"}
    assert titles("kind=open_day") == {"民政局开放日"}
    assert titles("unit=shichahai") == {"什刹海对话一把手"}
    assert titles(f"month={later.astimezone(LOCAL_TZ):%Y-%m}") == {"民政局开放日"}
    assert titles("q=社区服务中心") == {"什刹海对话一把手"}
    assert titles("kind=open_meeting&unit=civil-affairs") == set()
    # Nonsense in the form is ignored, not an error.
    assert client.get("/?kind=party&month=2027-13&page=abc").status_code == 200

    form = client.get("/?kind=open_day&unit=shichahai").text
    assert '<option value="open_day" selected>' in form
    assert '<option value="shichahai" selected>' in form
    assert '<optgroup label="民生部门">' in form and '<optgroup label="街道">' in form
    assert '<label for="filter-unit">' in form and '<label for="filter-q">' in form


def test_the_list_pages_beyond_twenty_sessions(client, staff, db):
    admin = staff("admin")
    for n in range(21):
        create(admin, db, starts=future(5 + n), title=f"第{n + 1:02d}场开放活动")
    first = client.get("/").text
    assert "第01场开放活动" in first and "第20场开放活动" in first
    assert "第21场开放活动" not in first
    assert 'href="/?page=2" rel="next"' in first
    second = client.get("/?page=2").text
    assert "第21场开放活动" in second and "第01场开放活动" not in second
    assert 'href="/" rel="prev"' in second
    beyond = client.get("/?page=3").text
    assert "没有更多活动了" in beyond and 'href="/">返回第一页' in beyond


def test_session_page_has_what_a_citizen_needs(client, staff, db):
    admin = staff("admin")
    starts = future(30)
    event = create(
        admin, db, starts=starts, venue="区教委三层会议室", address="西城区教育街1号",
        cohost_unit_ids=[unit_id(db, "xinjiekou")],
        registration_opens_at=(starts - timedelta(days=40)).isoformat(),
        registration_closes_at=(starts - timedelta(days=1)).isoformat(),
        materials=[{"title": "招生政策征求意见稿", "url": "https://example.org/draft.pdf"}])

    page = client.get(f"/events/{event['id']}")
    assert page.status_code == 200
    text = page.text
    assert "09:30–11:30" in visible(text) and "（北京时间）" in text
    assert "区教委三层会议室" in text and "西城区教育街1号" in text
    assert f'href="https://uri.amap.com/search?keyword={quote("西城区教育街1号")}"' in text
    assert f'href="/events/{event["id"]}.ics"' in text and "添加到日历" in text
    assert "市民列席单位的真实工作会议" in text
    assert 'href="/units/xinjiekou"' in text and "新街口街道" in text
    assert "报名中" in text and "剩余名额 30 / 30" in text
    assert 'id="registration"' in text
    assert 'href="https://example.org/draft.pdf"' in text

    data = json_ld(text)
    assert data["@type"] == "Event" and data["name"] == "区教委2027年招生政策会议开放"
    local_start = starts.astimezone(LOCAL_TZ)
    assert data["startDate"] == local_start.isoformat() and data["startDate"].endswith("+08:00")
    assert data["endDate"].endswith("+08:00")
    assert data["eventStatus"] == "https://schema.org/EventScheduled"
    assert data["eventAttendanceMode"] == "https://schema.org/OfflineEventAttendanceMode"
    assert data["location"] == {"@type": "Place", "name": "区教委三层会议室",
                                "address": "西城区教育街1号"}
    assert data["organizer"]["@type"] == "GovernmentOrganization"
    assert data["organizer"]["name"] == "区教委"
    assert data["url"].endswith(f"/events/{event['id']}")


def test_an_online_session_has_no_map_and_a_virtual_location(client, staff, db):
    admin = staff("admin")
    event = create(admin, db, starts=future(12), mode="online", venue="", capacity=0)
    text = client.get(f"/events/{event['id']}").text
    assert "uri.amap.com" not in text
    assert "不限名额" in text and "无需报名" in text
    data = json_ld(text)
    assert data["location"]["@type"] == "VirtualLocation"
    assert data["eventAttendanceMode"] == "https://schema.org/OnlineEventAttendanceMode"


def test_cancelled_and_postponed_sessions_say_so_and_why(client, staff, db):
    admin = staff("admin")
    cancelled = create(admin, db, starts=future(15), title="取消的会议")
    moved = create(admin, db, starts=future(16), title="延期的会议")
    response = admin.post(f"/api/events/{cancelled['id']}/status",
                          json={"status": "cancelled", "reason": "因疫情防控要求暂停线下活动"})
    assert response.status_code == 200, response.text
    new_start = future(40)
    response = admin.post(f"/api/events/{moved['id']}/postpone", json={
        "starts_at": new_start.isoformat(),
        "ends_at": (new_start + timedelta(hours=2)).isoformat(), "reason": "会场检修"})
    assert response.status_code == 200, response.text

    listing = client.get("/").text
    assert "本场活动已取消。" in listing and "原因：因疫情防控要求暂停线下活动" in listing
    assert "本场活动已延期。" in listing and "原因：会场检修" in listing

    page = client.get(f"/events/{cancelled['id']}").text
    assert "本场活动已取消。" in page and "因疫情防控要求暂停线下活动" in page
    assert json_ld(page)["eventStatus"] == "https://schema.org/EventCancelled"

    page = client.get(f"/events/{moved['id']}").text
    assert "原定时间为" in page and "会场检修" in page
    data = json_ld(page)
    assert data["eventStatus"] == "https://schema.org/EventRescheduled"
    assert data["previousStartDate"].endswith("+08:00")


def test_a_closed_session_shows_its_minutes(client, staff, db):
    admin = staff("admin")
    event = create(admin, db, starts=future(-3), title="已召开的开放日")
    response = admin.post(f"/api/events/{event['id']}/close",
                          json={"minutes": "听取了12位居民的意见。\n形成三项整改措施。",
                                "attendee_count": 12, "attendance_reason": "按纸质签到表统计"})
    assert response.status_code == 200, response.text
    text = client.get(f"/events/{event['id']}").text
    assert "会议纪要" in text and "形成三项整改措施" in text
    assert "共有 12 位市民参加" in text
    assert "已结束" in text and "register-form" not in text  # over: nothing to register for


def test_markup_in_a_title_is_text_and_stays_inside_the_json_ld(client, staff, db):
    admin = staff("admin")
    title = "<script>alert(1)</script>"
    event = create(admin, db, starts=future(9), title=title, summary="<b>粗体</b> & 更多")
    for path in ("/", f"/events/{event['id']}", "/units/education"):
        text = client.get(path).text
        assert "<script>alert(1)" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    text = client.get(f"/events/{event['id']}").text
    assert "&lt;b&gt;粗体&lt;/b&gt; &amp; 更多" in text
    data = json_ld(text)
    assert data["name"] == title and data["description"] == "<b>粗体</b> & 更多"


def test_english_on_request_and_the_cookie_keeps_it(client, staff, db):
    admin = staff("admin")
    event = create(admin, db, starts=future(9))
    chinese = client.get("/")
    assert '<html lang="zh-CN">' in chinese.text and "近期活动" in chinese.text
    english = client.get("/?lang=en")
    assert '<html lang="en">' in english.text
    assert "Upcoming sessions" in english.text and "Open meeting" in english.text
    assert client.cookies.get("lang") == "en"
    again = client.get(f"/events/{event['id']}").text
    assert "Add to calendar" in again and "(Beijing time)" in again
    assert "District Education Commission" in again and "近期活动" not in again
    assert client.get("/?lang=zh_CN").status_code == 200 and client.cookies.get("lang") == "zh_CN"
    assert "近期活动" in client.get("/").text


def test_a_draft_is_a_404_page(client, staff, db):
    admin = staff("admin")
    draft = create(admin, db, starts=future(9), publish_it=False)
    for path in (f"/events/{draft['id']}", "/events/424242", f"/events/{2**40}"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "页面不存在" in response.text
    # Staff preview it, clearly marked.
    preview = admin.get(f"/events/{draft['id']}")
    assert preview.status_code == 200 and "工作人员预览" in preview.text


def test_units_are_grouped_and_a_unit_page_lists_cohosted_sessions(client, staff, db):
    admin = staff("admin")
    create(admin, db, starts=future(8), title="教委与新街口联合开放日", kind="open_day",
           cohost_unit_ids=[unit_id(db, "xinjiekou")])
    create(admin, db, "xinjiekou", starts=future(-30), title="新街口往期报告会",
           kind="public_report")
    create(admin, db, "housing", starts=future(8), title="房管局的会议")

    index = client.get("/units").text
    livelihood, subdistricts = index.index(">民生部门</h2>"), index.index(">街道</h2>")
    assert livelihood < index.index(">区教委</a>") < subdistricts < index.index(">新街口街道</a>")
    assert 'href="/units/xinjiekou"' in index

    page = client.get("/units/xinjiekou")
    assert page.status_code == 200
    text = page.text
    assert "<h1>新街口街道</h1>" in text
    assert "教委与新街口联合开放日" in text and "新街口往期报告会" in text
    assert "房管局的会议" not in text
    past = text.index("往期活动")
    assert text.index("教委与新街口联合开放日") < past < text.index("新街口往期报告会")
    assert 'href="webcal://testserver/units/xinjiekou.ics"' in text

    missing = client.get("/units/no-such-unit")
    assert missing.status_code == 404 and "页面不存在" in missing.text


def test_calendar_puts_a_session_on_its_beijing_date(client, staff, db):
    admin = staff("admin")
    # 07:30 on 1 March in Beijing is still 28 February in UTC.
    starts = datetime(2027, 3, 1, 7, 30, tzinfo=LOCAL_TZ)
    create(admin, db, starts=starts, title="三月一日早场开放日", kind="open_day")
    create(admin, db, "housing", starts=datetime(2027, 3, 15, 14, 0, tzinfo=LOCAL_TZ),
           title="三月中的会议")

    march = client.get("/calendar?month=2027-03").text
    assert "2027年3月" in march
    assert "三月一日早场开放日" in calendar_day(march, "2027-03-01")
    assert "07:30" in calendar_day(march, "2027-03-01")
    assert "三月中的会议" in calendar_day(march, "2027-03-15")
    # Monday first: 1 March 2027 is a Monday, so the grid starts in the first column.
    assert 'start-1"' in march and "3月1日 周一" in march
    assert 'href="/calendar?month=2027-02" rel="prev"' in march
    assert 'href="/calendar?month=2027-04" rel="next"' in march

    february = client.get("/calendar?month=2027-02").text
    assert "三月一日早场开放日" not in february
    assert "本月暂无活动" in february

    only_housing = client.get("/calendar?month=2027-03&unit=housing").text
    assert "三月中的会议" in only_housing and "三月一日早场开放日" not in only_housing
    only_days = client.get("/calendar?month=2027-03&kind=open_day").text
    assert 'href="/calendar?kind=open_day&amp;month=2027-04" rel="next"' in only_days
    assert "三月中的会议" not in only_days


def test_navigation_marks_the_current_page(client):
    assert '<a href="/calendar" aria-current="page">' in client.get("/calendar").text
    assert '<a href="/" aria-current="page">' in client.get("/").text
    assert '<a href="/units" aria-current="page">' in client.get("/units").text
