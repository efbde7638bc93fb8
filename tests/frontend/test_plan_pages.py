"""The broadcast plan's pages over HTTP (issue 18): the console's year page (summary, timeline,
table, filters, import with its errors) and item page (steps, files, link), for the right
people only; the public /plan, in the public's words and with nothing of the office's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from events import plan
from events.models import PlanFile, PlanItem
from frontend import plan_views as views
from streaming.models import Recording
from tests.conftest import Clock, event_body, publish
from tests.frontend.console_pages import csrf_of

YEAR = 2027
# 10 February 2027, 10:00 in Beijing: January (and its week for the archive) is over, February
# has begun, April's premieres are ahead.
NOW = datetime(2027, 2, 10, 2, 0, tzinfo=UTC)
PLAN = ("topic,unit_code,month,theme\n"
        "寒假校园安全,education,1,education\n"
        "义务教育入学政策,education,4,education\n"
        "优化营商环境政策解读,commerce,2,major-projects\n"
        "老旧小区改造,housing,9,housing\n")


def import_form(client: TestClient, data: bytes | str, year: int = YEAR) -> Any:
    """The office's import form, posted as a browser posts it (multipart, with the token)."""
    token = csrf_of(client.get(f"/console/plan?year={year}").text)
    body = data.encode() if isinstance(data, str) else data
    return client.post("/console/plan/import", data={"csrf_token": token, "year": str(year)},
                       files={"file": ("计划.csv", body, "text/csv")}, follow_redirects=False)


def item_id(db: Session, topic: str) -> int:
    db.expire_all()
    item = db.exec(select(PlanItem).where(PlanItem.topic == topic)).one()
    assert item.id is not None
    return item.id


def broadcast(client: TestClient, db: Session, premiere: datetime, unit: str = "education",
              title: str = "区教委政民互动直播间：入学政策") -> int:
    body = event_body(db, unit, kind="broadcast", mode="online", venue="", address="",
                      capacity=0, registration_opens_at=None, registration_closes_at=None,
                      title=title, starts_at=premiere.isoformat(),
                      ends_at=(premiere + timedelta(hours=1)).isoformat(),
                      premiere_at=premiere.isoformat())
    created = client.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def form_post(client: TestClient, page: str, action: str, data: dict[str, str],
              files: dict[str, Any] | None = None) -> Any:
    token = csrf_of(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token}, files=files,
                       follow_redirects=False)


