"""Migrations that change data, run on a database that holds such data (SQLite; and
PostgreSQL when KAIFANG_TEST_DATABASE_URL is set, in a database of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from alembic import command
from server.cli import ROOT
from tests.conftest import PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL runs when KAIFANG_TEST_DATABASE_URL is set")
    base, name = PG_URL.rsplit("/", 1)
    own = f"{name}_migrations"
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{own}"'))
    yield f"{base}/{own}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)'))
    admin.dispose()


def _upgrade(url: str, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def test_quota_reminders_queued_for_units_become_console_messages_of_the_unit(database_url):
    _upgrade(database_url, "0005")
    engine = create_engine(database_url)
    insert = text(
        "INSERT INTO outboxmessage (channel, recipient, recipient_masked, subject, body, topic, "
        "due_at, state, attempts, error, created_at) VALUES ('email', :recipient, :recipient, "
        "'', '提醒', :topic, '2026-11-01 00:00:00', :state, :attempts, :error, "
        "'2026-11-01 00:00:00')")
    with engine.begin() as conn:
        for recipient, topic, state, attempts in [
            ("unit:education", "quota_reminder", "failed", 5),  # given up: not an address
            ("unit:shichahai", "quota_reminder", "pending", 0),
            ("unit:education", "quota_reminder", "sent", 1),  # history stays as it was
            ("someone@example.org", "other", "failed", 5),
        ]:
            conn.execute(insert, {"recipient": recipient, "topic": topic, "state": state,
                                  "attempts": attempts,
                                  "error": "the recipient is not an email address"})
    _upgrade(database_url, "head")
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT o.recipient, o.channel, o.state, o.attempts, o.error, u.code "
            "FROM outboxmessage o LEFT JOIN unit u ON u.id = o.unit_id ORDER BY o.id")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("unit:education", "console", "pending", 0, "", "education"),
        ("unit:shichahai", "console", "pending", 0, "", "shichahai"),
        ("unit:education", "email", "sent", 1, "the recipient is not an email address",
         "education"),
        ("someone@example.org", "email", "failed", 5, "the recipient is not an email address",
         None),
    ]


def test_a_phone_repeated_by_a_walk_in_stays_and_the_database_refuses_the_next(database_url):
    _upgrade(database_url, "0006")
    engine = create_engine(database_url)
    at = "2026-11-01 00:00:00"
    with engine.begin() as conn:
        unit = conn.execute(text("SELECT id FROM unit ORDER BY id")).scalars().first()
        conn.execute(text(
            "INSERT INTO event (kind, unit_id, title, summary, starts_at, ends_at, mode, venue, "
            "address, capacity, moderation, status, public_notice, review_note, minutes, "
            "created_at, updated_at) VALUES ('open_day', :unit, '开放日', '', :at, :at, "
            "'in_person', '', '', 0, 'pre', 'published', '', '', '', :at, :at)"),
            {"unit": unit, "at": at})
        event = conn.execute(text("SELECT id FROM event")).scalar_one()
        for code, phone_hash, status, source in [
                ("AAAA2222", "h1", "confirmed", "online"),
                ("AAAA3333", "h1", "confirmed", "walk_in"),  # the same number at the door
                ("AAAA4444", "h1", "cancelled", "online"),
                ("AAAA5555", "", "confirmed", "walk_in"),
                ("AAAA6666", "", "confirmed", "walk_in")]:
            conn.execute(text(
                "INSERT INTO registration (event_id, status, code, name, phone, phone_hash, "
                "question, source, consent_at, created_at, queued_at) VALUES (:event, :status, "
                ":code, '甲', '13900000001', :hash, '', :source, :at, :at, :at)"),
                {"event": event, "status": status, "code": code, "hash": phone_hash,
                 "source": source, "at": at})
    _upgrade(database_url, "head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, status, phone, phone_hash FROM registration "
                                 "ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [
        ("AAAA2222", "confirmed", "13900000001", "h1"),
        ("AAAA3333", "confirmed", "13900000001", ""),  # kept, no longer that phone's entry
        ("AAAA4444", "cancelled", "13900000001", "h1"),
        ("AAAA5555", "confirmed", "13900000001", ""),
        ("AAAA6666", "confirmed", "13900000001", ""),
    ]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO registration (event_id, status, code, name, phone, phone_hash, "
            "question, source, consent_at, created_at, queued_at) VALUES (:event, "
            "'waitlisted', 'AAAA7777', '乙', '13900000001', 'h1', '', 'online', :at, :at, :at)"),
            {"event": event, "at": at})
    engine.dispose()
