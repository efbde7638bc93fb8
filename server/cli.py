"""The `kaifang` command: serve, migrate, demo, create-user, worker, purge, compliance, backup,
restore."""

from __future__ import annotations

import argparse
import copy
import getpass
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from events import notify
from events.errors import DomainError
from server import logs
from server.config import ConfigError, Settings, get_settings
from server.db import get_engine, set_lock_timeout
from streaming.ingest_socket import MAX_FRAME_BYTES

ROOT = Path(__file__).resolve().parents[1]


def migrate(settings: Settings) -> None:
    from alembic.config import Config

    from alembic import command

    settings.prepare_data_dir()
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.sqlalchemy_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


# The largest websocket frame a client may send: the browser ingest's (a MediaRecorder chunk;
# uvicorn's default is 16 MiB). The live room's sockets hold their own 16 KiB limit
# (streaming.live_sockets ROOM_MAX_BYTES): their frames are JSON of at most 4 KB.
WS_MAX_BYTES = MAX_FRAME_BYTES


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    settings.resolved_secret_key()  # a key too short stops here, before any worker starts
    migrate(settings)
    print(f"Kaifang 开放 on http://{args.host}:{args.port}", flush=True)
    if settings.log_format == "json":  # Python's warnings as JSON lines too (server.logs)
        logging.captureWarnings(True)
    # No permessage-deflate on the live room's sockets: its frames are a few hundred bytes, and
    # a deflate context per socket cost ~40 KiB and ~20 µs a frame (bench/live_fanout.py).
    uvicorn.run("server.app:serve_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="info", proxy_headers=False,
                access_log=False, log_config=serve_log_config(settings.log_format),
                ws_per_message_deflate=False, ws_max_size=WS_MAX_BYTES)
    return 0


def serve_log_config(log_format: str = "text") -> dict[str, Any]:
    """Uvicorn's logging, with our own loggers beside it. Uvicorn's access log is off: it
    would write manage-link tokens; server.access_log writes them masked. Its websocket lines
    lose the query string (viewer tokens) and the address. KAIFANG_LOG_FORMAT=json: one JSON
    object a line (server.logs)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["kaifang"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    # Its websocket lines would write viewer tokens (the query string) and addresses.
    config.setdefault("filters", {})["no_capabilities"] = {
        "()": "server.access_log.SocketLineFilter"}
    config["loggers"]["uvicorn.error"]["filters"] = ["no_capabilities"]
    return logs.json_dict_config(config) if log_format == "json" else config


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    print("database is at the newest schema")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.demo import load_demo
    from streaming.transcode import run_one

    migrate(settings)
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        summary = load_demo(db, settings)
        db.commit()
    print(summary, flush=True)
    done = 0
    while run_one(settings):  # the demo's recordings, so that they play at once
        done += 1
    if done:
        print(f"Transcoded {done} demo recording(s) to HLS.")
    return 0


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from events.staff import create_user_cli

    password = os.environ.get("KAIFANG_PASSWORD") or getpass.getpass("password: ")
    migrate(settings)
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        try:
            user = create_user_cli(db, args.name, password, args.role, args.unit)
        except DomainError as exc:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            return 2
        db.commit()
        print(f"created {user.role.value} {user.username}")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from server.worker import run_worker, start_transcoder

    migrate(settings)
    logs.basic_config(settings.log_format)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    interval = args.interval or settings.worker_interval_s
    print(f"worker running every {interval:g} s; Ctrl-C stops it", flush=True)
    transcoder = start_transcoder(settings, stop)
    run_worker(settings, stop, interval_s=interval)
    transcoder.join(30)
    print("worker stopped", flush=True)
    return 0


def _instant(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is Beijing time."""
    from events.timeutil import as_utc

    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2027-06-01T00:00:00+08:00, got {text!r}") from None


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from events.retention import purge_due

    migrate(settings)
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        sessions, rows = purge_due(db, settings, now=args.now)
        db.commit()
    print(f"erased the personal data of {sessions} sessions ({rows} registrations) that ended "
          f"more than {settings.retention_days} days ago; their counts are kept")
    return 0


