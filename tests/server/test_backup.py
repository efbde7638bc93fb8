"""`kaifang backup DIR` and `kaifang restore DIR` (server.backup): a district backed up while it
runs comes back whole on an empty machine, its recordings playing, its citizens' links working;
a restore refuses anything but an empty data dir and database, and a damaged backup is found
before it writes anything. Both passes: the database is the `settings` fixture's, and a
PostgreSQL restore goes into a second database made for the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy import select as select_rows
from sqlmodel import Session, SQLModel, col, select

from events import registration
from events.models import Event, EventKind, EventStatus, Registration, StaffUser
from events.retention import purge_due
from server.app import create_app
from server.backup import BackupRefused, backup
from server.cli import main, migrate
from server.config import Settings, get_settings
from server.db import get_engine
from server.demo import load_demo
from server.restore import restore
from server.security import Signer
from streaming import jobs
from streaming.models import LiveMessage, LiveRoom, LiveStream, Recording
from streaming.probe import probe
from streaming.storage import LocalStorage
from streaming.transcode import run_one
from tests.conftest import (
    PG_URL,
    TEST_SECRET_KEY,
    door_open,
    event_body,
    publish,
    serve,
    unit_id,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of picture and sound, small: its transcode takes a second or two."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def restore_database() -> Iterator[str | None]:
    """PostgreSQL pass: the second database restores go into, <test database>_restore, made
    once and kept (dropping a database costs PostgreSQL seconds), emptied for each test."""
    if not PG_URL:
        yield None
        return
    url = f"{PG_URL}_restore"
    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                        {"name": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield url
    empty_public_schema(url)


def empty_public_schema(url: str) -> None:
    get_engine(url).dispose()  # the connections a restore's migration and purge left open
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def empty_target(settings: Settings, restore_database: str | None,
                 tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Where a restore goes: an empty data dir, and an empty database of the settings' kind
    (SQLite: none yet in that dir; PostgreSQL: a public schema without tables)."""
    data_dir = tmp_path_factory.mktemp("restored")
    if restore_database is None:
        return settings.model_copy(update={"data_dir": data_dir})
    empty_public_schema(restore_database)
    return settings.model_copy(update={"data_dir": data_dir, "database_url": restore_database})


@pytest.fixture
def backups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backups")


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            settings: Settings, *argv: str) -> tuple[int, str, str]:
    """`kaifang ARGV` in-process, configured by the environment as on a server."""
    with monkeypatch.context() as env:
        env.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
        env.setenv("KAIFANG_PUBLIC_URL", settings.public_url)
        for name, value in (("KAIFANG_DATABASE_URL", settings.database_url),
                            ("KAIFANG_SECRET_KEY", settings.secret_key),
                            ("KAIFANG_REDIS_URL", None)):
            if value is None:
                env.delenv(name, raising=False)
            else:
                env.setenv(name, value)
        get_settings.cache_clear()
        capsys.readouterr()
        try:
            code = main(list(argv))
        finally:
            get_settings.cache_clear()
    out, err = capsys.readouterr()
    return code, out, err


def all_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with get_engine(settings.sqlalchemy_url).connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
            select_rows(table).order_by(*table.primary_key.columns))]
            for table in SQLModel.metadata.sorted_tables}


