"""The compliance report over HTTP (JSON, CSV) and the CLI: public, the same answer thrice."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from server import cli
from server.config import Settings, get_settings
from tests.conftest import event_body
from tests.helpers import held

CONTRACT_UNIT_KEYS = {"id", "code", "name", "category"}
CONTRACT_REQUIREMENT_KEYS = {"kind", "deadline", "required", "counted", "met"}


@pytest.fixture
def year_2025(staff: Any, db: Session) -> TestClient:
    """A crafted 2025: met, missed by a Beijing morning, cancelled, unclosed, co-hosted."""
    admin: TestClient = staff("admin")
    held(admin, db, "education", "2025-03-12T09:30:00+08:00")
    held(admin, db, "education", "2025-07-20T23:00:00+08:00")
    held(admin, db, "education", "2025-05-20T09:30:00+08:00", kind="open_day",
         cohosts=("xinjiekou",))
    held(admin, db, "civil-affairs", "2025-07-20T23:30:00+00:00")
    held(admin, db, "civil-affairs", "2025-04-02T09:30:00+08:00", kind="public_report",
         cancel=True)
    held(admin, db, "yuetan", "2025-06-02T09:30:00+08:00", close=False)
    held(admin, db, "government-office", "2025-06-02T09:30:00+08:00")
    return admin


def rows_of_json(body: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(u["unit"]["code"], r["kind"], r["deadline"], r["required"], r["counted"], r["met"])
            for u in body["units"] for r in u["requirements"]}


def rows_of_csv(text: str) -> set[tuple[Any, ...]]:
    assert text.startswith("\ufeff")
    reader = csv.DictReader(io.StringIO(text[1:]))
    # Issue 18 appended the plan's and the questions' columns after the first twelve.
    assert reader.fieldnames == ["单位代码", "单位", "类别", "要求", "截止日期", "要求次数",
                                 "已完成", "是否达标", "状态", "类别（中文）", "要求（中文）",
                                 "状态（中文）", "计划直播", "计划直播已完成", "计划直播逾期",
                                 "计划直播未实施", "逾期未答复问题"]
    return {(row["单位代码"], row["要求"],
             None if row["截止日期"] == "全年" else row["截止日期"],
             int(row["要求次数"]), int(row["已完成"]), row["是否达标"] == "是")
            for row in reader if row["要求"]}


@pytest.fixture
def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """`kaifang …` in-process against the test's database; returns (exit code, stdout)."""
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("KAIFANG_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        return code, capsys.readouterr().out

    yield run
    get_settings.cache_clear()


def test_the_report_is_public_in_the_contract_shape(client, year_2025):
    response = client.get("/api/compliance?year=2025")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"year", "units"} and body["year"] == 2025
    assert len(body["units"]) == 42
    by_code = {u["unit"]["code"]: u for u in body["units"]}
    for item in body["units"]:
        assert set(item["unit"]) == CONTRACT_UNIT_KEYS
        assert item["status"] in ("met", "on_track", "at_risk", "missed", "not_required")
        for requirement in item["requirements"]:
            assert set(requirement) >= CONTRACT_REQUIREMENT_KEYS
    education = {(r["kind"], r["deadline"]): r for r in by_code["education"]["requirements"]}
    assert education[("open_meeting", "2025-07-20")]["counted"] == 2
    assert education[("open_meeting", None)] == {
        "kind": "open_meeting", "deadline": None, "required": 2, "counted": 2, "met": True,
        "status": "met", "scheduled": 0}
    civil = {(r["kind"], r["deadline"]): r for r in by_code["civil-affairs"]["requirements"]}
    assert civil[("open_meeting", "2025-07-20")]["met"] is False
    assert civil[("public_report", None)]["counted"] == 0
    xinjiekou = {(r["kind"], r["deadline"]): r for r in by_code["xinjiekou"]["requirements"]}
    assert xinjiekou[("open_day", None)]["counted"] == 1  # co-hosted
    assert (by_code["government-office"]["status"],
            by_code["government-office"]["requirements"]) == ("not_required", [])
    # 2025 is over: everything not met is missed.
    assert by_code["civil-affairs"]["status"] == "missed"