def _year(text: str) -> int:
    from events.quotas import EARLIEST_YEAR, LATEST_YEAR

    if not (text.isascii() and text.isdigit()) or not EARLIEST_YEAR <= int(text) <= LATEST_YEAR:
        raise argparse.ArgumentTypeError(
            f"expected a year {EARLIEST_YEAR}-{LATEST_YEAR}, got {text!r}")
    return int(text)


def cmd_compliance(args: argparse.Namespace, settings: Settings) -> int:
    """Prints the same text as GET /api/compliance (json), /api/compliance.csv (csv) or
    /api/compliance/sessions.csv (sessions-csv)."""
    import streaming.answers  # noqa: F401  (the questions' stats in the report)
    import streaming.plan_media  # noqa: F401  (the plan's view of recordings)
    from events.compliance_report import report_csv, report_json, report_sessions_csv
    from events.quotas import compute

    migrate(settings)
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        report = compute(db, args.year, settings=settings, accountable=True)
        if args.format == "json":
            text = report_json(report) + "\n"
        else:
            text = "\ufeff" + (report_csv(report) if args.format == "csv"
                               else report_sessions_csv(report))
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from server.backup import BackupRefused, backup

    try:
        backup(settings, args.dir, media_manifest=args.media_manifest)
    except BackupRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a folder it may not write: said, not a traceback
        print(f"error: backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from server.backup import BackupRefused
    from server.restore import restore

    try:
        restore(settings, args.dir, verify_media=args.verify_media,
                allow_missing_media=args.allow_missing_media)
    except BackupRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a folder it may not write: said, not a traceback
        print(f"error: restore failed: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaifang", description="Kaifang 开放")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="app processes (one per core; they share the database and locks)")
    serve.set_defaults(run=cmd_serve)
    commands.add_parser("migrate", help="bring the database to the newest schema").set_defaults(
        run=cmd_migrate)
    commands.add_parser("demo", help="load a believable demo district").set_defaults(run=cmd_demo)
    user = commands.add_parser("create-user", help="create a staff account")
    user.add_argument("name")
    user.add_argument("--role", required=True, choices=["admin", "editor", "host"])
    user.add_argument("--unit", help="unit code (editors)")
    user.set_defaults(run=cmd_create_user)
    worker = commands.add_parser("worker", help="deliver notifications and erase expired "
                                 "personal data until stopped")
    worker.add_argument("--interval", type=float, help="seconds between rounds "
                        "(default KAIFANG_WORKER_INTERVAL_S or 5)")
    worker.set_defaults(run=cmd_worker)
    purge = commands.add_parser("purge", help="erase personal data of sessions past retention "
                                "(KAIFANG_RETENTION_DAYS)")
    purge.add_argument("--now", type=_instant, help="act as if it were this ISO 8601 time")
    purge.set_defaults(run=cmd_purge)
    compliance = commands.add_parser("compliance", help="the quota report of a year "
                                     "(same as GET /api/compliance)")
    compliance.add_argument("--year", type=_year, required=True)
    compliance.add_argument("--format", choices=["json", "csv", "sessions-csv"], default="json",
                            help="sessions-csv: the questions of each session")
    compliance.set_defaults(run=cmd_compliance)
    backup = commands.add_parser("backup", help="back the database, media and secret key up "
                                 "into a new folder, while the service runs (docs/backup.md)")
    backup.add_argument("dir", type=Path, help="a folder that does not exist yet (or is empty)")
    backup.add_argument("--media-manifest", action="store_true",
                        help="list the media (path, size, sha256) instead of copying them: "
                        "for media on a shared store backed up by other means")
    backup.set_defaults(run=cmd_backup)
    restore = commands.add_parser("restore", help="restore a backup into an empty data dir "
                                  "and an empty database, then migrate and purge")
    restore.add_argument("dir", type=Path, help="a folder `kaifang backup` wrote")
    restore.add_argument("--verify-media", action="store_true",
                         help="with a manifest-only backup: check the shared media's sha256s "
                         "too, not only their sizes")
    restore.add_argument("--allow-missing-media", action="store_true",
                         help="with a manifest-only backup: restore even if some listed media "
                         "files are missing (those recordings will not play)")
    restore.set_defaults(run=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        set_lock_timeout(settings.lock_timeout_s)
        notify.set_public_url(settings.public_url)
        return int(args.run(args, settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a KAIFANG_ variable that is not what it must be
        for error in exc.errors():
            name = "KAIFANG_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"error: {name}: {error['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