def text_of(html: str) -> str:
    """What a reader sees: the markup's text, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def at(clock: Clock, moment: datetime = NOW) -> None:
    clock.now = moment


# ---- the year's page ------------------------------------------------------------------------

def test_the_office_imports_a_plan_and_sees_its_year(staff: Any, clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    imported = import_form(admin, PLAN)
    assert imported.status_code == 303, imported.text
    page = admin.get(imported.headers["location"])
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "已导入 4 个计划条目。" in shown
    assert "2027年直播计划" in shown
    for topic in ("寒假校园安全", "义务教育入学政策", "优化营商环境政策解读", "老旧小区改造"):
        assert topic in shown
    # February has begun without a session: at risk, with its reason; September is ahead.
    row = re.search(r'<tr id="item-\d+" class="plan-row plan-row-(\w+)[^"]*">\s*<th[^>]*>'
                    r'<a[^>]*>优化营商环境政策解读', page.text)
    assert row and row.group(1) == "at_risk"
    assert "有延误风险" in shown and "尚未关联直播场次" in shown
    assert "尚未启动" in shown
    # January is over (and its archive week too) without a broadcast: not carried out.
    assert "未按计划实施" in shown
    # The timeline: an SVG with its title and description, a mark per item, twelve months.
    svg = re.search(r"<svg[^>]*id=\"plan-timeline\".*?</svg>", page.text, re.S)
    assert svg, "no timeline"
    assert "<title id=\"plan-timeline-title\">2027年直播计划按月分布</title>" in svg.group(0)
    assert "共 4 项。" in svg.group(0)
    assert svg.group(0).count('class="plan-mark ') == 4
    assert all(f">{m}月<" in svg.group(0) for m in range(1, 13))
    # The counts per state.
    counts = dict(re.findall(r'plan-count-(\w+)"><dt>.*?</dt><dd>(\d+)</dd>', page.text))
    assert counts["total"] == "4" and counts["at_risk"] == "1" and counts["planned"] == "2"
    assert counts["missed"] == "1" and counts["done"] == "0"
    english = text_of(admin.get(f"/console/plan?year={YEAR}&lang=en").text)
    assert "At risk of slipping" in english and "No broadcast session linked yet" in english


def test_the_table_filters_by_unit_and_state(staff: Any, clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    assert import_form(admin, PLAN).status_code == 303
    education = text_of(admin.get(f"/console/plan?year={YEAR}&unit=education").text)
    assert "寒假校园安全" in education and "优化营商环境政策解读" not in education
    risky = admin.get(f"/console/plan?year={YEAR}&state=at_risk").text
    rows = re.findall(r'<tr id="item-\d+"', risky)
    assert len(rows) == 1 and "优化营商环境政策解读" in risky
    # The summary still counts the whole year (of the unit chosen).
    assert re.search(r'plan-count-total"><dt>.*?</dt><dd>4</dd>', risky)


def test_a_bad_file_lists_every_line_in_chinese_and_imports_nothing(staff: Any,
                                                                    clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    bad = ("topic,unit_code,month,theme\n"
           "好议题,education,3,education\n"
           "坏单位,nowhere,3,education\n"
           "坏月份,housing,13,housing\n"
           ",commerce,2,\n")
    refused = import_form(admin, bad)
    assert refused.status_code == 422
    shown = text_of(refused.text)
    assert "未导入任何条目：请修改以下各行后重新导入。" in shown
    errors = re.search(r'<table class="plan-import-errors">.*?</table>', refused.text, re.S)
    assert errors
    cells = [text_of(c) for c in re.findall(r"<tr><td>(.*?)</tr>", errors.group(0), re.S)]
    assert cells == ["3 牵头单位代码 没有代码为 nowhere 的单位。",
                     "4 月份 月份须为 1 至 12 的数字。",
                     "5 议题 议题为空。"]
    assert admin.get(f"/api/plan?year={YEAR}").json()["items"] == []
    # A wrong header and a file that is not text are refused whole.
    header = text_of(import_form(admin, "主题,单位,月份\n甲,education,3\n").text)
    assert "表头须为 topic,unit_code,month,theme" in header
    binary = import_form(admin, b"\x00\xff\xfe\x00garbage")
    assert binary.status_code == 422
    assert "请将表格另存为 CSV（UTF-8）后重新导入" in text_of(binary.text)


def test_editors_read_the_plan_hosts_and_strangers_do_not(staff: Any, console: Any,
                                                          client: TestClient, db: Session,
                                                          clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    assert import_form(admin, PLAN).status_code == 303
    editor = console("editor", "commerce")
    page = editor.get(f"/console/plan?year={YEAR}")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "寒假校园安全" in shown and "优化营商环境政策解读" in shown  # every unit's items
    assert "/console/plan/import" not in page.text and "导入直播计划" not in shown
    assert 'href="/console/plan"' in page.text  # the console's navigation
    refused = form_post(editor, f"/console/plan?year={YEAR}", "/console/plan/import",
                        {"year": str(YEAR)}, files={"file": ("p.csv", PLAN.encode(), "text/csv")})
    assert refused.status_code == 403
    host = console("host")
    assert host.get(f"/console/plan?year={YEAR}").status_code == 403
    assert 'href="/console/plan"' not in host.get("/console").text
    stranger = client.get(f"/console/plan?year={YEAR}", follow_redirects=False)
    assert stranger.status_code == 303 and "/console/login" in stranger.headers["location"]
    assert client.get(f"/console/plan/items/{item_id(db, '寒假校园安全')}",
                      follow_redirects=False).status_code == 303


# ---- one item -------------------------------------------------------------------------------

def test_an_item_walks_through_its_steps_by_who_does_them(staff: Any, console: Any,
                                                          db: Session, clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    assert import_form(admin, PLAN).status_code == 303
    item = item_id(db, "义务教育入学政策")
    page = f"/console/plan/items/{item}"
    editor = console("editor", "education")
    premiere = datetime(2027, 4, 20, 2, 0, tzinfo=UTC)  # 20 April, 10:00 in Beijing
    own = broadcast(admin, db, premiere)
    other = broadcast(admin, db, premiere, unit="commerce", title="商务委直播")
    before = editor.get(page)
    assert before.status_code == 200
    shown = text_of(before.text)
    assert "牵头单位材料" in shown and "区新闻办脚本" in shown and "关联场次后确定" in shown
    # The link form offers the lead unit's broadcasts only.
    assert f'<option value="{own}"' in before.text and f'<option value="{other}"' not in before.text
    linked = form_post(editor, page, f"{page}/session", {"event_id": str(own)})
    assert linked.status_code == 303, linked.text
    after = text_of(editor.get(linked.headers["location"]).text)
    assert "已将直播场次关联到该计划条目。" in after
    assert "区教委政民互动直播间：入学政策" in after
    # Due dates follow the premiere: material 14 days before, script 7.
    assert "2027年4月6日" in after and "2027年4月13日" in after
    # The lead unit uploads its material; it may not upload the script.
    assert 'name="step" value="material"' in editor.get(page).text
    assert 'name="step" value="script"' not in editor.get(page).text
    uploaded = form_post(editor, page, f"{page}/files", {"step": "material"},
                         files={"file": ("材料.txt", "入学政策解读材料".encode(), "text/plain")})
    assert uploaded.status_code == 303, uploaded.text
    assert "材料已上传。" in text_of(editor.get(uploaded.headers["location"]).text)
    refused = form_post(editor, page, f"{page}/files", {"step": "script"},
                        files={"file": ("脚本.txt", b"script", "text/plain")})
    assert refused.status_code == 403
    assert "该环节由其他单位负责，或须由区政府办办理。" in text_of(refused.text)
    # The press office uploads the script; a file of a refused kind says why.
    press = console("editor", "publicity")
    assert 'name="step" value="script"' in press.get(page).text
    wrong = form_post(press, page, f"{page}/files", {"step": "script"},
                      files={"file": ("脚本.exe", b"MZ\x90\x00", "application/octet-stream")})
    assert wrong.status_code == 422 and "不接受此类文件" in text_of(wrong.text)
    done = form_post(press, page, f"{page}/files", {"step": "script"},
                     files={"file": ("脚本.txt", "直播脚本".encode(), "text/plain")})
    assert done.status_code == 303
    files = db.exec(select(PlanFile).where(PlanFile.item_id == item)).all()
    assert sorted(f.step for f in files) == ["material", "script"]
    # The lead unit reads the files; another unit's editor sees neither names nor forms.
    ours = editor.get(page).text
    assert "材料.txt" in ours and "脚本.txt" in ours
    script_file = next(f for f in files if f.step == "script")
    assert editor.get(f"/api/plan/files/{script_file.id}").content == "直播脚本".encode()
    outsider = console("editor", "commerce").get(page)
    assert outsider.status_code == 200
    assert "材料.txt" not in outsider.text and "/api/plan/files/" not in outsider.text
    assert 'type="file"' not in outsider.text and f"{page}/session" not in outsider.text
    assert "仅牵头单位、区新闻办和区政府办可查看" in text_of(outsider.text)
    # Another unit's editor may not link; an unknown session is named.
    assert form_post(console("editor", "commerce"), page, f"{page}/session",
                     {"event_id": str(other)}).status_code == 403
    wrong_unit = form_post(admin_console(console), page, f"{page}/session",
                           {"event_id": str(other)})
    assert wrong_unit.status_code == 422
    assert "请选择牵头单位的直播场次。" in text_of(wrong_unit.text)


def admin_console(console: Any) -> TestClient:
    client: TestClient = console("admin")
    return client


def test_an_unknown_item_is_a_console_404(console: Any) -> None:
    admin = console("admin")
    missing = admin.get("/console/plan/items/999999")
    assert missing.status_code == 404
    assert "<html" in missing.text


# ---- the public page ------------------------------------------------------------------------

def test_the_public_reads_the_plan_in_its_own_words(staff: Any, client: TestClient,
                                                    db: Session, clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    plan = ("topic,unit_code,month,theme\n"
            "寒假校园安全,education,1,education\n"
            "义务教育入学政策,education,3,education\n"
            "老旧小区改造,housing,9,housing\n"
            "优化营商环境政策解读,commerce,1,major-projects\n")
    assert import_form(admin, plan).status_code == 303
    # January's broadcast aired on 20 January and its video is on the portal.
    aired = broadcast(admin, db, datetime(2027, 1, 20, 2, 0, tzinfo=UTC),
                      title="寒假校园安全直播")
    publish(admin, aired)
    db.add(Recording(event_id=aired, state="succeeded", duration_s=600, media_key="k-aired",
                     published_at=NOW - timedelta(days=10), created_at=NOW - timedelta(days=15)))
    db.commit()
    # March's broadcast is announced; housing's is only a draft.
    upcoming = broadcast(admin, db, datetime(2027, 3, 20, 2, 0, tzinfo=UTC))
    publish(admin, upcoming)
    draft = broadcast(admin, db, datetime(2027, 9, 20, 2, 0, tzinfo=UTC), unit="housing",
                      title="老旧小区改造草稿")
    for topic, event in (("寒假校园安全", aired), ("义务教育入学政策", upcoming),
                         ("老旧小区改造", draft)):
        assert admin.put(f"/api/plan/items/{item_id(db, topic)}",
                         json={"event_id": event}).status_code == 200
    material = db.exec(select(PlanItem).where(PlanItem.topic == "义务教育入学政策")).one()
    staff("editor", "education").post(
        f"/api/plan/items/{material.id}/files?step=material",
        files={"file": ("内部材料.txt", b"internal", "text/plain")})
    page = client.get("/plan?year=2027")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "2027年西城区政民互动直播计划" in shown
    assert "计划 4 个议题，已播出 1 个。" in shown
    assert re.search(r"1月.*寒假校园安全.*已播出", shown)
    assert f'href="/events/{aired}"' in page.text and f'href="/events/{aired}/live"' in page.text
    assert re.search(r"3月.*义务教育入学政策.*即将播出 首播：2027年3月20日（周六）10:00", shown)
    assert f'href="/events/{upcoming}"' in page.text
    assert f'href="/events/{upcoming}/live"' not in page.text  # nothing to watch yet
    # A draft's session is not the public's: no link, and it is in preparation.
    assert re.search(r"老旧小区改造.*筹备中", shown)
    assert f"/events/{draft}" not in page.text and "老旧小区改造草稿" not in shown
    assert re.search(r"优化营商环境政策解读.*未按计划播出", shown)
    # Nothing of the office's: no reasons, no files, no internal states.
    for internal in ("尚未关联直播场次", "内部材料", "/api/plan/files", "逾期", "有延误风险",
                     "/console/"):
        assert internal not in page.text
    assert 'href="/plan"' in client.get("/").text  # the portal's navigation
    # Another year with no plan says so; a nonsense year falls back to this year.
    assert "本年度的直播计划尚未公布。" in text_of(client.get("/plan?year=2031").text)
    english = text_of(client.get("/plan?year=2027&lang=en").text)
    assert "Aired" in english and "Coming up" in english
    assert "Premiere: Sat 20 Mar 2027, 10:00" in english
    assert client.get("/plan?year=abc").status_code == 200


def test_every_reason_of_the_plan_reads_in_chinese() -> None:
    for code in plan.REASONS:
        label = views.reason_label(code, announce_days=3, archive_days=7)
        assert label != code and re.search(r"[\u4e00-\u9fff]", label), code
    assert views.reason_label("announced_missing", 3, 7) == "未提前3天预告"
    assert views.reason_label("archived_missing", 3, 7) == "未按时上线门户（首播后7天内）"
    assert all(re.search(r"[\u4e00-\u9fff]", views.state_label(s)) for s in plan.STATES)


def test_a_file_too_large_is_refused_with_a_sentence(staff: Any, clock: Clock) -> None:
    at(clock)
    admin = staff("admin")
    # Just over the import's 1 MB: read, and refused by the domain with a sentence.
    line = "很长的议题,education,3,education\n"
    over = "topic,unit_code,month,theme\n" + line * (1_010_000 // len(line.encode()) + 1)
    refused = import_form(admin, over)
    assert refused.status_code == 413
    assert "文件超过 1 MB：一个计划文件最多 500 个条目。" in text_of(refused.text)
    # Far over: refused by its length before the form is read, as a console page.
    far = import_form(admin, line * 200_000)
    assert far.status_code == 413 and "<html" in far.text
    assert admin.get(f"/api/plan?year={YEAR}").json()["items"] == []
