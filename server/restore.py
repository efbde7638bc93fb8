"""`kaifang restore DIR`: a backup (server.backup) put back on an empty machine.

A restore writes only into an empty data dir and an empty database, verifies every sha256
before it writes anything, restores, migrates (an older release's backup upgrades), then erases
the personal data past retention (`kaifang purge`), which an old backup brings back.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing, suppress
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from server.backup import (
    DATA,
    DUMP_FILE,
    FORMAT,
    KEY_FILE,
    MANIFEST,
    VERSION,
    BackupRefused,
    KeyEntry,
    Manifest,
    Say,
    _copy,
    _facts,
    _fingerprint,
    _first_line,
    _libpq,
    _print,
    _run,
    _sha256,
    _size,
    _sqlite_path,
    _summary,
    _tables,
    _where,
    database_kind,
)
from server.config import Settings


def read_manifest(source: Path) -> Manifest:
    """The backup's manifest, checked for what a restore relies on."""
    path = source / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"{source} is not a complete backup: it has no {MANIFEST} (a "
                            "backup that was stopped leaves only a hidden .NAME.partial-… "
                            "folder)")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"{path} is not JSON ({exc}): nothing was restored") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise BackupRefused(f"{path} is not the manifest of a Kaifang backup")
    if found.get("version") != VERSION:
        raise BackupRefused(f"{path} is of backup format {found.get('version')!r}; this "
                            f"release reads format {VERSION}")
    try:
        manifest = _MANIFEST.validate_python(found)
        for entry in manifest["files"]:
            _check_path(entry["path"])
    except (ValidationError, ValueError) as exc:
        raise BackupRefused(f"{path} is damaged, nothing was restored: "
                            f"{str(exc).splitlines()[0][:300]}") from None
    return manifest


_MANIFEST = TypeAdapter(Manifest)


def _check_path(path: str) -> None:
    """A manifest's path stays inside the data dir's media/ or plan/."""
    parts = PurePosixPath(path).parts
    if path.startswith("/") or len(parts) < 2 or parts[0] not in ("media", "plan") \
            or any(part in ("", ".", "..") or "\\" in part for part in parts):
        raise ValueError(f"a file outside media/ and plan/: {path[:100]!r}")


def restore(settings: Settings, source: Path, *, verify_media: bool = False,
            allow_missing_media: bool = False, say: Say = _print) -> Manifest:
    """Restores the backup in `source` into the empty data dir and database of `settings`,
    then migrates and erases the personal data past retention. Returns the manifest."""
    source = source.absolute()
    manifest = read_manifest(source)
    url = settings.sqlalchemy_url
    kind, backed_up = database_kind(url), manifest["database"]["kind"]
    if backed_up != kind:
        raise BackupRefused(f"this backup holds a {backed_up} database and the target is "
                            f"{_where(url)}: a backup restores into the same kind of database "
                            "only (set KAIFANG_DATABASE_URL accordingly)")
    _known_revision(manifest["database"]["alembic_revision"])
    shared = manifest["media_mode"] == "manifest"
    say(f"restoring the backup of {manifest['created_at']} (revision "
        f"{manifest['database']['alembic_revision']}; {_summary(manifest['counts'])}) into "
        f"{_where(url)} and the data dir {settings.data_dir.absolute()}")
    _refuse_unless_empty(settings, kind, url, shared)  # quick: before reading every file
    _verify_copy(source, manifest, say)
    if shared:
        _check_shared_media(settings, manifest, verify_media, allow_missing_media, say)

    settings.prepare_data_dir()
    root = settings.data_dir
    before = {folder for folder, _, _ in os.walk(root)}
    written: list[Path] = []
    try:
        for entry in manifest["files"]:
            if entry["copied"]:
                _copy(source / DATA / entry["path"], root / entry["path"], 0o666)
                written.append(root / entry["path"])
        copied = [entry for entry in manifest["files"] if entry["copied"]]
        say(f"files: {len(copied)} copied into the data dir "
            f"({_size(sum(entry['size'] for entry in copied))})")
        warnings = _restore_key(settings, source, manifest["secret_key"], written)
        dump = source / DUMP_FILE[kind]
        if kind == "sqlite":
            written.append(_restore_sqlite(url, dump))
        else:
            conninfo, env = _libpq(url)
            _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                  "--single-transaction", f"--dbname={conninfo}", str(dump)], env,
                 "pg_restore")
    except BaseException:
        _undo(root, written, before)
        say("nothing was restored: the data dir and the database are as they were")
        raise
    _finish(settings, kind, url, manifest, say)
    for warning in warnings:
        say(f"warning: {warning}")
    say("done: start the service; docs/backup.md says what to check, and what to tell the "
        "office (everything after the backup's time is lost)")
    return manifest