def test_filters_by_category_and_unit(client, year_2025):
    subdistricts = client.get("/api/compliance?year=2025&category=subdistrict").json()["units"]
    assert len(subdistricts) == 15
    assert {u["unit"]["category"] for u in subdistricts} == {"subdistrict"}
    (only,) = client.get("/api/compliance?year=2025&unit=education").json()["units"]
    assert only["unit"]["code"] == "education"
    (same,) = client.get(f"/api/compliance?year=2025&unit={only['unit']['id']}").json()["units"]
    assert same == only
    missing = client.get("/api/compliance?year=2025&unit=no-such-unit")
    assert (missing.status_code, missing.json()["error"]) == (404, "unit_not_found")


@pytest.mark.parametrize("query", ["year=1999", "year=2101", "year=abc", "year=20.5",
                                   "year=-2025", "year=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%95",
                                   "year=2025&category=ministry"])
@pytest.mark.parametrize("path", ["/api/compliance", "/api/compliance.csv",
                                  "/api/compliance/rules"])
def test_a_bad_year_or_category_is_422(client, path, query):
    if path.endswith("rules") and "category" in query:
        return
    response = client.get(f"{path}?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["error"] in ("invalid_year", "invalid_category")


def test_the_csv_has_a_bom_one_row_per_unit_and_requirement_and_chinese_words(client, year_2025):
    response = client.get("/api/compliance.csv?year=2025")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="compliance-2025.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf\xe5\x8d\x95\xe4\xbd\x8d")  # BOM, 单位
    rows = list(csv.reader(io.StringIO(response.text[1:])))
    assert len(rows) == 1 + 26 * 4 + 16
    # The first twelve columns as before issue 18; its plan and questions columns follow.
    assert ["government-office", "区政府办公室", "other", "", "", "", "", "",
            "not_required", "其他部门", "", "无要求", "0", "0", "0", "0", "0"] in rows
    assert ["civil-affairs", "区民政局", "livelihood", "open_meeting", "2025-07-20", "1", "0",
            "否", "missed", "民生部门", "会议开放", "未完成", "0", "0", "0", "0", "0"] in rows


def test_api_json_csv_and_cli_agree(client, year_2025, run_cli):
    api_json = client.get("/api/compliance?year=2025")
    api_csv = client.get("/api/compliance.csv?year=2025")
    code, cli_json = run_cli("compliance", "--year", "2025")
    assert code == 0
    code, cli_csv = run_cli("compliance", "--year", "2025", "--format", "csv")
    assert code == 0
    from_json = rows_of_json(api_json.json())
    assert len(from_json) == 26 * 4
    assert ("education", "open_meeting", "2025-07-20", 1, 2, True) in from_json
    assert ("civil-affairs", "open_meeting", "2025-07-20", 1, 0, False) in from_json
    assert rows_of_json(json.loads(cli_json)) == from_json
    assert rows_of_csv(api_csv.text) == from_json
    assert rows_of_csv(cli_csv) == from_json
    # Not only the same answer: the same text.
    assert cli_json == api_json.text + "\n"
    assert cli_csv == api_csv.text


def test_the_cli_refuses_a_year_out_of_range(run_cli, capsys):
    with pytest.raises(SystemExit) as refused:
        run_cli("compliance", "--year", "1999")
    assert refused.value.code == 2
    assert "2000-2100" in capsys.readouterr().err


def test_the_report_counts_only_public_sessions(client, staff, db):
    admin = staff("admin")
    draft = admin.post("/api/events", json=event_body(
        db, "education", starts_at="2025-03-12T09:30:00+08:00",
        ends_at="2025-03-12T11:30:00+08:00", registration_opens_at=None,
        registration_closes_at=None))
    assert draft.status_code == 201
    refused = admin.post(f"/api/events/{draft.json()['id']}/close", json={"minutes": "纪要"})
    assert refused.status_code == 409
    (education,) = client.get("/api/compliance?year=2025&unit=education").json()["units"]
    assert all(r["counted"] == 0 for r in education["requirements"])


