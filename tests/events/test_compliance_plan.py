"""The compliance report's broadcast plan and questions (issue 18): per unit in the JSON and
the CSV, per session in the sessions' CSV, the same through the CLI.

The plan's states are events.plan's (h18/plan); the questions' stats come through
events.question_stats, whose provider is streaming.answers (h18/answers): here a provider of
the test's own stands in for it, so these numbers check the report, not the stats."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from events import question_stats
from events.models import PlanItem
from events.question_stats import QuestionStats
from server import cli
from server.config import Settings, get_settings
from tests.conftest import Clock, event_body, publish, unit_id
from tests.helpers import held

YEAR = 2027
# 15 June 2027, noon in Beijing: the clock of every test here.
NOW = datetime(2027, 6, 15, 4, 0, tzinfo=UTC)


def _broadcast(admin: TestClient, db: Session, unit: str, premiere: str) -> int:
    """A published broadcast of `unit` premiering at `premiere` (Beijing)."""
    start = datetime.fromisoformat(premiere)
    created = admin.post("/api/events", json=event_body(
        db, unit, kind="broadcast", title="政民互动直播间：学前教育", mode="online", venue="",
        address="", capacity=0, starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(), premiere_at=start.isoformat(),
        registration_opens_at=None, registration_closes_at=None))
    assert created.status_code == 201, created.text
    event_id: int = created.json()["id"]
    publish(admin, event_id)
    return event_id


def _item(db: Session, unit: str, month: int, topic: str, event_id: int | None = None) -> None:
    db.add(PlanItem(year=YEAR, topic=topic, unit_id=unit_id(db, unit), month=month,
                    theme_code="education", event_id=event_id))
    db.commit()


@pytest.fixture
def planned_year(staff: Any, db: Session, clock: Clock) -> TestClient:
    """Education's five items of 2027, one per state but done, judged on 15 June."""
    clock.now = NOW
    admin: TestClient = staff("admin")
    _item(db, "education", 3, "春季开学与课后服务")  # no session, March long over: missed
    _item(db, "education", 6, "中考招生政策解读")  # no session, June begun: at risk
    _item(db, "education", 11, "冬季校园安全")  # no session, November far off: planned
    # Plays 20 July: the material is due 6 July, more than a week off: on track.
    _item(db, "education", 7, "学前教育资源扩充", _broadcast(admin, db, "education",
                                                               "2027-07-20T19:00:00+08:00"))
    # Plays 25 June: its material was due 11 June and never came: late.
    _item(db, "education", 6, "义务教育入学政策", _broadcast(admin, db, "education",
                                                               "2027-06-25T19:00:00+08:00"))
    _item(db, "civil-affairs", 12, "社区养老服务驿站")  # planned
    return admin


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch) -> dict[int, QuestionStats]:
    """The questions' stats the report reads, set by the test (in place of streaming's)."""
    given: dict[int, QuestionStats] = {}

    def provider(_db: Session, event_ids: list[int], _now: datetime) -> dict[int, QuestionStats]:
        return {event_id: given[event_id] for event_id in event_ids if event_id in given}

    monkeypatch.setattr(question_stats, "_providers", [provider])
    return given


