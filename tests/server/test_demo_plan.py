"""`kaifang demo`'s issue-18 part (server/demo_plan.py): themes, two series, the year's
broadcast plan in its different states, answered questions with outcomes and one overdue, and
the compliance report that counts them. The clock is held at 15 June 2027 so the plan's states
are known; the demo's recordings are off (transcoding takes seconds)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

import server.demo  # noqa: F401  (loaded before the clock, so that it reads the test's time)
import server.demo_plan  # noqa: F401
from events import plan, question_stats
from events.models import Event, EventTheme, Series
from server import cli
from server.config import Settings, get_settings
from streaming.models import Question
from tests.conftest import Clock

NOW = datetime(2027, 6, 15, 4, 0, tzinfo=UTC)  # a Tuesday, noon in Beijing


@pytest.fixture
def demo(settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: Clock,
         capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    """The demo loaded into the test's database on 15 June 2027; its summary."""
    clock.now = NOW
    for name in ("KAIFANG_DATABASE_URL", "KAIFANG_REDIS_URL", "KAIFANG_SECRET_KEY",
                 "KAIFANG_DEMO_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAIFANG_DEMO_RECORDINGS", "false")
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    assert cli.main(["demo"]) == 0
    yield capsys.readouterr().out
    get_settings.cache_clear()


def test_the_demo_has_a_plan_in_every_state_but_done(demo, db: Session, settings: Settings):
    assert "Broadcast plan: 10 items of 2027; 2 series;" in demo
    views = plan.items_of_year(db, 2027, settings, NOW)
    states = Counter(view.state for view in views)
    assert states == {"planned": 3, "on_track": 2, "at_risk": 2, "late": 1, "missed": 2}
    linked = [view for view in views if view.event is not None]
    assert len(linked) == 4
    assert all(view.event.kind.value == "broadcast" for view in linked if view.event)
    late = next(view for view in views if view.state == "late")
    assert (late.unit.code, late.reason) == ("housing", "material_missing")


def test_the_demo_has_themes_and_two_series(demo, db: Session):
    themed = db.exec(select(func.count()).select_from(EventTheme)).one()
    assert themed >= 25
    series = {s.title: s for s in db.exec(select(Series))}
    assert set(series) == {"政府开放日·环境保护系列", "政民互动直播间"}
    environment = list(db.exec(select(Event).where(
        Event.series_id == series["政府开放日·环境保护系列"].id)))
    assert len(environment) == 3 and {e.kind.value for e in environment} == {"open_day"}
    broadcasts = list(db.exec(select(Event).where(Event.series_id == series["政民互动直播间"].id)))
    assert len(broadcasts) == 4
    # Still a believable district of 35 to 45 sessions (tests/server/test_cli.py).
    assert 35 <= db.exec(select(func.count()).select_from(Event)).one() <= 45


def test_the_demo_questions_have_outcomes_and_one_is_still_open(demo, db: Session):
    questions = list(db.exec(select(Question)))
    outcomes = Counter(q.outcome for q in questions if q.outcome)
    assert outcomes == {"adopted": 1, "partly_adopted": 1, "not_adopted": 2}
    assert all(q.outcome_reason for q in questions if q.outcome == "not_adopted")
    (still_open,) = [q for q in questions if q.state == "approved"]
    event = db.get(Event, still_open.event_id)
    assert event is not None and (NOW - event.ends_at.astimezone(UTC)).days > 15
    assert db.exec(select(func.count()).select_from(Question).where(
        col(Question.answered_at_video_time).is_not(None))).one() == 2


def test_the_compliance_report_carries_the_demo_plan(demo, client: TestClient):
    body = client.get("/api/compliance?year=2027").json()
    by_code = {u["unit"]["code"]: u for u in body["units"]}
    assert sum(u["plan"]["total"] for u in body["units"]) == 10
    assert by_code["housing"]["plan"]["late"] == 1
    assert by_code["education"]["plan"] == {"total": 1, "planned": 0, "on_track": 0,
                                            "at_risk": 0, "done": 0, "late": 0, "missed": 1}
    page = client.get("/api/compliance.csv?year=2027")
    assert page.status_code == 200 and "计划直播" in page.text


def test_the_demo_question_past_the_deadline_is_overdue_in_the_report(demo,
                                                                   client: TestClient):
    if not question_stats._providers:
        pytest.skip("needs streaming.answers' question stats (h18/answers)")
    body = client.get("/api/compliance?year=2027").json()
    by_code = {u["unit"]["code"]: u for u in body["units"]}
    assert by_code["housing"]["questions"]["overdue"] == 1
    assert by_code["publicity"]["questions"]["received"] == 4