def table_names(settings: Settings) -> list[str]:
    from sqlalchemy import inspect

    if not settings.database_url and not (settings.data_dir / "kaifang.db").exists():
        return []
    engine = create_engine(settings.sqlalchemy_url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def published_recording(settings: Settings, event_id: int, clip: Path) -> None:
    """A recording of the session, uploaded and transcoded as the worker would."""
    storage = LocalStorage(settings.media_dir)
    upload = storage.new_upload()
    upload.write_bytes(clip.read_bytes())
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        event, admin = db.get(Event, event_id), db.exec(select(StaffUser)).first()
        assert event is not None and admin is not None
        recording, _job = jobs.enqueue(db, admin, event, probe(upload), upload.stat().st_size)
        assert recording.id is not None
        storage.keep_source(upload, recording.id)
        db.commit()
    assert run_one(settings)


def comments_during_premiere(settings: Settings, event_id: int) -> None:
    """Comments approved in the room while the premiere played."""
    texts = ["学位什么时候能用上？", "感谢解读，很清楚。", "普惠园的收费标准在哪里查？"]
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        event = db.get(Event, event_id)
        assert event is not None and event.premiere_at is not None
        for seq, words in enumerate(texts, start=1):
            db.add(LiveMessage(event_id=event_id, kind="comment", author=f"网友{seq}",
                               text=words, state="approved", seq=seq, video_time=seq * 0.5,
                               created_at=event.premiere_at + timedelta(seconds=seq)))
        db.add(LiveRoom(event_id=event_id, last_seq=len(texts)))
        db.commit()


def manage_links(settings: Settings, registration_ids: list[int | None]) -> list[str]:
    """The links citizens were sent: signed with the key of the service that sent them."""
    signer = Signer(settings.resolved_secret_key())
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        found = [db.get(Registration, registration_id) for registration_id in registration_ids]
    return [registration.manage_token(signer, row) for row in found if row is not None]


def what_citizens_see(settings: Settings, links: list[str]) -> dict[str, Any]:
    """Through a fresh app on these data: every public session (with its seats taken), the
    comments, the playback of each recording down to a first segment's bytes, and what
    citizens' manage links open."""
    seen: dict[str, Any] = {}
    with TestClient(create_app(settings)) as client, \
            Session(get_engine(settings.sqlalchemy_url)) as db:
        listed = client.get("/api/events", params={"limit": 1000}).json()
        seen["sessions"] = sorted(listed, key=lambda event: event["id"])
        for event_id in db.exec(select(LiveMessage.event_id).distinct()):
            seen[f"comments {event_id}"] = client.get(f"/api/events/{event_id}/comments").json()
        for recording in db.exec(select(Recording).where(Recording.state == "succeeded")):
            playback = client.get(f"/api/events/{recording.event_id}/playback").json()
            master = client.get(playback["hls_url"])
            variant_name = next(line for line in master.text.splitlines()
                                if line.endswith(".m3u8"))
            base = playback["hls_url"].rsplit("/", 1)[0]
            variant = client.get(f"{base}/{variant_name}")
            segment_name = next(line for line in variant.text.splitlines()
                                if line.endswith(".ts"))
            segment = client.get(f"{base}/{variant_name.rsplit('/', 1)[0]}/{segment_name}")
            seen[f"playback {recording.id}"] = (
                playback["state"], master.status_code, variant.status_code,
                segment.status_code, len(segment.content), segment.content[:188])
        for number, link in enumerate(links):
            answer = client.get(f"/api/registrations/{link}")
            seen[f"registration {number}"] = (answer.status_code, answer.json())
    return seen


def test_a_demo_district_comes_back_whole_from_its_backup_with_its_recordings_playing(
        settings: Settings, empty_target: Settings, clip: Path, backups: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The key generated into the data dir, as on a server without KAIFANG_SECRET_KEY.
    source = settings.model_copy(update={"secret_key": None, "demo_recordings": False})
    with Session(get_engine(source.sqlalchemy_url)) as db:
        load_demo(db, source)
        db.commit()
        broadcast = db.exec(select(Event.id).where(
            Event.kind == EventKind.broadcast, Event.status == EventStatus.archived,
            col(Event.premiere_at).is_not(None))).first()
        people = list(db.exec(select(Registration.id, Registration.name, Registration.phone)
                              .order_by(col(Registration.id))))
    assert broadcast is not None and len(people) > 100
    published_recording(source, broadcast, clip)
    comments_during_premiere(source, broadcast)
    with Session(get_engine(source.sqlalchemy_url)) as db:
        purge_due(db, source)  # the worker's retention, so the restore's own erases nothing
        db.commit()
    rows = all_rows(source)
    links = manage_links(source, [people[0][0], people[len(people) // 2][0], people[-1][0]])
    seen = what_citizens_see(source, links)

    code, out, err = run_cli(monkeypatch, capsys, source, "backup", str(backups / "nightly"))
    assert code == 0, err
    media = [path for path in source.media_dir.rglob("*") if path.is_file()]
    assert f"media: {len(media)} files" in out and len(media) >= 6  # playlists, segments...
    assert "database:" in out and "secret key: copied" in out
    written = [out, err, (backups / "nightly" / "manifest.json").read_text()]
    assert oct((backups / "nightly").stat().st_mode & 0o777) == "0o700"

    target = empty_target.model_copy(update={"secret_key": None})
    code, out, err = run_cli(monkeypatch, capsys, target, "restore", str(backups / "nightly"))
    assert code == 0, err
    said = "\n".join([*written, out, err])
    leaked = [i for i, name, phone in people if name in said or phone in said]
    assert leaked == [], "personal data in the commands' output or the manifest"
    assert "retention: erased the personal data of 0 sessions" in out
    assert "warning" not in out
    assert all_rows(target) == rows
    restored = what_citizens_see(target, links)
    assert restored == seen
    assert len(restored["sessions"]) >= 20
    assert restored[f"playback {rows['recording'][0][0]}"][:4] == ("vod", 200, 200, 200)
    assert [c["text"] for c in restored[f"comments {broadcast}"]][0] == "学位什么时候能用上？"
    assert {restored[f"registration {n}"][0] for n in range(len(links))} == {200}


def test_a_backup_taken_while_citizens_register_restores_to_a_consistent_state(
        settings: Settings, app: Any, staff: Any, db: Session, empty_target: Settings,
        backups: Path) -> None:
    admin = staff("admin")
    body = event_body(db, capacity=12, **door_open(minutes_to_start=180))
    event_id = admin.post("/api/events", json=body).json()["id"]
    publish(admin, event_id)
    acknowledged: list[tuple[float, dict[str, Any]]] = []
    refused: list[str] = []
    stop = threading.Event()

    def citizen(number: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for attempt in range(10_000):
                if stop.is_set():
                    return
                answer = client.post(f"/api/events/{event_id}/registrations", json={
                    "name": f"市民{number}号{attempt}", "phone": f"138{number:02d}{attempt:06d}",
                    "consent": True})
                if answer.status_code == 201:
                    acknowledged.append((time.monotonic(), answer.json()))
                elif answer.status_code != 503:  # busy, on a loaded machine: the next one
                    refused.append(answer.text)
                    return

    def until(condition: Any) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline and not refused, refused or "no registrations"
            time.sleep(0.01)

    with serve(app) as url:
        citizens = [threading.Thread(target=citizen, args=(n, url)) for n in range(4)]
        for thread in citizens:
            thread.start()
        try:
            until(lambda: len(acknowledged) >= 10)
            started = time.monotonic()
            backup(settings, backups / "busy", say=lambda line: None)
            finished = time.monotonic()
            until(lambda: acknowledged[-1][0] > finished + 0.2)  # they went on writing
        finally:
            stop.set()
            for thread in citizens:
                thread.join(30)
    assert refused == []
    restore(empty_target, backups / "busy", say=lambda line: None)

    with Session(get_engine(empty_target.sqlalchemy_url)) as restored:
        found = {r.id: r for r in restored.exec(select(Registration).where(
            Registration.event_id == event_id))}
        received = {row.registration_id for row in restored.execute(text(
            "SELECT registration_id FROM outboxmessage WHERE topic IN "
            "('registration_confirmed', 'registration_waitlisted')"))}
    answered = {answer["id"]: answer["status"] for _, answer in acknowledged}
    before_backup = {answer["id"] for at, answer in acknowledged if at < started}
    assert before_backup <= set(found), "a registration answered before the backup is lost"
    assert set(found) <= set(answered)
    assert {i: r.status.value for i, r in found.items()} == {i: answered[i] for i in found}
    confirmed = [i for i, r in found.items() if r.status.value == "confirmed"]
    waitlisted = [i for i, r in found.items() if r.status.value == "waitlisted"]
    assert len(confirmed) == min(12, len(found))  # seats first, then the waitlist
    assert received == set(found), "a registration without its text, or a text without it"
    with TestClient(create_app(empty_target)) as client:
        event = client.get(f"/api/events/{event_id}").json()
    assert (event["registered_count"], event["waitlist_count"], event["seats_left"]) == (
        len(confirmed), len(waitlisted), 12 - len(confirmed))


def small_district(settings: Settings) -> str:
    """A session with a published recording (its folder as the store keeps it) and a source,
    and its webcast on air: what a media check needs, without transcoding. Returns the
    recording's key."""
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        now = datetime.now(UTC)
        event = Event(kind=EventKind.open_meeting, unit_id=unit_id(db, "education"),
                      title="区教委会议开放", starts_at=now - timedelta(days=2),
                      ends_at=now - timedelta(days=2) + timedelta(hours=2),
                      status=EventStatus.ended)
        db.add(event)
        db.flush()
        recording = Recording(event_id=event.id or 0, state="succeeded", duration_s=8)
        db.add(recording)
        db.flush()
        recording.media_key = key = f"{event.id}-{recording.id}-{os.urandom(6).hex()}"
        db.commit()
        folder = settings.media_dir / "hls" / key
        (folder / "360p").mkdir(parents=True)
        (folder / "master.m3u8").write_text("#EXTM3U\n360p/index.m3u8\n")
        (folder / "360p" / "index.m3u8").write_text("#EXTM3U\nseg_00000.ts\n")
        (folder / "360p" / "seg_00000.ts").write_bytes(os.urandom(20_000))
        (settings.media_dir / "sources").mkdir(parents=True, exist_ok=True)
        (settings.media_dir / "sources" / f"{recording.id}.src").write_bytes(os.urandom(5_000))
        live = f"{event.id}-live-{os.urandom(6).hex()}"
        db.add(LiveStream(event_id=event.id or 0, state="on_air", media_key=live))
        db.commit()
        (settings.media_dir / "live" / live).mkdir(parents=True)
        (settings.media_dir / "live" / live / "index.m3u8").write_text("#EXTM3U\n")
    return key


def untouched(target: Settings) -> None:
    """What a refused restore leaves: no table in the database, no file in the data dir."""
    assert table_names(target) == []
    assert [path for path in target.data_dir.rglob("*") if path.is_file()] == []


def test_a_damaged_media_file_in_the_backup_is_found_before_restore_writes_anything(
        settings: Settings, empty_target: Settings, backups: Path) -> None:
    key = small_district(settings)
    manifest = backup(settings, backups / "b", say=lambda line: None)
    assert {entry["path"] for entry in manifest["files"]} == {
        f"media/hls/{key}/master.m3u8", f"media/hls/{key}/360p/index.m3u8",
        f"media/hls/{key}/360p/seg_00000.ts", "media/sources/1.src",
        *(f"media/{path.relative_to(settings.media_dir)}"
          for path in settings.media_dir.glob("live/*/index.m3u8"))}
    assert len(manifest["files"]) == 5
    segment = backups / "b" / "data" / "media" / "hls" / key / "360p" / "seg_00000.ts"
    damaged = bytearray(segment.read_bytes())
    damaged[10_000] ^= 0xFF  # one bit flipped by a failing disk: same size
    segment.write_bytes(bytes(damaged))
    with pytest.raises(BackupRefused) as refused:
        restore(empty_target, backups / "b", say=lambda line: None)
    assert f"media/hls/{key}/360p/seg_00000.ts: damaged" in str(refused.value)
    assert "nothing was restored" in str(refused.value)
    untouched(empty_target)


def test_restore_refuses_a_data_dir_that_is_not_empty(
        settings: Settings, empty_target: Settings, backups: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    backup(settings, backups / "b", say=lambda line: None)
    (empty_target.media_dir / "hls").mkdir(parents=True)  # empty folders are fine ...
    kept = empty_target.data_dir / "secret_key"  # ... a file is not
    kept.write_text("the key of the service running here")
    code, out, err = run_cli(monkeypatch, capsys, empty_target, "restore", str(backups / "b"))
    assert code == 2
    assert "data dir" in err and "not empty" in err and "secret_key" in err
    assert kept.read_text() == "the key of the service running here"
    assert table_names(empty_target) == []


def test_restore_refuses_a_database_that_is_not_empty(
        settings: Settings, empty_target: Settings, backups: Path) -> None:
    backup(settings, backups / "b", say=lambda line: None)
    migrate(empty_target)  # a database someone already set up: the units seeded
    with pytest.raises(BackupRefused) as refused:
        restore(empty_target, backups / "b", say=lambda line: None)
    assert "the database" in str(refused.value) and "is not empty" in str(refused.value)
    assert "alembic_version" in str(refused.value)
    assert "data dir" not in str(refused.value)  # the SQLite file in it is the database


def test_backup_refuses_a_folder_that_is_not_empty_and_never_leaves_half_a_backup(
        settings: Settings, backups: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (backups / "last-night").mkdir()
    (backups / "last-night" / "manifest.json").write_text("{}")
    code, out, err = run_cli(monkeypatch, capsys, settings, "backup", str(backups / "last-night"))
    assert code == 2 and "exists and is not empty" in err
    assert (backups / "last-night" / "manifest.json").read_text() == "{}"

    small_district(settings)
    import server.backup

    def disk_full(*args: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.backup, "_copy", disk_full)
    code, out, err = run_cli(monkeypatch, capsys, settings, "backup", str(backups / "tonight"))
    assert code == 1 and "No space left on device" in err
    assert sorted(path.name for path in backups.iterdir()) == ["last-night"]
    with pytest.raises(BackupRefused, match="not a complete backup"):
        restore(settings, backups / "tonight", say=lambda line: None)


def test_a_manifest_only_backup_restores_onto_the_shared_media_and_says_what_is_missing(
        settings: Settings, empty_target: Settings, backups: Path) -> None:
    key = small_district(settings)
    manifest = backup(settings, backups / "b", media_manifest=True, say=lambda line: None)
    media = [entry for entry in manifest["files"] if entry["path"].startswith("media/")]
    assert len(media) == 5 and not any(entry["copied"] for entry in media)
    assert not (backups / "b" / "data" / "media").exists()
    # The shared store, mounted at the new machine's media dir, lost a segment.
    shared = empty_target.media_dir

    def share(path: str) -> None:
        (shared / path.removeprefix("media/")).parent.mkdir(parents=True, exist_ok=True)
        (shared / path.removeprefix("media/")).write_bytes(
            (settings.data_dir / path).read_bytes())

    for entry in media[:-1]:
        share(entry["path"])
    lost = media[-1]["path"]
    with pytest.raises(BackupRefused) as refused:
        restore(empty_target, backups / "b", say=lambda line: None)
    assert f"{lost}: missing" in str(refused.value)
    assert table_names(empty_target) == []

    segment = f"hls/{key}/360p/seg_00000.ts"
    share(lost)
    changed = bytearray((shared / segment).read_bytes())
    changed[0] ^= 1
    (shared / segment).write_bytes(bytes(changed))
    with pytest.raises(BackupRefused, match=f"media/{segment}: damaged"):
        restore(empty_target, backups / "b", verify_media=True, say=lambda line: None)
    lines: list[str] = []
    restore(empty_target, backups / "b", say=lines.append)  # sizes alone: it restores
    assert any("shared media: 5 of 5 listed files" in line for line in lines)
    with Session(get_engine(empty_target.sqlalchemy_url)) as restored:
        assert restored.exec(select(Recording.media_key)).all() == [key]


def test_a_restore_with_another_secret_key_warns_that_links_will_not_work(
        settings: Settings, empty_target: Settings, backups: Path) -> None:
    backup(settings, backups / "b", say=lambda line: None)
    manifest = json.loads((backups / "b" / "manifest.json").read_text())
    assert manifest["secret_key"]["source"] == "environment"
    assert TEST_SECRET_KEY not in json.dumps(manifest)
    lines: list[str] = []
    other = empty_target.model_copy(update={"secret_key": "another-key-of-at-least-32-bytes!!"})
    restore(other, backups / "b", say=lines.append)
    assert any(line.startswith("warning: KAIFANG_SECRET_KEY is set to another key")
               and "manage links" in line for line in lines)


def test_a_backup_restores_into_the_same_kind_of_database_only(
        settings: Settings, empty_target: Settings, backups: Path) -> None:
    backup(settings, backups / "b", say=lambda line: None)
    other = {"database_url": None} if settings.database_url else {
        "database_url": "postgresql+psycopg://kaifang@127.0.0.1:1/kaifang"}
    with pytest.raises(BackupRefused, match="same kind of database only"):
        restore(empty_target.model_copy(update=other), backups / "b", say=lambda line: None)
    assert [path for path in empty_target.data_dir.rglob("*")] == []


def test_a_backup_from_an_older_release_is_migrated_on_restore_and_a_newer_one_refused(
        tmp_path_factory: pytest.TempPathFactory, backups: Path) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from alembic import command
    from server.cli import ROOT

    config = Config(str(ROOT / "alembic.ini"))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    older = Settings(data_dir=tmp_path_factory.mktemp("older"), secret_key=TEST_SECRET_KEY)
    config.attributes.update(database_url=older.sqlalchemy_url, configure_logger=False)
    command.upgrade(config, str(previous))  # the schema of the release before this one
    backup(older, backups / "older", say=lambda line: None)

    lines: list[str] = []
    newer = Settings(data_dir=tmp_path_factory.mktemp("newer"), secret_key=TEST_SECRET_KEY)
    restore(newer, backups / "older", say=lines.append)
    assert any(f"at revision {previous}, upgraded to {head}" in line for line in lines)
    assert set(table_names(newer)) == set(SQLModel.metadata.tables) | {"alembic_version"}

    manifest = json.loads((backups / "older" / "manifest.json").read_text())
    manifest["database"]["alembic_revision"] = "2031_01_01-0042_from_the_future"
    (backups / "older" / "manifest.json").write_text(json.dumps(manifest))
    future = Settings(data_dir=tmp_path_factory.mktemp("future"), secret_key=TEST_SECRET_KEY)
    with pytest.raises(BackupRefused, match="taken by a newer Kaifang"):
        restore(future, backups / "older", say=lambda line: None)
    assert list(future.data_dir.iterdir()) == []


def test_pg_dump_is_given_no_password_on_its_command_line() -> None:
    from server.backup import _libpq

    conninfo, env = _libpq("postgresql+psycopg://kaifang:s3cr%40t@db.internal:5433/kaifang"
                           "?sslmode=require")
    assert conninfo == "postgresql://kaifang@db.internal:5433/kaifang?sslmode=require"
    assert env["PGPASSWORD"] == "s3cr@t"


def test_a_backup_killed_midway_leaves_no_folder_that_looks_like_a_backup(
        settings: Settings, backups: Path, empty_target: Settings) -> None:
    key = small_district(settings)
    for number in range(1, 21):  # 40 MB more to copy: the kill lands mid-way
        (settings.media_dir / "hls" / key / "360p" / f"seg_{number:05d}.ts").write_bytes(
            os.urandom(2_000_000))
    env = {**os.environ, "KAIFANG_DATA_DIR": str(settings.data_dir),
           "KAIFANG_SECRET_KEY": TEST_SECRET_KEY, "KAIFANG_PUBLIC_URL": settings.public_url}
    if settings.database_url:
        env["KAIFANG_DATABASE_URL"] = settings.database_url
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "backup",
                                str(backups / "tonight")], env=env, cwd=Path(__file__).parents[2],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(backups.glob(".tonight.partial-*/data")):
        assert process.poll() is None, "the backup ended before it was killed"
        assert time.monotonic() < deadline, "the backup did not start copying"
        time.sleep(0.002)
    process.kill()  # SIGKILL: no cleanup runs
    assert process.wait(10) == -9
    assert not (backups / "tonight").exists()
    [left] = backups.glob(".tonight.partial-*")
    assert not (left / "manifest.json").exists()
    with pytest.raises(BackupRefused, match="not a complete backup"):
        restore(empty_target, left, say=lambda line: None)