@pytest.fixture
def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("KAIFANG_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    def run(*argv: str) -> str:
        capsys.readouterr()
        assert cli.main(list(argv)) == 0
        return capsys.readouterr().out

    yield run
    get_settings.cache_clear()


def _csv_rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


# ---- the plan --------------------------------------------------------------------------------

def test_each_unit_carries_its_plan_by_state(client, planned_year):
    response = client.get(f"/api/compliance?year={YEAR}")
    assert response.status_code == 200, response.text
    by_code = {u["unit"]["code"]: u for u in response.json()["units"]}
    assert by_code["education"]["plan"] == {"total": 5, "planned": 1, "on_track": 1,
                                            "at_risk": 1, "done": 0, "late": 1, "missed": 1}
    assert by_code["civil-affairs"]["plan"] == {"total": 1, "planned": 1, "on_track": 0,
                                                "at_risk": 0, "done": 0, "late": 0, "missed": 0}
    # A unit without items: zeros, never a missing key.
    assert by_code["yuetan"]["plan"]["total"] == 0
    assert by_code["yuetan"]["questions"] == {"received": 0, "approved": 0, "answered_live": 0,
                                              "answered_written": 0, "open": 0, "overdue": 0}
    # What the contract promised stays as it was.
    assert set(by_code["education"]) == {"unit", "status", "requirements", "plan", "questions"}


def test_the_plan_moves_on_with_the_clock(client, planned_year, clock):
    clock.now = datetime(2027, 7, 10, 4, 0, tzinfo=UTC)
    (education,) = client.get(f"/api/compliance?year={YEAR}&unit=education").json()["units"]
    # June and its week of grace are over: 中考招生政策解读 (no session) and the 25 June
    # broadcast (never on the portal) are missed; the 20 July one's material (due 6 July)
    # never came: late.
    assert (education["plan"]["missed"], education["plan"]["late"],
            education["plan"]["on_track"]) == (3, 1, 0)


def test_the_csv_appends_the_plan_to_every_row_of_the_unit(client, planned_year):
    response = client.get(f"/api/compliance.csv?year={YEAR}")
    assert response.status_code == 200
    rows = _csv_rows(response.text)
    education = [row for row in rows if row["单位代码"] == "education"]
    assert len(education) == 4  # one per requirement, as before
    for row in education:
        assert (row["计划直播"], row["计划直播已完成"], row["计划直播逾期"],
                row["计划直播未实施"], row["逾期未答复问题"]) == ("5", "0", "1", "1", "0")
    (office,) = [row for row in rows if row["单位代码"] == "government-office"]
    assert (office["状态（中文）"], office["计划直播"]) == ("无要求", "0")
    # The per-session file is named beside it.
    assert response.headers["link"] == (f'</api/compliance/sessions.csv?year={YEAR}>; '
                                        'rel="related"')


# ---- the questions ---------------------------------------------------------------------------

def test_questions_count_for_the_lead_unit_per_session_and_in_sum(client, staff, db, stats,
                                                                  clock):
    clock.now = NOW
    admin = staff("admin")
    first = held(admin, db, "education", "2027-03-12T09:30:00+08:00")
    second = held(admin, db, "education", "2027-05-20T09:30:00+08:00", kind="open_day",
                  cohosts=("xinjiekou",))
    quiet = held(admin, db, "education", "2027-04-02T09:30:00+08:00")
    stats[first] = QuestionStats(received=12, approved=10, answered_live=6, answered_written=3,
                                 open=1, overdue=1, median_days=2.5, overdue_ids=[7])
    stats[second] = QuestionStats(received=5, approved=4, answered_live=0, answered_written=2,
                                  open=2, overdue=0, median_days=None)
    by_code = {u["unit"]["code"]: u
               for u in client.get(f"/api/compliance?year={YEAR}").json()["units"]}
    assert by_code["education"]["questions"] == {
        "received": 17, "approved": 14, "answered_live": 6, "answered_written": 5, "open": 3,
        "overdue": 1}
    # The co-host answers none of them: each question counts once.
    assert by_code["xinjiekou"]["questions"]["received"] == 0

    rows = _csv_rows(client.get(f"/api/compliance.csv?year={YEAR}").text)
    assert {row["逾期未答复问题"] for row in rows if row["单位代码"] == "education"} == {"1"}

    response = client.get(f"/api/compliance/sessions.csv?year={YEAR}&unit=education")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="compliance-sessions-{YEAR}.csv"' in response.headers["content-disposition"]
    sessions = _csv_rows(response.text)
    assert [(row["活动编号"], row["日期"]) for row in sessions] == [
        (str(first), "2027-03-12"), (str(quiet), "2027-04-02"), (str(second), "2027-05-20")]
    assert sessions[0] == {
        "单位代码": "education", "单位": "区教委", "活动编号": str(first),
        "活动": sessions[0]["活动"], "类型": "会议开放", "日期": "2027-03-12",
        "收到问题": "12", "已通过": "10", "现场答复": "6", "书面答复": "3", "未答复": "1",
        "逾期未答复": "1", "答复用时中位数（天）": "2.5"}
    assert (sessions[1]["收到问题"], sessions[1]["答复用时中位数（天）"]) == ("0", "")
    assert (sessions[2]["类型"], sessions[2]["答复用时中位数（天）"]) == ("政府开放日", "")


def test_a_title_that_is_a_formula_stays_text_in_the_sessions_csv(client, staff, db, clock):
    """CSV injection: a title typed as a spreadsheet formula must not run in Excel."""
    clock.now = NOW
    admin = staff("admin")
    formula = '=HYPERLINK("http://evil.example","点此查看")'
    start = datetime.fromisoformat("2027-03-12T09:30:00+08:00")
    created = admin.post("/api/events", json=event_body(
        db, "education", title=formula, starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=2)).isoformat(), registration_opens_at=None,
        registration_closes_at=None))
    assert created.status_code == 201, created.text
    publish(admin, created.json()["id"])
    sessions = _csv_rows(client.get(f"/api/compliance/sessions.csv?year={YEAR}").text)
    assert [row["活动"] for row in sessions] == ["'" + formula]


