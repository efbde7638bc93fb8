"""What issue 18 added to the district's reports, at a district's scale: the compliance report
with the broadcast plan and the citizens' questions, the sessions' CSV, the plan (API and
console page) and the theme filter (API and portal), each beside a baseline measured in the
same run, with the SQL statements each one issues.

For each size in --sizes (sessions in the year; default 500 and 2,000) it migrates a fresh
database (SQLite in a temporary data dir, or --database-url's PostgreSQL, dropped and
re-created), then writes the year with SQLAlchemy core inserts (seconds, not the API): the
seeded units, the sessions spread over the Beijing year (published; those already over ended
or archived and closed out, the rest published), 1-2 themes each, 50 series holding 40 % of
them, 15 questions per session (held, rejected, approved and unanswered, answered live or in
writing, with outcomes; those of sessions over for 15 days and unanswered are overdue), and
120 plan items per 2,000 sessions (most linked to a broadcast, with material and script
files and recordings). Then it asks each measure --repeat times through the app's TestClient
(or calls the domain function) and prints median and p95 times, the ratio to the baseline
and the statements issued (counted by a `before_cursor_execute` listener). The statements of
a measure must be the same at every size: a count that grows with the sessions is an N+1.

Targets: every page and report under 500 ms median at 2,000 sessions; statement counts equal
at every size.

    .venv/bin/python bench/accountability.py                       # ~1 minute
    .venv/bin/python bench/accountability.py --write               # also bench/results/
    .venv/bin/python bench/accountability.py --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/kaifang_bench
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from harness import fresh_pg_database  # noqa: E402  (bench/harness.py)
from sqlalchemy import Engine, event, insert, select, text  # noqa: E402
from sqlmodel import Session, col  # noqa: E402

import streaming.answers  # noqa: E402, F401  (registers the questions' stats)
import streaming.plan_media  # noqa: E402, F401  (registers the recordings' facts)
from events import quotas  # noqa: E402
from events.evidence import year_bounds  # noqa: E402
from events.models import (  # noqa: E402
    Event,
    EventKind,
    EventMode,
    EventStatus,
    Moderation,
    Role,
    Unit,
)
from events.models_plan import EventTheme, PlanFile, PlanItem, Series, Theme  # noqa: E402
from events.staff import UserCreate, create_user  # noqa: E402
from events.timeutil import LOCAL_TZ  # noqa: E402
from server.app import create_app  # noqa: E402
from server.cli import migrate  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import get_engine  # noqa: E402
from streaming.models import Question, Recording  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "accountability.md"
ADMIN, PASSWORD = "bench-admin", "bench-password-42"
TARGET_MS = 500.0
QUESTIONS_PER_SESSION = 15
PLAN_ITEMS_PER_2000 = 120
SERIES = 50
KINDS = (EventKind.open_meeting, EventKind.open_day, EventKind.public_report,
         EventKind.chief_dialogue, EventKind.broadcast)


# ---- the year -------------------------------------------------------------------------------

@dataclass
class Year:
    year: int
    sessions: int = 0
    questions: int = 0
    plan_items: int = 0
    plan_files: int = 0
    recordings: int = 0
    series: int = 0


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> list[list[dict[str, Any]]]:
    return [rows[start:start + size] for start in range(0, len(rows), size)]


def _insert(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany per chunk: every row gets the same keys (None where a row has none)."""
    keys = {key for row in rows for key in row}
    rows = [dict.fromkeys(keys) | row for row in rows]
    with engine.begin() as conn:
        for chunk in _chunks(rows):
            conn.execute(insert(table), chunk)


