"""`kaifang backup DIR` and `kaifang restore DIR`: a district's database, media and secret key,
taken while the service runs and put back on an empty machine.

A backup folder holds `manifest.json` (what is in it, with sizes and sha256s), the database
(`database.sqlite3`: SQLite's online backup API, a consistent copy under WAL with writers
running; or `database.pgdump`: pg_dump's custom format), `secret_key` (the data dir's, without
which citizens' manage links and tickets stop working) and `data/`: copies of the media and of
the plan's files under the path they have in the data dir. It holds personal data and the key:
it is created 0700, its files 0600. It is written under a hidden temporary name beside DIR and
renamed to DIR when complete, so a killed backup never looks like one.

Which media: the database first, then the files the dump names. The dump is one snapshot (the
copied SQLite file; for PostgreSQL, pg_dump runs in a snapshot this module exported and reads
its own facts from), and the media named in it are what a restore needs: every recording's
published HLS folder and source, the folder of a webcast on air, the plan's files. A recording
published after the snapshot is not named in it, so it is not copied (it is in the next
backup); copying the media first would instead restore a database naming folders it lacks. A
folder the dump names can only disappear as a recording replaced by a newer one after its grace
time (streaming.retention): it is left out and listed as `missing`, and a restored service
forgets it as it would have (nothing plays it). Published folders are never written again
(streaming.storage), so a copy of one is whole.

With `--media-manifest` the media are not copied but listed (path, size, sha256), for a
district whose media live on a shared store backed up by other means; a restore then checks
that every listed file is in the media dir.

A restore writes only into an empty data dir and an empty database, verifies every sha256
before it writes anything, restores, migrates (an older release's backup upgrades), then erases
the personal data past retention (`kaifang purge`), which an old backup brings back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import create_engine, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from typing_extensions import TypedDict  # pydantic validates only this one on Python 3.11

from server.config import Settings

FORMAT: Literal["kaifang-backup"] = "kaifang-backup"
VERSION: Literal[1] = 1
MANIFEST, DATA, KEY_FILE = "manifest.json", "data", "secret_key"
DUMP_FILE = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
# Rows counted into the manifest and checked after a restore: the main tables, by their name.
COUNTED = {"event": "sessions", "registration": "registrations", "recording": "recordings",
           "livemessage": "comments", "question": "questions", "staffuser": "staff"}
CHUNK = 1 << 20
PROGRESS_EVERY_S = 15

Say = Callable[[str], None]
Query = Callable[[str], list[Any]]


class FileEntry(TypedDict):
    path: str  # in the data dir: media/hls/<key>/master.m3u8, plan/<item>/<key>
    size: int
    sha256: str
    copied: bool  # under data/ in the backup; False: listed only (--media-manifest)


class DatabaseEntry(TypedDict):
    kind: Literal["sqlite", "postgresql"]
    file: str
    size: int
    sha256: str
    alembic_revision: str | None


class KeyEntry(TypedDict):
    source: Literal["environment", "file"]  # where the key the service signed with came from
    fingerprint: str  # of that key (_fingerprint)
    copied: bool  # the data dir's secret_key file is in the backup
    file_fingerprint: str | None


class Manifest(TypedDict):
    format: Literal["kaifang-backup"]
    version: Literal[1]
    created_at: str
    database: DatabaseEntry
    counts: dict[str, int]  # rows per main table (COUNTED)
    media_mode: Literal["copy", "manifest"]
    files: list[FileEntry]
    missing: list[str]  # named by the database, not in the data dir when it was backed up
    secret_key: KeyEntry


class BackupRefused(Exception):
    """The backup or restore cannot go on: the CLI prints the message and exits 2."""


def _print(line: str) -> None:
    print(line, flush=True)


# ---- the database -------------------------------------------------------------------------

def database_kind(url: str) -> Literal["sqlite", "postgresql"]:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise BackupRefused(f"backups know SQLite and PostgreSQL databases, not {backend}")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupRefused("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as pg_dump reads it (postgresql://, without the password) and an environment
    carrying the password (PGPASSWORD): no password in a process list or a log line."""
    parts = make_url(url)
    # URL.set(password=None) would keep the password: None there means "unchanged".
    bare = URL.create("postgresql", username=parts.username, host=parts.host, port=parts.port,
                      database=parts.database, query=parts.query)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = str(parts.password)
    return bare.render_as_string(hide_password=False), env


def _where(url: str) -> str:
    """The database as the output names it: never the password."""
    parts = make_url(url)
    if parts.get_backend_name() == "sqlite":
        return f"SQLite {_sqlite_path(url)}"
    return f"PostgreSQL {parts.host or 'local socket'}:{parts.port or 5432}/{parts.database}"


def _tables(query: Query, kind: str) -> list[str]:
    sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
           if kind == "sqlite" else
           "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(str(row[0]) for row in query(sql))