def test_a_draft_is_no_session_of_the_report(client, staff, db, stats, clock):
    clock.now = NOW
    admin = staff("admin")
    draft = admin.post("/api/events", json=event_body(db, "education"))
    assert draft.status_code == 201
    stats[draft.json()["id"]] = QuestionStats(received=3)
    sessions = _csv_rows(client.get(f"/api/compliance/sessions.csv?year={YEAR}").text)
    assert sessions == []


@pytest.mark.parametrize("query", ["year=1999", "year=abc", "category=ministry&year=2027"])
def test_the_sessions_csv_refuses_a_bad_year_or_category(client, query):
    response = client.get(f"/api/compliance/sessions.csv?{query}")
    assert response.status_code == 422
    assert response.json()["error"] in ("invalid_year", "invalid_category")


def test_the_sessions_csv_names_a_missing_unit(client):
    response = client.get(f"/api/compliance/sessions.csv?year={YEAR}&unit=no-such-unit")
    assert (response.status_code, response.json()["error"]) == (404, "unit_not_found")


def test_the_cli_prints_what_the_api_answers(client, planned_year, stats, db, run_cli):
    event_id = held(planned_year, db, "education", "2027-03-12T09:30:00+08:00")
    stats[event_id] = QuestionStats(received=2, approved=2, open=2, overdue=2)
    api_json = client.get(f"/api/compliance?year={YEAR}").text
    assert run_cli("compliance", "--year", str(YEAR)) == api_json + "\n"
    assert json.loads(api_json)["units"][0]["unit"]["code"]
    assert run_cli("compliance", "--year", str(YEAR), "--format", "csv") == client.get(
        f"/api/compliance.csv?year={YEAR}").text
    sessions = run_cli("compliance", "--year", str(YEAR), "--format", "sessions-csv")
    assert sessions == client.get(f"/api/compliance/sessions.csv?year={YEAR}").text
    assert {row["活动编号"]: row["逾期未答复"] for row in _csv_rows(sessions)}[str(event_id)] == "2"


# ---- with streaming's own counts (h18/answers) ---------------------------------------------

def test_the_report_counts_the_questions_as_streaming_does(client, staff, db, clock):
    """Real questions, counted by streaming.answers' provider: skipped without it."""
    from streaming.models import Question

    if not question_stats._providers:
        pytest.skip("needs streaming.answers' question stats (h18/answers)")
    clock.now = NOW
    admin = staff("admin")
    event_id = held(admin, db, "education", "2027-05-20T09:30:00+08:00")
    ended = datetime(2027, 5, 20, 3, 30, tzinfo=UTC)  # 11:30 in Beijing
    db.add_all([
        Question(event_id=event_id, author="家长", text="学位够吗？", state="answered",
                 answered_at_video_time=300.0),
        Question(event_id=event_id, author="居民", text="建议公布收费。", state="answered",
                 answer="采纳。", answer_at=ended + timedelta(days=4), outcome="adopted"),
        Question(event_id=event_id, author="市民", text="何时登记？", state="approved"),
        Question(event_id=event_id, author="路人", text="广告", state="rejected"),
    ])
    db.commit()
    (education,) = client.get(f"/api/compliance?year={YEAR}&unit=education").json()["units"]
    # 15 June is 26 days after the session: the open question is overdue.
    assert education["questions"] == {"received": 4, "approved": 3, "answered_live": 1,
                                      "answered_written": 1, "open": 1, "overdue": 1}
    (row,) = _csv_rows(client.get(f"/api/compliance/sessions.csv?year={YEAR}").text)
    assert (row["收到问题"], row["逾期未答复"], row["答复用时中位数（天）"]) == ("4", "1", "2")
