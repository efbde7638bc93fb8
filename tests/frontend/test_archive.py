"""The archive on the portal: which sessions it lists, its filters and search, the per-unit
page, the Atom feed with enclosures, the embeddable player; one recording made end to end."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from events.models import CohostState, Event, EventCohost, EventKind, EventStatus
from server.app import create_app
from server.config import Settings
from streaming import archive
from streaming.transcode import run_one
from tests.conftest import event_body, publish, unit_id
from tests.frontend.archive_sessions import add_recording, held, now

ATOM = "{http://www.w3.org/2005/Atom}"
PUBLIC = "https://kaifang.xicheng.gov.cn"
TAG = re.compile(r"<[^>]+>")


def titles(html: str) -> list[str]:
    return re.findall(r'class="archive-title" id="archive-\d+-title"><a href="/events/\d+"[^>]*>'
                      r"([^<]+)</a>", html)


def visible(html: str) -> str:
    return TAG.sub("", html)


# ---- what the archive lists -----------------------------------------------------------------

def test_only_public_held_sessions_with_a_playing_recording_are_listed(client, db):
    held(db, "近期的会议开放", days_ago=3)
    held(db, "去年的政府开放日", days_ago=300, kind=EventKind.open_day)
    held(db, "已归档的公众报告", days_ago=30, status=EventStatus.archived,
         kind=EventKind.public_report)
    held(db, "没有录像的会议", days_ago=2, recording=False)
    held(db, "已取消的会议", days_ago=4, status=EventStatus.cancelled)
    held(db, "未公开的会议", days_ago=5, status=EventStatus.draft, published=False)
    held(db, "尚未结束的会议", days_ago=0.01, status=EventStatus.published)
    held(db, "直播中的会议", days_ago=0.01, status=EventStatus.live)
    failed = held(db, "转码失败的会议", days_ago=6, recording=False)
    add_recording(db, failed, published=False)
    held(db, "已首播的直播间节目", days_ago=1, kind=EventKind.broadcast,
         status=EventStatus.published, premiere_in=timedelta(hours=-2), duration_s=600)
    held(db, "正在首播的直播间节目", days_ago=1, kind=EventKind.broadcast,
         status=EventStatus.published, premiere_in=timedelta(seconds=-30), duration_s=600)
    held(db, "即将首播的直播间节目", days_ago=1, kind=EventKind.broadcast,
         status=EventStatus.published, premiere_in=timedelta(days=1), duration_s=600)

    page = client.get("/archive")
    assert page.status_code == 200
    listed = ["已首播的直播间节目", "近期的会议开放", "已归档的公众报告", "去年的政府开放日"]
    assert titles(page.text) == listed
    assert 'aria-current="page">活动录像' in page.text
    # The archive is exactly what plays on demand: its rule and the player's agree.
    for event in db.exec(select(Event)).all():
        playback = client.get(f"/api/events/{event.id}/playback")
        on_demand = playback.status_code == 200 and playback.json()["state"] == "vod"
        assert on_demand == (event.title in listed), event.title


def test_an_entry_shows_poster_title_unit_date_duration_kind_and_both_links(client, db):
    event_id = held(db, "区教委招生政策会议开放", days_ago=3, duration_s=3754.4)
    recording = archive.entry_of(db, db.get(Event, event_id), now())
    assert recording is not None
    key = recording.recording.media_key
    html = client.get("/archive").text
    card = html[html.index('<article class="archive-card'):html.index("</article>")]
    assert f'src="/media/hls/{key}/poster.jpg"' in card
    assert 'alt="“区教委招生政策会议开放”的录像画面"' in card
    assert '<time datetime="PT1H2M34S">1:02:34</time>' in card
    assert f'href="/events/{event_id}/live"' in card and f'href="/events/{event_id}"' in card
    assert "区教委" in card and "会议开放" in card and "观看录像" in card
    starts = (now() - timedelta(days=3)).astimezone(archive.LOCAL_TZ)
    assert f"{starts.year}年{starts.month}月{starts.day}日" in visible(card)


def test_durations_read_as_minutes_and_seconds_or_hours():
    assert archive.duration_text(2.4) == "00:02"
    assert archive.duration_text(754) == "12:34"
    assert archive.duration_text(3600) == "1:00:00"
    assert archive.duration_iso(754) == "PT12M34S"


def test_a_re_upload_that_never_published_leaves_the_entry_as_it_was(client, db):
    event_id = held(db, "重新上传录像的会议")
    add_recording(db, event_id, published=False)
    assert titles(client.get("/archive").text) == ["重新上传录像的会议"]


def test_the_archive_says_so_when_empty_and_when_nothing_matches(client, db):
    assert "暂无已发布的录像" in client.get("/archive").text
    held(db, "区教委会议")
    page = client.get("/archive?kind=open_day")
    assert "没有符合筛选条件的录像" in page.text and 'href="/archive">查看全部录像' in page.text


# ---- filters, search, pages -----------------------------------------------------------------

def test_filters_by_kind_unit_and_year_without_javascript(client, db):
    held(db, "教育会议", days_ago=10)
    held(db, "卫生开放日", days_ago=20, unit="health", kind=EventKind.open_day)
    old = held(db, "很久以前的教育会议", days_ago=800)
    old_year = db.get(Event, old).starts_at.astimezone(archive.LOCAL_TZ).year  # type: ignore[union-attr]

    page = client.get("/archive")
    form = page.text[page.text.index('<form class="filters'):page.text.index("</form>")]
    assert 'method="get" action="/archive"' in form
    assert 'name="kind"' in form and 'name="unit"' in form and 'name="year"' in form
    assert f'<option value="{old_year}">{old_year}</option>' in form

    assert titles(client.get("/archive?kind=open_day").text) == ["卫生开放日"]
    assert titles(client.get("/archive?unit=education").text) == ["教育会议", "很久以前的教育会议"]
    assert titles(client.get(f"/archive?year={old_year}").text) == ["很久以前的教育会议"]
    both = client.get(f"/archive?unit=education&year={old_year}&kind=open_meeting")
    assert titles(both.text) == ["很久以前的教育会议"]
    assert f'<option value="{old_year}" selected>' in both.text
    # A filter the form cannot send is ignored, not an error.
    assert len(titles(client.get("/archive?kind=bogus&year=99999&page=-1").text)) == 3


def test_search_finds_title_summary_and_the_close_out_minutes(client, staff, db):
    admin = staff("admin")
    moment = now()
    body = event_body(db, title="区教委课后服务会议开放", summary="听取家长意见。",
                      mode="hybrid", starts_at=(moment - timedelta(days=2)).isoformat(),
                      ends_at=(moment - timedelta(days=2) + timedelta(hours=2)).isoformat(),
                      registration_opens_at=None, registration_closes_at=None)
    event_id = admin.post("/api/events", json=body).json()["id"]
    publish(admin, event_id)
    closed = admin.post(f"/api/events/{event_id}/close",
                        json={"minutes": "会议决定延长托管时间至18点。"})
    assert closed.status_code == 200, closed.text
    add_recording(db, event_id)
    held(db, "卫生健康政策报告", summary="介绍家庭医生签约服务。", unit="health")

    assert titles(client.get("/archive?q=托管时间").text) == ["区教委课后服务会议开放"]
    assert titles(client.get("/archive?q=家庭医生").text) == ["卫生健康政策报告"]
    assert titles(client.get("/archive?q=课后服务").text) == ["区教委课后服务会议开放"]
    # Every word must be found, each anywhere: title, summary or minutes.
    assert titles(client.get("/archive?q=课后服务+18点").text) == ["区教委课后服务会议开放"]
    assert titles(client.get("/archive?q=课后服务+签约").text) == []
    assert titles(client.get("/archive?q=%25").text) == []  # '%' is text, not a wildcard


def test_minutes_not_yet_published_are_not_searched(client, db):
    event_id = held(db, "尚未结项的会议")
    event = db.get(Event, event_id)
    assert event is not None
    event.minutes = "草稿纪要中的秘密词"  # written, but no close-out: not public
    db.add(event)
    db.commit()
    assert titles(client.get("/archive?q=秘密词").text) == []


def test_pages_of_the_archive(client, db):
    for n in range(26):
        held(db, f"第{n:02d}场会议", days_ago=n + 1)
    first = client.get("/archive?unit=education")
    assert len(titles(first.text)) == 24
    assert 'href="/archive?unit=education&amp;page=2" rel="next"' in first.text
    second = client.get("/archive?unit=education&page=2")
    assert titles(second.text) == ["第24场会议", "第25场会议"]
    assert 'href="/archive?unit=education" rel="prev"' in second.text
    assert "没有更多录像了" in client.get("/archive?page=9").text


# ---- per unit -------------------------------------------------------------------------------

def test_each_unit_has_its_archive_and_its_page_links_there(client, db):
    held(db, "教育会议", days_ago=10)
    held(db, "卫生开放日", days_ago=20, unit="health", kind=EventKind.open_day)
    page = client.get("/units/education/archive")
    assert page.status_code == 200
    assert titles(page.text) == ["教育会议"]
    assert "区教委 的活动录像" in page.text and 'name="unit"' not in page.text
    assert 'action="/units/education/archive"' in page.text
    assert titles(client.get("/units/education/archive?kind=open_day").text) == []

    assert 'href="/units/education/archive"' in client.get("/units/education").text
    held(db, "无录像的会议", unit="civil-affairs", recording=False)
    main = client.get("/units/civil-affairs").text.split("<main")[1]
    assert "无录像的会议" in main and "/archive" not in main
    assert client.get("/units/no-such-unit/archive").status_code == 404


def test_a_unit_archive_includes_what_it_co_hosted(client, db):
    event_id = held(db, "区教委与区卫健委联合开放日")
    invited = held(db, "只邀请未接受的会议")
    db.add(EventCohost(event_id=event_id, unit_id=unit_id(db, "health"),
                       state=CohostState.accepted))
    db.add(EventCohost(event_id=invited, unit_id=unit_id(db, "health")))
    db.commit()
    assert titles(client.get("/units/health/archive").text) == ["区教委与区卫健委联合开放日"]
    assert titles(client.get("/archive?unit=health").text) == ["区教委与区卫健委联合开放日"]


# ---- the session page -----------------------------------------------------------------------

def test_a_held_session_with_a_recording_links_to_it(client, db):
    with_video = held(db, "有录像的会议")
    without = held(db, "无录像的会议", recording=False)
    page = client.get(f"/events/{with_video}").text
    assert f'<a class="button" href="/events/{with_video}/live">观看录像</a>' in page
    assert "观看录像" not in client.get(f"/events/{without}").text


# ---- the Atom feed --------------------------------------------------------------------------

def _feed(client: TestClient) -> ET.Element:
    response = client.get("/archive.atom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    return ET.fromstring(response.content)  # well-formed, or this raises


def test_the_feed_has_one_entry_per_recording_with_absolute_enclosures(settings, db):
    ids = [held(db, "区教委会议 <第一场> & 纪要", minutes="纪要：同意。", days_ago=5),
           held(db, "区卫健委开放日", unit="health", kind=EventKind.open_day, days_ago=9)]
    held(db, "无录像的会议", recording=False)
    held(db, "已取消的会议", status=EventStatus.cancelled)
    configured = Settings(**(settings.model_dump() | {
        "public_url": PUBLIC + "/", "allowed_hosts": "kaifang-1.internal"}))
    with TestClient(create_app(configured), base_url="http://kaifang-1.internal") as client:
        feed = _feed(client)
        entries = feed.findall(f"{ATOM}entry")
        assert [e.findtext(f"{ATOM}title") for e in entries] == \
            ["区教委会议 <第一场> & 纪要", "区卫健委开放日"]
        for event_id, entry in zip(ids, entries, strict=True):
            key = archive.entry_of(db, db.get(Event, event_id), now()).recording.media_key  # type: ignore[arg-type, union-attr]
            links = {(link.get("rel"), link.get("type")): link.get("href")
                     for link in entry.findall(f"{ATOM}link")}
            assert links == {
                ("alternate", "text/html"): f"{PUBLIC}/events/{event_id}",
                ("related", "text/html"): f"{PUBLIC}/events/{event_id}/live",
                ("enclosure", "application/vnd.apple.mpegurl"):
                    f"{PUBLIC}/media/hls/{key}/master.m3u8",
                ("enclosure", "image/jpeg"): f"{PUBLIC}/media/hls/{key}/poster.jpg",
            }
            assert entry.findtext(f"{ATOM}id") == f"tag:kaifang,2018:archive/{event_id}"
        assert "时长：12:34" in (entries[0].findtext(f"{ATOM}summary") or "")
        assert entries[0].findtext(f"{ATOM}content") == "纪要：同意。"
        assert entries[1].find(f"{ATOM}content") is None
        feed_links = {link.get("href") for link in feed.findall(f"{ATOM}link")}
        assert feed_links == {f"{PUBLIC}/archive.atom", f"{PUBLIC}/archive"}
        assert "kaifang-1.internal" not in client.get("/archive.atom").text
        # A host the service does not know is refused before anything is built from it.
        evil = client.get("/archive.atom", headers={"Host": "evil.example"})
        assert evil.status_code == 400 and "evil.example" not in evil.headers.get("location", "")


def test_an_empty_archive_is_a_valid_feed(client):
    feed = _feed(client)
    assert feed.findall(f"{ATOM}entry") == []
    assert feed.findtext(f"{ATOM}title") == "西城区政务开放 · 活动录像"


# ---- the embeddable player ------------------------------------------------------------------

def test_the_embed_page_is_the_title_and_the_player(client, db):
    event_id = held(db, "区教委会议开放")
    entry = archive.entry_of(db, db.get(Event, event_id), now())  # type: ignore[arg-type]
    assert entry is not None
    page = client.get(f"/embed/{event_id}")
    assert page.status_code == 200
    assert "区教委会议开放" in page.text
    assert f'data-src="/media/hls/{entry.recording.media_key}/master.m3u8"' in page.text
    assert 'js/player.js' in page.text
    assert f'poster="/media/hls/{entry.recording.media_key}/poster.jpg"' in page.text
    assert 'class="site-nav"' not in page.text and "site-footer" not in page.text
    assert f'href="http://testserver/events/{event_id}" target="_blank"' in page.text


def test_an_upcoming_premiere_embeds_its_countdown(client, db):
    event_id = held(db, "即将首播的节目", kind=EventKind.broadcast, days_ago=-1,
                    status=EventStatus.published, premiere_in=timedelta(days=1))
    page = client.get(f"/embed/{event_id}")
    assert page.status_code == 200 and "首播时间" in page.text and "<video" not in page.text


@pytest.mark.parametrize("case", ["no_recording", "draft", "cancelled", "missing", "huge"])
def test_the_embed_page_is_404_without_a_public_recording(client, db, case):
    ids: dict[str, Any] = {
        "no_recording": held(db, "无录像", recording=False),
        "draft": held(db, "草稿", status=EventStatus.draft, published=False),
        "cancelled": held(db, "已取消", status=EventStatus.cancelled),
        "missing": 999_999, "huge": 2**40,
    }
    page = client.get(f"/embed/{ids[case]}", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "该活动暂无可播放的录像，或尚未公开" in page.text or case == "huge"


# ---- end to end: upload, transcode, archive -------------------------------------------------

@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive-clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
                    str(path)], check=True)
    return path


def test_a_transcoded_recording_reaches_the_archive_feed_and_embed(client, staff, db, settings,
                                                                  clip):
    editor = staff("editor", "education")
    moment = now()
    body = event_body(db, title="区教委端到端录像会议", mode="online",
                      starts_at=(moment - timedelta(hours=3)).isoformat(),
                      ends_at=(moment - timedelta(hours=1)).isoformat(),
                      registration_opens_at=None, registration_closes_at=None)
    event_id = editor.post("/api/events", json=body).json()["id"]
    admin = staff("admin")
    publish(admin, event_id)
    with clip.open("rb") as handle:
        upload = editor.post(f"/api/events/{event_id}/recording",
                             files={"file": ("clip.mp4", handle, "video/mp4")})
    assert upload.status_code == 202, upload.text
    assert titles(client.get("/archive").text) == []  # not transcoded, not closed out
    while run_one(settings):
        pass
    assert titles(client.get("/archive").text) == []  # still not ended
    assert admin.post(f"/api/events/{event_id}/close",
                      json={"minutes": "会议纪要：通过。"}).status_code == 200

    html = client.get("/archive?q=通过").text
    assert titles(html) == ["区教委端到端录像会议"]
    assert '<time datetime="PT2S">00:02</time>' in html
    poster = re.search(r'src="(/media/hls/[^"]+/poster\.jpg)"', html)
    assert poster is not None
    image = client.get(poster.group(1))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"

    feed = ET.fromstring(client.get("/archive.atom").content)
    hls = [link.get("href") for link in feed.iter(f"{ATOM}link")
           if link.get("type") == "application/vnd.apple.mpegurl"]
    assert len(hls) == 1 and hls[0] is not None and hls[0].startswith("http://testserver/")
    master = client.get(hls[0].removeprefix("http://testserver"))
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text

    embed = client.get(f"/embed/{event_id}").text
    assert f'src="{hls[0].removeprefix("http://testserver")}"' in embed
    assert client.get(f"/api/events/{event_id}/playback").json()["state"] == "vod"