# ---- the rules ---------------------------------------------------------------------------------

NEW_RULES = {"rules": [
    {"category": "livelihood", "kind": "open_meeting", "required": 3, "deadline": None},
    {"category": "livelihood", "kind": "open_meeting", "required": 1, "deadline": "2031-06-30"},
    {"category": "subdistrict", "kind": "open_day", "required": 2},
]}


def test_the_rules_of_a_year_are_public_and_carried_forward(client):
    response = client.get("/api/compliance/rules?year=2031")
    assert response.status_code == 200
    body = response.json()
    assert (body["year"], body["carried_from"], len(body["rules"])) == (2031, 2018, 8)
    assert {"category": "subdistrict", "kind": "open_meeting", "required": 1,
            "deadline": "2031-07-20"} in body["rules"]
    assert client.get("/api/compliance/rules?year=2018").json()["carried_from"] is None


def test_an_admin_sets_a_years_rules_audited_and_the_report_follows(client, staff):
    admin = staff("admin")
    saved = admin.put("/api/compliance/rules?year=2031", json=NEW_RULES)
    assert saved.status_code == 200, saved.text
    assert saved.json()["carried_from"] is None
    assert len(saved.json()["rules"]) == 3
    (education,) = client.get("/api/compliance?year=2031&unit=education").json()["units"]
    assert [(r["kind"], r["deadline"], r["required"]) for r in education["requirements"]] == [
        ("open_meeting", "2031-06-30", 1), ("open_meeting", None, 3)]
    (yuetan,) = client.get("/api/compliance?year=2031&unit=yuetan").json()["units"]
    assert [(r["kind"], r["required"]) for r in yuetan["requirements"]] == [("open_day", 2)]
    # 2032 now carries 2031's rules; 2030 still 2018's.
    assert client.get("/api/compliance/rules?year=2032").json()["carried_from"] == 2031
    assert client.get("/api/compliance/rules?year=2030").json()["carried_from"] == 2018
    log = admin.get("/api/audit").json()
    entry = next(e for e in log if e["action"] == "quota.rules")
    assert entry["entity_id"] == 2031
    before, after = entry["changes"]["rules"]
    assert before == [] and len(after) == 3
    # Saving the same rules again changes nothing and logs nothing.
    assert admin.put("/api/compliance/rules?year=2031", json=NEW_RULES).status_code == 200
    assert sum(e["action"] == "quota.rules" for e in admin.get("/api/audit").json()) == 1


@pytest.mark.parametrize(("role", "status"), [("editor", 403), ("host", 403), (None, 401)])
def test_only_admins_set_rules(client, staff, role, status):
    user = staff(role, "education" if role == "editor" else None) if role else client
    response = user.put("/api/compliance/rules?year=2031", json=NEW_RULES)
    assert response.status_code == status, response.text
    assert client.get("/api/compliance/rules?year=2031").json()["carried_from"] == 2018


@pytest.mark.parametrize(("rules", "code"), [
    ([{"category": "other", "kind": "open_day", "required": 1}], "no_quota_category"),
    ([{"category": "livelihood", "kind": "open_day", "required": 1, "deadline": "2030-06-30"}],
     "deadline_outside_year"),
    ([{"category": "livelihood", "kind": "open_day", "required": 1}] * 2, "duplicate_rule"),
    ([{"category": "livelihood", "kind": "open_day", "required": 0}], "invalid"),
    ([{"category": "livelihood", "kind": "tea_party", "required": 1}], "invalid"),
    ([{"category": "livelihood", "kind": "open_day", "required": 1, "deadline": "soon"}],
     "invalid"),
])
def test_bad_rules_are_refused(staff, rules, code):
    admin = staff("admin")
    response = admin.put("/api/compliance/rules?year=2031", json={"rules": rules})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == code


def test_setting_rules_needs_a_year(staff):
    admin = staff("admin")
    response = admin.put("/api/compliance/rules", json=NEW_RULES)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_year")