def build_year(engine: Engine, year: int, sessions: int, now: datetime) -> Year:
    """The district's year, written in bulk (see the module's docstring)."""
    rng = random.Random(18)
    made = Year(year=year)
    with engine.connect() as conn:
        units = [row[0] for row in conn.execute(
            select(Unit.id).where(col(Unit.retired_at).is_(None)).order_by(Unit.id))]
        themes = [row[0] for row in conn.execute(select(Theme.code))]
        admin = conn.execute(text("SELECT id FROM staffuser")).scalar()
    start, end = year_bounds(year)
    span = (end - start).total_seconds()
    series_rows = [{"title": f"系列{n:02d}", "unit_id": units[n % len(units)], "summary": "",
                    "created_by": admin, "created_at": start, "updated_at": start}
                   for n in range(SERIES)]
    _insert(engine, Series.__table__, series_rows)
    with engine.connect() as conn:
        series_ids = [row[0] for row in conn.execute(select(Series.id))]
    events = []
    for n in range(sessions):
        starts = start + timedelta(seconds=span * (n + 0.5) / sessions)
        starts = starts.replace(minute=0, second=0, microsecond=0)
        ends = starts + timedelta(hours=2)
        kind = KINDS[n % len(KINDS)]
        over = ends < now
        unit_id = units[rng.randrange(len(units))]
        # 40 % in a series, every 10th session among them (each page then shows some).
        series_id = series_ids[rng.randrange(SERIES)] if n % 5 < 2 else None
        events.append({
            "kind": kind, "unit_id": unit_id, "title": f"{kind.value} {n}",
            "summary": "基准测试活动。", "starts_at": starts, "ends_at": ends,
            "mode": EventMode.online if kind == EventKind.broadcast else EventMode.in_person,
            "venue": "区政府礼堂", "address": "西城区示例街1号", "capacity": 100,
            "moderation": Moderation.pre,
            "premiere_at": starts if kind == EventKind.broadcast else None,
            "status": (EventStatus.archived if n % 3 == 0 else EventStatus.ended) if over
            else EventStatus.published,
            "public_notice": "", "review_note": "", "published_at": starts - timedelta(days=14),
            "minutes": "会议纪要。" if over else "", "attendee_count": 60 if over else None,
            "closed_at": ends + timedelta(days=1) if over else None,
            "created_by": admin, "created_at": starts - timedelta(days=20),
            "updated_at": starts - timedelta(days=14), "series_id": series_id})
    _insert(engine, Event.__table__, events)
    with engine.connect() as conn:
        held = list(conn.execute(select(Event.id, Event.kind, Event.starts_at, Event.ends_at,
                                        Event.unit_id).order_by(Event.id)))
    made.sessions, made.series = len(held), SERIES
    theme_rows = []
    for n, (event_id, *_) in enumerate(held):
        codes = rng.sample(themes, rng.choice((1, 2)))
        if n % 10 == 0 and "education" not in codes:
            codes[0] = "education"  # so that the filtered pages list sessions in a series
        for code in codes:
            theme_rows.append({"event_id": event_id, "theme_code": code})
    _insert(engine, EventTheme.__table__, theme_rows)
    questions = []
    for event_id, _kind, starts, ends, _unit in held:
        for q in range(rng.randrange(2 * QUESTIONS_PER_SESSION + 1)):
            asked = starts - timedelta(days=2) + timedelta(minutes=q)
            row: dict[str, Any] = {
                "event_id": event_id, "author": "市民", "text": f"问题{q}", "votes": q % 5,
                "answer": "", "outcome": "", "outcome_reason": "", "created_at": asked,
                "state": "approved", "decided_at": asked + timedelta(hours=1)}
            roll = rng.random()
            if ends > now or roll < 0.05:
                row["state"] = "held" if ends > now or roll < 0.025 else "rejected"
            elif roll < 0.25:
                pass  # approved and not answered: overdue 15 days after the session
            elif roll < 0.55:
                row.update(state="answered", answered_at=starts + timedelta(minutes=30),
                           answered_at_video_time=float(q * 60))
            else:
                written = ends + timedelta(days=rng.randrange(1, 20))
                row.update(state="answered", answer="书面答复。", answer_by=admin,
                           answer_at=written, answered_at=written, answered_by=admin)
                if roll > 0.85:
                    row.update(outcome=rng.choice(("adopted", "partly_adopted",
                                                   "not_adopted")), outcome_reason="理由。")
            questions.append(row)
    _insert(engine, Question.__table__, questions)
    made.questions = len(questions)
    broadcasts = [row for row in held if row[1] == EventKind.broadcast]
    wanted = max(1, round(PLAN_ITEMS_PER_2000 * sessions / 2000))
    items, files, recordings = [], [], []
    for n in range(wanted):
        linked = broadcasts[n * len(broadcasts) // wanted] if n % 6 else None
        month = linked[2].astimezone(LOCAL_TZ).month if linked else 1 + n % 12
        items.append({"year": year, "topic": f"直播计划{n:03d}",
                      "unit_id": linked[4] if linked else units[n % len(units)],
                      "month": month, "theme_code": themes[n % len(themes)],
                      "event_id": linked[0] if linked else None, "position": n,
                      "created_by": admin, "created_at": start, "reminded": ""})
        if linked and linked[3] < now + timedelta(days=30):
            recordings.append({"event_id": linked[0], "state": "succeeded",
                               "media_key": f"bench{n:04d}", "duration_s": 3600.0,
                               "width": 1280, "height": 720, "has_audio": True,
                               "renditions": "720p,480p,360p", "size_bytes": 10**8,
                               "uploaded_by": admin,
                               "created_at": linked[2] - timedelta(days=5),
                               "published_at": linked[2] - timedelta(days=5, hours=-1)})
    _insert(engine, PlanItem.__table__, items)
    if recordings:
        _insert(engine, Recording.__table__, recordings)
    with engine.connect() as conn:
        for item_id, event_id in conn.execute(select(PlanItem.id, PlanItem.event_id)):
            if event_id is None or item_id % 4 == 0:
                continue
            for step, days in (("material", 16), ("script", 8 if item_id % 3 else 5)):
                moment = start + timedelta(days=(item_id * 3) % 300)
                files.append({"item_id": item_id, "step": step, "filename": f"{step}.pdf",
                              "stored_key": f"bench-{item_id}-{step}",
                              "content_type": "application/pdf", "size_bytes": 1000 + days,
                              "uploaded_by": admin, "uploaded_at": moment})
    if files:
        _insert(engine, PlanFile.__table__, files)
    made.plan_items, made.plan_files, made.recordings = len(items), len(files), len(recordings)
    return made


# ---- measuring ------------------------------------------------------------------------------

@dataclass
class Measure:
    name: str
    baseline: str = ""  # the name of the measure this one is compared with
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the process's CPU time (every thread)
    statements: list[int] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))] * 1000

    @property
    def statement_count(self) -> str:
        found = sorted(set(self.statements))
        return str(found[0]) if len(found) == 1 else "–".join(map(str, (found[0], found[-1])))