def _facts(query: Query, kind: str) -> dict[str, Any]:
    """What a snapshot says: its schema revision, its rows per main table, the files it names
    (paths in the data dir; folders end with '/')."""
    tables = set(_tables(query, kind))
    revision = query("SELECT version_num FROM alembic_version")[0][0] \
        if "alembic_version" in tables else None
    counts = {name: int(query(f'SELECT count(*) FROM "{name}"')[0][0])
              for name in COUNTED if name in tables}
    named: list[tuple[str, bool]] = []  # (path, whether its absence is worth saying)
    if "recording" in tables:
        for recording_id, key in query("SELECT id, media_key FROM recording ORDER BY id"):
            if key and _component(key):
                named.append((f"media/hls/{key}/", True))
            # A source is deleted when its transcode failed for good: none is no news.
            named.append((f"media/sources/{int(recording_id)}.src", False))
    if "livestream" in tables:  # a webcast on air: its folder becomes the archive when it ends
        for (key,) in query("SELECT media_key FROM livestream WHERE media_key <> '' "
                            "AND state <> 'ended' ORDER BY id"):
            if _component(key):
                named.append((f"media/live/{key}/", True))
    if "planfile" in tables:
        for item_id, stored_key in query("SELECT item_id, stored_key FROM planfile ORDER BY id"):
            if _component(stored_key):
                named.append((f"plan/{int(item_id)}/{stored_key}", True))
    return {"revision": revision, "counts": counts, "named": named}


def _component(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _dump_sqlite(url: str, target: Path) -> dict[str, Any]:
    source = _sqlite_path(url)
    if not source.is_file():
        raise BackupRefused(f"there is no database at {source}")
    with closing(sqlite3.connect(source, timeout=30)) as live, \
            closing(sqlite3.connect(target)) as copy:
        # One step: a consistent snapshot; under WAL the service's writers go on meanwhile.
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside
        if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupRefused(f"the copy of {source} fails SQLite's quick_check: the database "
                                "file is damaged; nothing was backed up")
        return _facts(lambda sql: copy.execute(sql).fetchall(), "sqlite")


def _dump_postgresql(url: str, target: Path) -> dict[str, Any]:
    conninfo, env = _libpq(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # pg_dump reads the very snapshot this transaction reads its facts from.
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                facts = _facts(lambda sql: list(conn.exec_driver_sql(sql).all()), "postgresql")
                _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                      f"--snapshot={snapshot}", "--lock-wait-timeout=60000",
                      f"--file={target}", f"--dbname={conninfo}"], env, "pg_dump")
    except SQLAlchemyError as exc:
        raise BackupRefused(f"cannot read {_where(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return facts


def _run(argv: list[str], env: dict[str, str], name: str) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupRefused(f"{name} is missing: install Debian's postgresql-client "
                            "(the same major version as the server)") from None
    if done.returncode != 0:
        # Only its error lines: a DETAIL line may quote a row (a phone number).
        errors = [line for line in done.stderr.splitlines()
                  if "error:" in line and "DETAIL" not in line]
        raise BackupRefused(f"{name} failed: {' / '.join(errors[-3:])[:600] or done.returncode}")


def _first_line(exc: BaseException) -> str:
    found = getattr(exc, "orig", None) or exc
    return (str(found).strip().splitlines() or ["?"])[0][:300]


# ---- files --------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, target: Path, mode: int) -> tuple[int, str]:
    """Copies a file, hashing what it wrote; (size, sha256). The target must not exist."""
    _make_folders(target.parent, 0o700 if mode == 0o600 else 0o777)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as reader, \
            os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _make_folders(folder: Path, mode: int) -> None:
    """mkdir -p with `mode` for every folder made (Path.mkdir gives it only to the last)."""
    if not folder.is_dir():
        _make_folders(folder.parent, mode)
        folder.mkdir(mode=mode, exist_ok=True)


def _files_named(root: Path, named: list[tuple[str, bool]]) -> Iterator[tuple[str, bool]]:
    """(path in the data dir, whether it is there) for every regular file named, in order: a
    folder's files, or the file itself; a required name that is not there comes out once."""
    for name, required in named:
        where = root / name
        if not name.endswith("/"):
            if where.is_file() or required:
                yield name, where.is_file()
            continue
        if not where.is_dir():
            yield name, False
            continue
        for folder, dirs, files in os.walk(where):
            dirs.sort()
            for file in sorted(files):
                path = Path(folder) / file
                if path.is_file() and not path.is_symlink():
                    yield path.relative_to(root).as_posix(), True


def _fingerprint(key: str) -> str:
    """Tells two secret keys apart without holding either (a restore compares them)."""
    return hashlib.sha256(b"kaifang secret key fingerprint\0" + key.encode()).hexdigest()


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return ""


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {counts[name]}" for name, label in COUNTED.items()
                     if name in counts)