def _known_revision(revision: str | None) -> None:
    """A backup from a newer release than this one cannot be migrated: refused up front."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from server.cli import ROOT

    if revision is None:  # a database never migrated: migrate makes it whole
        return
    try:
        ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_revision(revision)
    except CommandError:
        raise BackupRefused(f"this backup's database is at revision {revision}, which this "
                            "release does not know: it was taken by a newer Kaifang; restore "
                            "it with that release (or a newer one)") from None


def _verify_copy(source: Path, manifest: Manifest, say: Say) -> None:
    """Every file the backup holds is whole (its size and sha256), before anything is written."""
    database = manifest["database"]
    expected = [(source / DUMP_FILE[database["kind"]], database["size"], database["sha256"])]
    expected += [(source / DATA / entry["path"], entry["size"], entry["sha256"])
                 for entry in manifest["files"] if entry["copied"]]
    say(f"verifying {len(expected)} files of the backup "
        f"({_size(sum(size for _, size, _ in expected))})")
    problems = [f"{path.relative_to(source)}: {problem}" for path, size, sha in expected
                if (problem := _problem(path, size, sha, True))]
    key = manifest["secret_key"]
    if key["copied"]:
        found = source / KEY_FILE
        if not found.is_file() or _fingerprint(found.read_text().strip()) \
                != key["file_fingerprint"]:
            problems.append(f"{KEY_FILE}: missing or not the key backed up")
    if problems:
        raise BackupRefused(f"the backup is damaged, nothing was restored: {len(problems)} "
                            f"files differ from its manifest: {'; '.join(problems[:10])}"
                            + (" …" if len(problems) > 10 else ""))


def _problem(path: Path, size: int, sha256: str, hashed: bool) -> str:
    if not path.is_file():
        return "missing"
    if path.stat().st_size != size:
        return f"{path.stat().st_size} bytes instead of {size}"
    if hashed and _sha256(path) != sha256:
        return "damaged (its sha256 differs)"
    return ""


def _refuse_unless_empty(settings: Settings, kind: str, url: str, shared: bool) -> None:
    problems, own = [], set()
    if kind == "sqlite":
        path = _sqlite_path(url).absolute()
        own = {Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal", ".lock")}
        tables = _sqlite_tables(path)
        if tables:
            problems.append(f"the database {path} is not empty: it has {len(tables)} tables "
                            f"({', '.join(tables[:4])}…); restore needs no file or an empty one")
    else:
        tables = _postgresql_tables(url)
        if tables:
            problems.append(f"the database {_where(url)} is not empty: its public schema has "
                            f"{len(tables)} tables ({', '.join(tables[:4])}…); restore needs an "
                            "empty database (dropdb, then createdb with the service's owner)")
    root = settings.data_dir
    if root.exists():
        found = sorted(entry.name for entry in root.iterdir()
                       if entry.absolute() not in own and not (
                           entry.name == "media" and entry.is_dir()
                           and (shared or not _holds_files(entry))))
        if found:
            problems.append(f"the data dir {root.absolute()} is not empty: it holds "
                            f"{', '.join(found[:5])}{' …' if len(found) > 5 else ''}; restore "
                            "needs an empty one (an empty media/ folder may be there)")
    if problems:
        raise BackupRefused("nothing was restored: " + "; ".join(problems))


def _holds_files(folder: Path) -> bool:
    return any(files for _, _, files in os.walk(folder))


def _sqlite_tables(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        with closing(sqlite3.connect(path)) as found:
            return _tables(lambda sql: found.execute(sql).fetchall(), "sqlite")
    except sqlite3.DatabaseError:
        return [f"{path.name} is not a SQLite database"]


def _postgresql_tables(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _tables(lambda sql: list(conn.exec_driver_sql(sql).all()), "postgresql")
    except SQLAlchemyError as exc:
        raise BackupRefused(f"cannot reach {_where(url)} ({_first_line(exc)}): create an "
                            "empty database first; nothing was restored") from None
    finally:
        engine.dispose()


def _check_shared_media(settings: Settings, manifest: Manifest, verify: bool,
                        allow_missing: bool, say: Say) -> None:
    """A manifest-only backup: every listed media file is on the shared store, whole."""
    listed = [entry for entry in manifest["files"] if not entry["copied"]]
    problems = [f"{entry['path']}: {problem}" for entry in listed
                if (problem := _problem(settings.data_dir / entry["path"], entry["size"],
                                        entry["sha256"], verify))]
    checked = "sizes and sha256s" if verify else "sizes (--verify-media checks sha256s too)"
    say(f"shared media: {len(listed) - len(problems)} of {len(listed)} listed files are in "
        f"{settings.media_dir.absolute()} ({checked})")
    if not problems:
        return
    listing = "; ".join(problems[:20]) + (" …" if len(problems) > 20 else "")
    if not allow_missing:
        raise BackupRefused(f"{len(problems)} media files are missing or differ on the shared "
                            f"store, nothing was restored: {listing}. Restore them from the "
                            "store's own backup, or pass --allow-missing-media (those "
                            "recordings will not play)")
    say(f"warning: {len(problems)} media files are missing or differ: {listing}")


def _restore_key(settings: Settings, source: Path, key: KeyEntry,
                 written: list[Path]) -> list[str]:
    """Puts the backed-up key file back; the warnings when the key in use will differ."""
    if key["copied"]:
        target = settings.data_dir / KEY_FILE
        _copy(source / KEY_FILE, target, 0o600)
        written.append(target)
    if settings.secret_key is not None:
        in_use: str | None = _fingerprint(settings.secret_key)
    else:
        in_use = key["file_fingerprint"] if key["copied"] else None
    if in_use == key["fingerprint"] or not key["copied"] and key["source"] == "file":
        return []  # the same key, or none had been made when the backup was taken
    before = ("its secret_key file holds it" if key["copied"] and key["source"] == "file" else
              "it was set by KAIFANG_SECRET_KEY on the machine backed up: take it from there")
    now = "KAIFANG_SECRET_KEY is set to another key" if settings.secret_key is not None \
        else "KAIFANG_SECRET_KEY is not set and the data dir's key is another"
    return [f"{now} than the one the service signed with when this backup was taken "
            f"({before}): citizens' manage links and tickets and staff sessions will not "
            "work until the service runs with that key"]


def _restore_sqlite(url: str, dump: Path) -> Path:
    path = _sqlite_path(url).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.restore-")
    os.close(fd)
    try:
        shutil.copyfile(dump, temp)
        os.chmod(temp, 0o600)
        for suffix in ("-wal", "-shm", "-journal"):  # an empty database's: not this one's
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _undo(root: Path, written: list[Path], before: set[str]) -> None:
    for path in reversed(written):
        path.unlink(missing_ok=True)
    for folder, _, _ in sorted(os.walk(root), key=lambda found: -len(found[0])):
        if folder not in before:
            with suppress(OSError):  # not empty: it was there before
                os.rmdir(folder)


def _finish(settings: Settings, kind: str, url: str, manifest: Manifest,
            say: Say) -> None:
    """Checks the restored rows, migrates, and erases what retention has erased since."""
    from sqlmodel import Session

    from events.retention import purge_due
    from server.cli import migrate
    from server.db import get_engine

    facts = _read_facts(kind, url)
    if facts["counts"] != manifest["counts"]:
        raise BackupRefused(f"the restored database holds {_summary(facts['counts'])}, the "
                            f"backup {_summary(manifest['counts'])}: the restore is incomplete")
    migrate(settings)
    revision = _read_facts(kind, url)["revision"]
    upgraded = "" if revision == facts["revision"] else f", upgraded to {revision}"
    say(f"database: restored ({_summary(facts['counts'])}) at revision "
        f"{facts['revision']}{upgraded}")
    with Session(get_engine(url)) as db:
        sessions, rows = purge_due(db, settings)
        db.commit()
    say(f"retention: erased the personal data of {sessions} sessions ({rows} registrations) "
        f"that ended more than {settings.retention_days} days ago, as the service does")


def _read_facts(kind: str, url: str) -> dict[str, Any]:
    if kind == "sqlite":
        with closing(sqlite3.connect(_sqlite_path(url))) as found:
            return _facts(lambda sql: found.execute(sql).fetchall(), "sqlite")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _facts(lambda sql: list(conn.exec_driver_sql(sql).all()), "postgresql")
    finally:
        engine.dispose()