class Counter:
    """SQL statements sent on an engine, from a `before_cursor_execute` listener."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


@dataclass
class Run:
    database: str
    year: Year
    setup_s: float
    measures: list[Measure]


def measure_year(settings: Settings, sessions: int, repeat: int) -> Run:
    started = time.monotonic()
    migrate(settings)
    engine = get_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        create_user(db, None, UserCreate(username=ADMIN, password=PASSWORD, role=Role.admin))
        db.commit()
    now = datetime.now(UTC)
    year = quotas.today_local().year
    made = build_year(engine, year, sessions, now)
    setup_s = time.monotonic() - started
    counter = Counter(engine)
    app = create_app(settings)
    public = TestClient(app)
    admin = TestClient(app)
    answer = admin.post("/api/session", json={"username": ADMIN, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    admin.headers["X-CSRF-Token"] = answer.json()["csrf_token"]

    def get(client: TestClient, url: str) -> Callable[[], None]:
        def ask() -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
        return ask

    def compute(accountable: bool) -> Callable[[], None]:
        def run() -> None:
            with Session(engine) as db:
                quotas.compute(db, year, settings=settings, accountable=accountable)
        return run

    y = f"year={year}"
    plan: list[tuple[Measure, Callable[[], None]]] = [
        (Measure("baseline: `quotas.compute(db, year)` (the quota report before issue 18)"),
         compute(False)),
        (Measure("`quotas.compute(db, year, accountable=True)`", baseline="compute"),
         compute(True)),
        (Measure(f"`GET /api/compliance?{y}`", baseline="compute"),
         get(public, f"/api/compliance?{y}")),
        (Measure(f"`GET /api/compliance/sessions.csv?{y}`", baseline="compute"),
         get(public, f"/api/compliance/sessions.csv?{y}")),
        (Measure(f"`GET /api/plan?{y}` (public)"), get(public, f"/api/plan?{y}")),
        (Measure(f"`GET /console/plan?{y}` (admin)"), get(admin, f"/console/plan?{y}")),
        (Measure("baseline: `GET /api/events`"), get(public, "/api/events")),
        (Measure("`GET /api/events?theme=education`", baseline="events"),
         get(public, "/api/events?theme=education")),
        (Measure("baseline: `GET /` (the portal)"), get(public, "/")),
        (Measure("`GET /?theme=education`", baseline="portal"),
         get(public, "/?theme=education")),
    ]
    for _measure, ask in plan:
        ask()  # warm up: templates compiled, caches filled, pages of the database read
    for _ in range(repeat):
        for measure, ask in plan:
            before = counter.count
            moment, cpu = time.perf_counter(), time.process_time()
            ask()
            measure.times.append(time.perf_counter() - moment)
            measure.cpu.append(time.process_time() - cpu)
            measure.statements.append(counter.count - before)
    public.close()
    admin.close()
    engine.dispose()
    get_engine.cache_clear()
    return Run(database=settings.sqlalchemy_url.split(":", 1)[0].split("+")[0], year=made,
               setup_s=setup_s, measures=[measure for measure, _ in plan])


# ---- the report -----------------------------------------------------------------------------

BASELINES = {"compute": 0, "events": 6, "portal": 8}


def _ratio(run: Run, measure: Measure) -> str:
    if not measure.baseline:
        return ""
    base = run.measures[BASELINES[measure.baseline]]
    return f"{measure.cpu_ms / base.cpu_ms:.2f}×"


def _verdict(measure: Measure, counts: list[str]) -> str:
    if measure.median_ms < TARGET_MS:
        fast = "✓"
    elif measure.cpu_ms < TARGET_MS:
        fast = "✓ in CPU (wall time: the machine's load)"
    else:
        fast = "✗ slow"
    return fast + ("" if len(set(counts)) == 1 else ", ✗ statements grow")


def report(runs: list[Run], repeat: int) -> tuple[str, bool]:
    """The markdown report and whether every target is met (judged on the largest size)."""
    largest = max(runs, key=lambda run: run.year.sessions)
    lines = [f"Issue 18's reports at a district's scale, {largest.database}; "
             f"{repeat} repetitions after a warm-up; run {datetime.now(UTC):%Y-%m-%d %H:%M} "
             f"UTC on {describe_machine()}, commit {commit()}.", ""]
    lines.append("| sessions | questions | plan items (files, recordings) | series | setup |")
    lines.append("| ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        made = run.year
        lines.append(f"| {made.sessions:,} | {made.questions:,} | {made.plan_items} "
                     f"({made.plan_files}, {made.recordings}) | {made.series} | "
                     f"{run.setup_s:.1f} s |")
    lines.append("")
    sizes = " / ".join(f"{run.year.sessions:,}" for run in runs)
    lines.append(f"| measure (at {largest.year.sessions:,} sessions) | median | p95 | "
                 f"CPU median | ratio to baseline (CPU) | SQL statements at {sizes} sessions | "
                 f"target: < {TARGET_MS:.0f} ms, statements equal |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    ok = True
    for position, measure in enumerate(largest.measures):
        counts = [run.measures[position].statement_count for run in runs]
        verdict = _verdict(measure, counts)
        ok = ok and verdict.startswith("✓") and "✗" not in verdict
        lines.append(f"| {measure.name} | {measure.median_ms:.0f} ms | {measure.p95_ms:.0f} ms | "
                     f"{measure.cpu_ms:.0f} ms | {_ratio(largest, measure)} | "
                     f"{' / '.join(counts)} | {verdict} |")
    for run in runs:
        if run is largest:
            continue
        lines.append("")
        lines.append(f"At {run.year.sessions:,} sessions (median, CPU median): " + "; ".join(
            f"{measure.name.split(' (')[0]} {measure.median_ms:.0f} ms, {measure.cpu_ms:.0f} ms"
            for measure in run.measures) + ".")
    lines.append("")
    lines.append("CPU is the benchmark process's (every thread: the client, the app, SQLite; "
                 "not PostgreSQL's server), which depends less on what else the machine runs "
                 "than wall-clock time does (see the load average).")
    return "\n".join(lines) + "\n", ok


def describe_machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{os.cpu_count()} cores {cpu}, Python {platform.python_version()}, "
            f"load average {load}")


def commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,2000",
                        help="sessions in the year, one run each (default 500,2000)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL (its database is dropped and re-created)")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    runs = []
    for size in (int(text_) for text_ in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="kaifang-bench-") as folder:
            if args.database_url:
                fresh_pg_database(args.database_url)
            settings = Settings(data_dir=Path(folder), database_url=args.database_url,
                                secret_key="bench-secret-key-of-at-least-32-bytes",
                                public_url="http://testserver")
            runs.append(measure_year(settings, size, args.repeat))
            print(f"{size} sessions measured", file=sys.stderr, flush=True)
    text_, ok = report(runs, args.repeat)
    print(text_)
    if args.write:
        RESULTS.write_text(text_, encoding="utf-8")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