# ---- backup -------------------------------------------------------------------------------

def backup(settings: Settings, target: Path, *, media_manifest: bool = False,
           say: Say = _print) -> Manifest:
    """Backs the district up into `target` (a new or empty folder); returns the manifest."""
    url = settings.sqlalchemy_url
    kind = database_kind(url)
    target = target.absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupRefused(f"{target} exists and is not empty: a backup goes into a new "
                            "folder (e.g. one named by the date) and never overwrites another")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        manifest = _backup_into(settings, staging, kind, url, media_manifest, say)
        os.sync()  # everything on disk before the folder's name says it is complete
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"done: {target} (mode 0700; it holds citizens' personal data and the secret key: keep "
        "it where you keep the database, never on a shared drive)")
    return manifest


def _backup_into(settings: Settings, staging: Path, kind: Literal["sqlite", "postgresql"],
                 url: str, media_manifest: bool, say: Say) -> Manifest:
    say(f"backing up {_where(url)} and the data dir {settings.data_dir.absolute()}")
    dump = staging / DUMP_FILE[kind]
    os.close(os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    facts = _dump_sqlite(url, dump) if kind == "sqlite" else _dump_postgresql(url, dump)
    os.chmod(dump, 0o600)
    database = DatabaseEntry(kind=kind, file=dump.name, size=dump.stat().st_size,
                             sha256=_sha256(dump), alembic_revision=facts["revision"])
    say(f"database: {_size(database['size'])} at revision {facts['revision']} "
        f"({_summary(facts['counts'])})")

    files, missing = _back_up_files(settings.data_dir, staging / DATA, facts["named"],
                                    media_manifest, say)
    media = [entry for entry in files if entry["path"].startswith("media/")]
    total = sum(entry["size"] for entry in media)
    how = "listed in manifest.json (not copied: --media-manifest)" if media_manifest \
        else "copied"
    say(f"media: {len(media)} files, {_size(total)} {how}; plan files: "
        f"{len(files) - len(media)} copied")
    if missing:
        say(f"media: {len(missing)} files or folders the database names are not in the data "
            "dir (a recording replaced since, whose files retention deleted, or media lost "
            "before): listed as missing in manifest.json")

    key = _backup_key(settings, staging)
    say("secret key: " + ("copied (secret_key)" if key["copied"] else
                          "not in the data dir: it comes from KAIFANG_SECRET_KEY, keep that "
                          "with this backup's restore instructions" if key["source"] ==
                          "environment" else "none yet (the service has not run)"))
    manifest = Manifest(format=FORMAT, version=VERSION,
                        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        database=database, counts=facts["counts"],
                        media_mode="manifest" if media_manifest else "copy",
                        files=files, missing=missing, secret_key=key)
    written = staging / MANIFEST
    with os.fdopen(os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w",
                   encoding="utf-8") as out:
        json.dump(manifest, out, ensure_ascii=False, indent=1)
    return manifest


def _back_up_files(root: Path, into: Path, named: list[tuple[str, bool]], media_manifest: bool,
                   say: Say) -> tuple[list[FileEntry], list[str]]:
    """Copies (or, for media with --media-manifest, lists) the files named; what was there and
    what the database names that is not (missing)."""
    files: list[FileEntry] = []
    missing: list[str] = []
    done, last_said = 0, time.monotonic()
    for path, present in _files_named(root, named):
        if not present:
            missing.append(path)
            continue
        copied = not (media_manifest and path.startswith("media/"))
        try:
            if copied:
                size, sha = _copy(root / path, into / path, 0o600)
            else:
                size, sha = (root / path).stat().st_size, _sha256(root / path)
        except FileNotFoundError:  # removed while we copied: a replaced recording's
            missing.append(path)
            continue
        files.append(FileEntry(path=path, size=size, sha256=sha, copied=copied))
        done += size
        if time.monotonic() - last_said > PROGRESS_EVERY_S:
            say(f"files: {len(files)} so far ({_size(done)})")
            last_said = time.monotonic()
    return files, missing


def _backup_key(settings: Settings, staging: Path) -> KeyEntry:
    file = settings.data_dir / KEY_FILE
    copied = file.is_file()
    # Without either the service has never signed anything: no key is made for it here.
    in_use = settings.resolved_secret_key() if copied or settings.secret_key is not None \
        else ""
    if copied:
        _copy(file, staging / KEY_FILE, 0o600)
    return KeyEntry(source="environment" if settings.secret_key is not None else "file",
                    fingerprint=_fingerprint(in_use), copied=copied,
                    file_fingerprint=_fingerprint(file.read_text().strip()) if copied else None)


# ---- restore ------------------------------------------------------------------------------
